/**
 * Line sinks shared by the audit log and the decision log: stdout (JSON lines), a file with
 * size-based rotation (`path`, `path.1` … `path.N`), or none. File writes are synchronous so that a
 * caller learns at once whether this very event reached the file (fail-closed auditing needs that).
 */
import * as fs from 'node:fs';
import type { Logger } from 'pino';
import { ErrorCodes } from '../errors';
import type { Metrics } from '../metrics/metrics';

export interface FileSinkOptions {
  path?: string | undefined;
  max_bytes: number;
  /** Rotated files kept besides `path` (path.1 … path.N); 0 keeps none. */
  max_files: number;
}

export interface SinkOptions {
  sink: 'stdout' | 'file' | 'none';
  file: FileSinkOptions;
}

export interface SinkDeps {
  metrics: Pick<Metrics, 'auditSinkErrorsTotal'>;
  logger?: Logger | undefined;
  /** Where the stdout sink writes (default process.stdout). */
  stream?: NodeJS.WritableStream & { writableLength?: number };
  /** Clock for the "was the file moved or deleted" check (default Date.now). */
  now?: () => number;
  /** Name used in log lines ('audit', 'decision_log'). */
  name: string;
}

export interface LineSink {
  /** Writes one line (which must end with '\n'). false when it was not written or the sink is failing. */
  write(line: string): boolean;
  healthy(): boolean;
  close(): Promise<void>;
}

/** Upper bound on what the stdout sink buffers in memory before it reports failure. */
export const STDOUT_MAX_BUFFERED_BYTES = 16 * 1024 * 1024;
/** How often the file sink checks that `path` is still the file it has open. */
export const FILE_REOPEN_CHECK_MS = 1000;

class Health {
  private failing = false;

  constructor(private readonly deps: SinkDeps) {}

  ok(): void {
    if (this.failing) {
      this.failing = false;
      this.deps.logger?.info({ sink: this.deps.name }, 'log sink recovered');
    }
  }

  fail(err: unknown): void {
    this.deps.metrics.auditSinkErrorsTotal.inc();
    if (!this.failing) {
      this.failing = true;
      this.deps.logger?.error(
        {
          sink: this.deps.name,
          code: ErrorCodes.AUDIT_SINK,
          err: err instanceof Error ? err.message : String(err),
        },
        'log sink write failed',
      );
    }
  }

  healthy(): boolean {
    return !this.failing;
  }
}

export function createSink(opts: SinkOptions, deps: SinkDeps): LineSink {
  switch (opts.sink) {
    case 'none':
      return { write: () => true, healthy: () => true, close: () => Promise.resolve() };
    case 'stdout':
      return createStreamSink(deps);
    case 'file':
      return createFileSink(opts.file, deps);
  }
}

function createStreamSink(deps: SinkDeps): LineSink {
  const stream = deps.stream ?? process.stdout;
  const health = new Health(deps);
  const onError = (err: unknown): void => health.fail(err);
  stream.on('error', onError);
  return {
    write(line) {
      if ((stream.writableLength ?? 0) > STDOUT_MAX_BUFFERED_BYTES) {
        health.fail(new Error('stdout is not draining'));
        return false;
      }
      const wasHealthy = health.healthy();
      try {
        stream.write(line, (err?: Error | null) => {
          if (err) health.fail(err);
          else health.ok();
        });
      } catch (err) {
        health.fail(err);
        return false;
      }
      return wasHealthy;
    },
    healthy: () => health.healthy(),
    close: () => {
      stream.off('error', onError);
      return Promise.resolve();
    },
  };
}

function createFileSink(opts: FileSinkOptions, deps: SinkDeps): LineSink {
  const path = opts.path;
  if (path === undefined || path === '') throw new Error(`${deps.name}: file sink needs file.path`);
  if (!(opts.max_bytes > 0)) throw new Error(`${deps.name}: file.max_bytes must be positive`);
  const now = deps.now ?? Date.now;
  const health = new Health(deps);
  let fd: number | null = null;
  let ino = 0;
  let size = 0;
  let lastCheck = 0;

  const closeFd = (): void => {
    if (fd !== null) {
      try {
        fs.closeSync(fd);
      } catch {
        // already unusable
      }
      fd = null;
    }
  };

  const open = (): number => {
    const f = fs.openSync(path, 'a', 0o600);
    try {
      const st = fs.fstatSync(f);
      ino = st.ino;
      size = st.size;
    } catch (err) {
      fs.closeSync(f);
      throw err;
    }
    lastCheck = now();
    fd = f;
    return f;
  };

  /** Reopens when `path` was moved or deleted under us (so a removed directory is noticed). */
  const checkMoved = (): void => {
    const t = now();
    if (fd === null || t - lastCheck < FILE_REOPEN_CHECK_MS) return;
    lastCheck = t;
    let same = false;
    try {
      same = fs.statSync(path).ino === ino;
    } catch {
      same = false;
    }
    if (!same) closeFd();
  };

  const rotate = (): void => {
    closeFd();
    if (opts.max_files <= 0) {
      fs.rmSync(path, { force: true });
      return;
    }
    for (let k = opts.max_files - 1; k >= 1; k--) {
      try {
        fs.renameSync(`${path}.${k}`, `${path}.${k + 1}`);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      }
    }
    fs.renameSync(path, `${path}.1`);
  };

  const writeAll = (f: number, buf: Buffer): void => {
    let off = 0;
    while (off < buf.length) off += fs.writeSync(f, buf, off, buf.length - off);
  };

  return {
    write(line) {
      const buf = Buffer.from(line, 'utf8');
      try {
        checkMoved();
        let f = fd ?? open();
        if (size > 0 && size + buf.length > opts.max_bytes) {
          rotate();
          f = open();
        }
        writeAll(f, buf);
        size += buf.length;
        health.ok();
        return true;
      } catch (err) {
        closeFd();
        health.fail(err);
        return false;
      }
    },
    healthy: () => health.healthy(),
    close: () => {
      closeFd();
      return Promise.resolve();
    },
  };
}
