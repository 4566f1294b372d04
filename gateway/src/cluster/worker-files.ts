/**
 * With several workers, every file a worker writes is its own: `audit.jsonl` becomes
 * `audit.w0.jsonl`, `audit.w1.jsonl`, … (rotation per file as before) and captures go to
 * `<capture.dir>/w0`, `<capture.dir>/w1`, …; no two processes append to one file, so records never
 * interleave. Records on stdout reach the primary through a pipe and are written whole lines at a
 * time (primary.ts).
 */
import path from 'node:path';
import type { Config } from '../config';

/** `dir/name.ext` → `dir/name.w<index>.ext` (`name.w<index>` without an extension). */
export function workerFile(file: string, index: number): string {
  const ext = path.extname(file);
  return `${file.slice(0, file.length - ext.length)}.w${index}${ext}`;
}

type Mutable<T> = { -readonly [K in keyof T]: Mutable<T[K]> };

export function configForWorker(config: Config, index: number): Config {
  const c = structuredClone(config) as Mutable<Config>;
  for (const f of [c.audit.file, c.decision_log.file, c.statement_log.file]) {
    if (f.path !== undefined) f.path = workerFile(f.path, index);
  }
  c.capture.dir = path.join(c.capture.dir, `w${index}`);
  return c as Config;
}
