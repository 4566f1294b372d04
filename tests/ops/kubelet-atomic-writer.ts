/**
 * The kubelet's atomic writer for ConfigMap, Secret and projected volumes, step by step as in
 * kubernetes pkg/volume/util/atomic_writer.go (Write): the payload goes into a new hidden
 * timestamped directory, a `..data_tmp` symlink to it is renamed over `..data`, the user-visible
 * names are symlinks `name -> ..data/name` created once, and the old timestamped directory is
 * removed. Tests use it to update a "mounted ConfigMap" exactly the way a pod sees it updated.
 */
import fs from 'node:fs';
import path from 'node:path';

const DATA = '..data';
const DATA_TMP = '..data_tmp';

function timestampedDirName(): string {
  // Go: time.Now().UTC().Format("..2006_01_02_15_04_05.") followed by os.MkdirTemp's random suffix.
  const d = new Date();
  const p = (n: number): string => String(n).padStart(2, '0');
  const stamp = `${d.getUTCFullYear()}_${p(d.getUTCMonth() + 1)}_${p(d.getUTCDate())}_${p(d.getUTCHours())}_${p(d.getUTCMinutes())}_${p(d.getUTCSeconds())}`;
  return `..${stamp}.${String(Math.floor(Math.random() * 1e9)).padStart(9, '0')}`;
}

/** Writes `payload` (file name -> content) into the volume directory `dir` as the kubelet does. */
export function atomicWrite(dir: string, payload: Record<string, Buffer | string>): void {
  fs.mkdirSync(dir, { recursive: true });
  const dataLink = path.join(dir, DATA);
  let oldTsDir: string | null = null;
  try {
    oldTsDir = fs.readlinkSync(dataLink);
  } catch {
    oldTsDir = null;
  }
  // 1. the new payload, complete, in a fresh hidden directory
  const tsName = timestampedDirName();
  const tsDir = path.join(dir, tsName);
  fs.mkdirSync(tsDir, { mode: 0o755 });
  for (const [name, body] of Object.entries(payload)) {
    fs.writeFileSync(path.join(tsDir, name), body, { mode: 0o644 });
  }
  // 2. ..data_tmp -> the new directory (relative), 3. renamed over ..data: the atomic switch
  const tmpLink = path.join(dir, DATA_TMP);
  fs.symlinkSync(tsName, tmpLink);
  fs.renameSync(tmpLink, dataLink);
  // 4. user-visible symlinks, created only when missing (they point through ..data, so they stay)
  for (const name of Object.keys(payload)) {
    const visible = path.join(dir, name);
    try {
      fs.lstatSync(visible);
    } catch {
      fs.symlinkSync(path.join(DATA, name), visible);
    }
  }
  // 5. names no longer in the payload go, then the old payload directory
  if (oldTsDir !== null) {
    for (const name of fs.readdirSync(path.join(dir, oldTsDir))) {
      if (!(name in payload)) fs.rmSync(path.join(dir, name), { force: true });
    }
    fs.rmSync(path.join(dir, oldTsDir), { recursive: true, force: true });
  }
}
