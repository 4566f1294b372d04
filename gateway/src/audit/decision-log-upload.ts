/**
 * Uploads decision log entries to an OPA-compatible decision log service, as OPA's own
 * decision_logs plugin does: entries are buffered (bounded: the oldest are dropped and counted
 * when the buffer is full), and every min..max delay seconds the buffer is sent as gzipped JSON
 * arrays of at most upload_size_limit_bytes each, `POST <service url><resource>` with
 * `Content-Encoding: gzip`. A failed upload keeps its entries and retries with exponential
 * backoff (min_delay doubled per failure, at most max_delay). Nothing here runs on the client's
 * path: push() only appends to the buffer.
 * https://www.openpolicyagent.org/docs/latest/management-decision-logs/
 */
import fs from 'node:fs';
import zlib from 'node:zlib';
import { promisify } from 'node:util';
import type { Logger } from 'pino';
import { ErrorCodes } from '../errors';

const gzip = promisify(zlib.gzip);

/** OPA's `services.<name>` entry (the parts pgward uses). */
export interface UploadService {
  url: string;
  headers: Readonly<Record<string, string>>;
  credentials: {
    bearer?: { token?: string | undefined; token_path?: string | undefined; scheme: string } | undefined;
  };
  response_header_timeout_seconds: number;
}

/** OPA's `decision_logs` section (the parts pgward uses). */
export interface UploadOptions {
  service: string;
  resource: string;
  reporting: {
    buffer_size_limit_bytes: number;
    upload_size_limit_bytes: number;
    min_delay_seconds: number;
    max_delay_seconds: number;
  };
}

export interface UploadDeps {
  logger?: Logger | undefined;
  onUploaded?(events: number): void;
  onDropped?(events: number): void;
  onFailed?(): void;
  /** Default Math.random (the delay between uploads is drawn from [min, max]). */
  random?: () => number;
  fetch?: typeof fetch;
}

export interface UploadStats {
  buffered_events: number;
  buffered_bytes: number;
  uploaded: number;
  dropped: number;
  failures: number;
  /** Consecutive failed uploads (0 when the last one succeeded). */
  backoff: number;
}

export interface DecisionLogUploader {
  /** Appends one entry (already redacted); never blocks. */
  push(entry: unknown): void;
  /** Uploads everything buffered now; resolves false when an upload failed. */
  flush(): Promise<boolean>;
  stats(): UploadStats;
  /** Stops the timer, tries one last flush (bounded by the service timeout). */
  close(): Promise<void>;
}

export function createDecisionLogUploader(
  service: UploadService,
  opts: UploadOptions,
  deps: UploadDeps = {},
): DecisionLogUploader {
  const url = joinUrl(service.url, opts.resource);
  const rep = opts.reporting;
  const random = deps.random ?? Math.random;
  const doFetch = deps.fetch ?? fetch;
  const buffer: { seq: number; line: string }[] = [];
  let seq = 0;
  let bufferedBytes = 0;
  let timer: NodeJS.Timeout | null = null;
  let inflight: Promise<boolean> | null = null;
  let closed = false;
  let failing = false;
  const st = { uploaded: 0, dropped: 0, failures: 0, backoff: 0 };

  const headers = (): Record<string, string> => {
    const h: Record<string, string> = {
      ...service.headers,
      'content-type': 'application/json',
      'content-encoding': 'gzip',
    };
    const b = service.credentials.bearer;
    if (b) {
      const token = b.token ?? (b.token_path ? fs.readFileSync(b.token_path, 'utf8').trim() : '');
      h['authorization'] = `${b.scheme} ${token}`;
    }
    return h;
  };

  /** Takes the oldest entries whose JSON array stays within the upload size limit (at least one). */
  const takeChunk = (): { seq: number; line: string }[] => {
    let size = 2;
    let n = 0;
    while (n < buffer.length) {
      const len = Buffer.byteLength(buffer[n]!.line) + 1;
      if (n > 0 && size + len > rep.upload_size_limit_bytes) break;
      size += len;
      n++;
    }
    return buffer.slice(0, n);
  };

  const upload = async (): Promise<boolean> => {
    while (buffer.length > 0) {
      const chunk = takeChunk();
      let ok = false;
      let why = '';
      try {
        const body = await gzip(Buffer.from(`[${chunk.map((e) => e.line).join(',')}]`));
        const res = await doFetch(url, {
          method: 'POST',
          headers: headers(),
          body,
          signal: AbortSignal.timeout(service.response_header_timeout_seconds * 1000),
        });
        await res.arrayBuffer().catch(() => undefined);
        ok = res.status >= 200 && res.status < 300;
        if (!ok) why = `HTTP ${res.status}`;
      } catch (err) {
        why = (err as Error).message;
      }
      if (!ok) {
        st.failures++;
        st.backoff++;
        deps.onFailed?.();
        if (!failing) {
          failing = true;
          deps.logger?.error(
            { code: ErrorCodes.AUDIT_SINK, sink: 'decision_log_upload', url, err: why },
            'decision log upload failed; retrying with backoff',
          );
        }
        return false;
      }
      // push() may have dropped some of the chunk from the head meanwhile: remove what is left of it.
      const last = chunk[chunk.length - 1]!.seq;
      while (buffer.length > 0 && buffer[0]!.seq <= last) bufferedBytes -= buffer.shift()!.line.length;
      st.uploaded += chunk.length;
      st.backoff = 0;
      deps.onUploaded?.(chunk.length);
      if (failing) {
        failing = false;
        deps.logger?.info({ sink: 'decision_log_upload', url }, 'decision log upload recovered');
      }
    }
    return true;
  };

  const flush = (): Promise<boolean> => {
    inflight ??= upload().finally(() => {
      inflight = null;
    });
    return inflight;
  };

  const nextDelayMs = (): number => {
    const min = rep.min_delay_seconds * 1000;
    const max = rep.max_delay_seconds * 1000;
    if (st.backoff > 0) return Math.min(max, min * 2 ** Math.min(st.backoff - 1, 20));
    return min + Math.floor(random() * (max - min));
  };

  const arm = (): void => {
    if (closed) return;
    timer = setTimeout(() => {
      timer = null;
      void flush().finally(arm);
    }, nextDelayMs());
    timer.unref();
  };
  arm();

  return {
    push(entry) {
      if (closed) {
        st.dropped++;
        deps.onDropped?.(1);
        return;
      }
      const line = JSON.stringify(entry);
      buffer.push({ seq: seq++, line });
      bufferedBytes += line.length;
      let dropped = 0;
      // OPA drops the oldest events when the buffer is over its limit; an entry being uploaded
      // may be dropped too (upload() then removes only what is left, by sequence number).
      while (bufferedBytes > rep.buffer_size_limit_bytes && buffer.length > 0) {
        bufferedBytes -= buffer.shift()!.line.length;
        dropped++;
      }
      if (dropped > 0) {
        st.dropped += dropped;
        deps.onDropped?.(dropped);
      }
    },
    flush,
    stats: () => ({ ...st, buffered_events: buffer.length, buffered_bytes: bufferedBytes }),
    async close() {
      closed = true;
      if (timer) clearTimeout(timer);
      timer = null;
      if (inflight) await inflight;
      if (buffer.length > 0 && st.backoff === 0) await flush();
    },
  };
}

function joinUrl(base: string, resource: string): string {
  return `${base.replace(/\/+$/, '')}/${resource.replace(/^\/+/, '')}`;
}
