/**
 * Loads an OPA bundle built with `opa build -t wasm`: a gzipped tar (or a directory) holding
 * `/policy.wasm`, `/data.json` and `/.manifest`. Bounded: the compressed file, the unpacked total,
 * the number of entries; refuses links, device files, duplicate names and any `..` path segment.
 * https://www.openpolicyagent.org/docs/latest/management-bundles/#bundle-file-format
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { ErrorCodes, PgwardError } from '../errors';

export interface BundleManifest {
  revision: string;
  roots?: string[];
  metadata?: Record<string, unknown>;
}

export interface LoadedBundle {
  wasm: Buffer;
  data: Record<string, unknown>;
  manifest: BundleManifest;
  /** Every file of the bundle by its normalized path (no leading slash), for signature checks. */
  files: Map<string, Buffer>;
  source: string;
}

export interface LoadBundleOptions {
  /** Upper bound on the unpacked size of all files together. Default 64 MiB. */
  maxBytes?: number;
  /** Upper bound on the number of files. Default 10,000. */
  maxFiles?: number;
}

const DEFAULT_MAX_BYTES = 64 * 1024 * 1024;
const DEFAULT_MAX_FILES = 10_000;
const BLOCK = 512;

function fail(source: string, why: string): never {
  throw new PgwardError(ErrorCodes.BUNDLE_LOAD, `cannot load bundle ${source}: ${why}`);
}

/** Loads a bundle from a `.tar.gz` file or a directory. */
export async function loadBundle(source: string, opts: LoadBundleOptions = {}): Promise<LoadedBundle> {
  const maxBytes = opts.maxBytes ?? DEFAULT_MAX_BYTES;
  const maxFiles = opts.maxFiles ?? DEFAULT_MAX_FILES;
  let st;
  try {
    st = await fs.stat(source);
  } catch (err) {
    fail(source, (err as Error).message);
  }
  if (st.isDirectory()) {
    return assembleBundle(await readBundleDirectory(source, maxBytes, maxFiles), source);
  }
  if (!st.isFile()) fail(source, 'not a regular file or directory');
  if (st.size > maxBytes) fail(source, `file is larger than ${maxBytes} bytes`);
  const bytes = await fs.readFile(source).catch((err: Error) => fail(source, err.message));
  return loadBundleFromBuffer(bytes, source, opts);
}

/** Loads a bundle from the bytes of a `.tar.gz` (e.g. fetched over HTTP). */
export function loadBundleFromBuffer(
  bytes: Buffer,
  source: string,
  opts: LoadBundleOptions = {},
): LoadedBundle {
  const maxBytes = opts.maxBytes ?? DEFAULT_MAX_BYTES;
  const maxFiles = opts.maxFiles ?? DEFAULT_MAX_FILES;
  if (bytes.length < 2 || bytes[0] !== 0x1f || bytes[1] !== 0x8b) fail(source, 'not a gzip file');
  let tar: Buffer;
  try {
    // maxOutputLength makes gunzip stop (RangeError) instead of inflating a bomb.
    tar = zlib.gunzipSync(bytes, { maxOutputLength: maxBytes + 64 * BLOCK });
  } catch (err) {
    fail(source, `gzip: ${(err as Error).message}`);
  }
  return assembleBundle(readTar(tar, source, maxBytes, maxFiles), source);
}

/** Normalizes an archive path: strips leading `/` and `./`; refuses `..`, empty segments after that, NUL and `\`. */
export function normalizeEntryPath(name: string, source: string): string {
  if (name.includes('\0') || name.includes('\\')) fail(source, `unsafe path ${JSON.stringify(name)}`);
  const segments = name.split('/').filter((s) => s !== '' && s !== '.');
  if (segments.length === 0) fail(source, `empty path ${JSON.stringify(name)}`);
  if (segments.some((s) => s === '..')) fail(source, `path traversal in ${JSON.stringify(name)}`);
  return segments.join('/');
}

function parseOctal(field: Buffer, source: string): number {
  // GNU base-256 encoding (high bit set) is only needed for sizes >= 8 GiB: refuse it.
  if (field.length > 0 && (field[0]! & 0x80) !== 0) fail(source, 'tar: base-256 number');
  const text = field.toString('latin1').replace(/\0.*$/s, '').trim();
  if (text === '') return 0;
  if (!/^[0-7]+$/.test(text)) fail(source, `tar: bad octal field ${JSON.stringify(text)}`);
  return parseInt(text, 8);
}

function cString(field: Buffer): string {
  const end = field.indexOf(0);
  return field.subarray(0, end === -1 ? field.length : end).toString('utf8');
}

/** Reads the `path` record of a PAX extended header (https://pubs.opengroup.org/onlinepubs/9699919799/utilities/pax.html). */
function paxPath(body: Buffer, source: string): string | null {
  let pos = 0;
  let found: string | null = null;
  while (pos < body.length) {
    const space = body.indexOf(0x20, pos);
    if (space === -1) break;
    const len = Number(body.subarray(pos, space).toString('latin1'));
    if (!Number.isInteger(len) || len <= space - pos || pos + len > body.length)
      fail(source, 'tar: bad pax record');
    const record = body.subarray(space + 1, pos + len - 1).toString('utf8');
    const eq = record.indexOf('=');
    if (eq > 0 && record.slice(0, eq) === 'path') found = record.slice(eq + 1);
    pos += len;
  }
  return found;
}

/** A minimal ustar/pax/GNU reader: regular files and directories only. */
function readTar(tar: Buffer, source: string, maxBytes: number, maxFiles: number): Map<string, Buffer> {
  const files = new Map<string, Buffer>();
  let total = 0;
  let pos = 0;
  let nextName: string | null = null;
  for (;;) {
    // An archive ends with zero blocks; running out of bytes before one means it was cut short.
    if (pos + BLOCK > tar.length) fail(source, 'tar: truncated archive (no end-of-archive block)');
    const header = tar.subarray(pos, pos + BLOCK);
    if (header.every((b) => b === 0)) break;
    const checksum = parseOctal(header.subarray(148, 156), source);
    let sum = 8 * 0x20;
    for (let i = 0; i < BLOCK; i++) if (i < 148 || i >= 156) sum += header[i]!;
    if (sum !== checksum) fail(source, 'tar: header checksum mismatch');
    const size = parseOctal(header.subarray(124, 136), source);
    const type = String.fromCharCode(header[156]!);
    const bodyStart = pos + BLOCK;
    const bodyEnd = bodyStart + size;
    if (bodyEnd > tar.length) fail(source, 'tar: truncated entry');
    const body = tar.subarray(bodyStart, bodyEnd);
    pos = bodyStart + Math.ceil(size / BLOCK) * BLOCK;

    if (type === 'x' || type === 'L') {
      nextName = type === 'x' ? paxPath(body, source) : cString(body);
      continue;
    }
    if (type === 'g') continue;
    const magic = header.subarray(257, 262).toString('latin1');
    const prefix = magic === 'ustar' ? cString(header.subarray(345, 500)) : '';
    const rawName = nextName ?? (prefix !== '' ? `${prefix}/` : '') + cString(header.subarray(0, 100));
    nextName = null;
    if (type === '5') {
      if (rawName.split('/').includes('..')) fail(source, `path traversal in ${JSON.stringify(rawName)}`);
      continue;
    }
    if (type !== '0' && type !== '\0' && type !== '7') {
      fail(source, `tar: entry ${JSON.stringify(rawName)} has unsupported type ${JSON.stringify(type)}`);
    }
    const name = normalizeEntryPath(rawName, source);
    if (files.has(name)) fail(source, `duplicate entry ${JSON.stringify(name)}`);
    total += size;
    if (total > maxBytes) fail(source, `unpacked size exceeds ${maxBytes} bytes`);
    if (files.size >= maxFiles) fail(source, `more than ${maxFiles} files`);
    files.set(name, Buffer.from(body));
  }
  if (nextName !== null) fail(source, 'tar: extended header without entry');
  return files;
}

/**
 * Reads every regular file under `root`. Symbolic links are followed only when they resolve
 * inside `root` (Kubernetes ConfigMap mounts are links into `..data/`); names starting with `..`
 * (the mount's own bookkeeping) are skipped.
 */
async function readBundleDirectory(
  root: string,
  maxBytes: number,
  maxFiles: number,
): Promise<Map<string, Buffer>> {
  const files = new Map<string, Buffer>();
  const realRoot = await fs.realpath(root);
  let total = 0;
  const walk = async (rel: string): Promise<void> => {
    const entries = await fs.readdir(path.join(realRoot, rel));
    entries.sort();
    for (const entry of entries) {
      if (entry.startsWith('..')) continue;
      const relPath = rel === '' ? entry : `${rel}/${entry}`;
      const real = await fs.realpath(path.join(realRoot, relPath));
      if (real !== realRoot && !real.startsWith(realRoot + path.sep)) {
        fail(root, `${relPath} points outside the bundle directory`);
      }
      const st = await fs.stat(real);
      if (st.isDirectory()) {
        await walk(relPath);
      } else if (st.isFile()) {
        total += st.size;
        if (total > maxBytes) fail(root, `unpacked size exceeds ${maxBytes} bytes`);
        if (files.size >= maxFiles) fail(root, `more than ${maxFiles} files`);
        files.set(relPath, await fs.readFile(real));
      } else {
        fail(root, `${relPath} is not a regular file`);
      }
    }
  };
  try {
    await walk('');
  } catch (err) {
    if (err instanceof PgwardError) throw err;
    fail(root, (err as Error).message);
  }
  return files;
}

function parseJson(bytes: Buffer, what: string, source: string): unknown {
  try {
    return JSON.parse(bytes.toString('utf8')) as unknown;
  } catch (err) {
    fail(source, `${what} is not valid JSON: ${(err as Error).message}`);
  }
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function parseManifest(bytes: Buffer | undefined, source: string): BundleManifest {
  if (bytes === undefined) return { revision: '' };
  const raw = parseJson(bytes, '.manifest', source);
  if (!isPlainObject(raw)) fail(source, '.manifest is not an object');
  const manifest: BundleManifest = { revision: '' };
  if (raw['revision'] !== undefined) {
    if (typeof raw['revision'] !== 'string') fail(source, '.manifest revision is not a string');
    manifest.revision = raw['revision'];
  }
  const roots = raw['roots'];
  if (roots !== undefined) {
    if (!Array.isArray(roots) || !roots.every((r): r is string => typeof r === 'string')) {
      fail(source, '.manifest roots is not an array of strings');
    }
    manifest.roots = roots;
  }
  const metadata = raw['metadata'];
  if (metadata !== undefined) {
    if (!isPlainObject(metadata)) fail(source, '.manifest metadata is not an object');
    manifest.metadata = metadata;
  }
  return manifest;
}

function assembleBundle(files: Map<string, Buffer>, source: string): LoadedBundle {
  const wasm = files.get('policy.wasm');
  if (wasm === undefined) fail(source, 'no /policy.wasm (build it with opa build -t wasm)');
  for (const name of files.keys()) {
    const base = name.slice(name.lastIndexOf('/') + 1);
    // Data anywhere but the root would be merged by OPA at its path; pgward does not, so refuse it.
    if (name !== 'data.json' && (base === 'data.json' || base === 'data.yaml' || base === 'data.yml')) {
      fail(source, `nested data file ${name} is not supported (put all data in /data.json)`);
    }
    if (name !== 'policy.wasm' && name.endsWith('.wasm'))
      fail(source, `extra wasm module ${name} is not supported`);
  }
  const dataBytes = files.get('data.json');
  const data = dataBytes === undefined ? {} : parseJson(dataBytes, 'data.json', source);
  if (!isPlainObject(data)) fail(source, 'data.json is not an object');
  return { wasm, data, manifest: parseManifest(files.get('.manifest'), source), files, source };
}
