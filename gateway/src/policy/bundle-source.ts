/**
 * Where bundles come from: a local `.tar.gz` or directory, or an HTTP(S) server speaking OPA's
 * bundle service protocol — `GET <url>` answered with `200` and a gzipped tarball, or `304 Not
 * Modified` when the `If-None-Match` ETag still matches.
 * https://www.openpolicyagent.org/docs/latest/management-bundles/#bundle-service-api
 *
 * A source only fetches; the caller verifies, builds, smoke-tests and activates the bundle, then
 * calls `commit()` so that the next fetch is conditional on what is actually active.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { ErrorCodes, PgwardError } from '../errors';
import { loadBundle, loadBundleFromBuffer, type LoadedBundle } from './bundle';

export type FetchOutcome =
  | {
      kind: 'bundle';
      bundle: LoadedBundle;
      /** What `commit()` needs to make the next fetch conditional (HTTP only). */
      version: SourceVersion;
    }
  | { kind: 'unchanged' };

export interface SourceVersion {
  etag: string | null;
  /** SHA-256 of the downloaded bytes. */
  digest: string;
}

export interface BundleSource {
  readonly kind: 'file' | 'http';
  /** The location for logs and /v1/bundle (URL credentials and query removed). */
  readonly location: string;
  fetch(): Promise<FetchOutcome>;
  /** The fetched bundle is now active. */
  commit(version: SourceVersion | null): void;
  /** Aborts a fetch in progress. */
  close(): void;
}

export interface BundleSourceOptions {
  /** Upper bound on the downloaded or read bundle and on its unpacked size. Default 64 MiB. */
  maxBytes?: number | undefined;
  /** HTTP: `Authorization: Bearer <token>`. */
  bearerToken?: string | undefined;
  /** HTTP: file holding the bearer token, read before every request (tokens rotate). */
  bearerTokenFile?: string | undefined;
  /** HTTP: the whole request, headers and body, must finish within this time. Default 30 s. */
  timeoutMs?: number | undefined;
  /** HTTP: sent as User-Agent. */
  userAgent?: string | undefined;
}

export const DEFAULT_MAX_BUNDLE_BYTES = 64 * 1024 * 1024;
const DEFAULT_TIMEOUT_MS = 30_000;

export function isHttpSource(source: string): boolean {
  return /^https?:\/\//i.test(source);
}

export function createBundleSource(source: string, opts: BundleSourceOptions = {}): BundleSource {
  return isHttpSource(source) ? new HttpBundleSource(source, opts) : new FileBundleSource(source, opts);
}

export class FileBundleSource implements BundleSource {
  readonly kind = 'file' as const;
  readonly location: string;
  private readonly maxBytes: number;

  constructor(
    private readonly path: string,
    opts: BundleSourceOptions = {},
  ) {
    this.location = path;
    this.maxBytes = opts.maxBytes ?? DEFAULT_MAX_BUNDLE_BYTES;
  }

  async fetch(): Promise<FetchOutcome> {
    const bundle = await loadBundle(this.path, { maxBytes: this.maxBytes });
    return { kind: 'bundle', bundle, version: { etag: null, digest: '' } };
  }

  commit(): void {}

  close(): void {}
}

function fetchError(location: string, why: string): PgwardError {
  return new PgwardError(ErrorCodes.BUNDLE_FETCH, `cannot download bundle ${location}: ${why}`);
}

/** The URL without userinfo and query string (which may carry credentials). */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.host}${u.pathname}`;
  } catch {
    return '<invalid url>';
  }
}

/** Undici wraps network failures as `TypeError: fetch failed` with the reason in `cause`. */
function describeFetchFailure(err: unknown, timeoutMs: number): string {
  const e = err as { name?: string; message?: string; cause?: { code?: string; message?: string } };
  if (e.name === 'TimeoutError') return `timed out after ${timeoutMs} ms`;
  if (e.name === 'AbortError') return 'aborted';
  const cause = e.cause;
  if (cause) return [cause.code, cause.message].filter((s) => s !== undefined && s !== '').join(': ');
  return e.message ?? String(err);
}

export class HttpBundleSource implements BundleSource {
  readonly kind = 'http' as const;
  readonly location: string;
  private readonly maxBytes: number;
  private readonly timeoutMs: number;
  /** ETag and digest of the active bundle; null until one from this source is active. */
  private active: SourceVersion | null = null;
  private readonly closer = new AbortController();

  constructor(
    private readonly url: string,
    private readonly opts: BundleSourceOptions = {},
  ) {
    if (!isHttpSource(url)) throw new PgwardError(ErrorCodes.CONFIG_INVALID, `not an http(s) URL: ${url}`);
    this.location = redactUrl(url);
    this.maxBytes = opts.maxBytes ?? DEFAULT_MAX_BUNDLE_BYTES;
    this.timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  }

  private token(): string | null {
    if (this.opts.bearerTokenFile !== undefined) {
      let t: string;
      try {
        t = readFileSync(this.opts.bearerTokenFile, 'utf8').trim();
      } catch (err) {
        throw fetchError(this.location, `cannot read the bearer token file: ${(err as Error).message}`);
      }
      if (t === '') throw fetchError(this.location, 'the bearer token file is empty');
      return t;
    }
    return this.opts.bearerToken ?? null;
  }

  async fetch(): Promise<FetchOutcome> {
    const headers: Record<string, string> = {
      // A .tar.gz must arrive as sent: a transparently decoded body would no longer be gzip.
      'accept-encoding': 'identity',
      accept: 'application/gzip, application/octet-stream;q=0.9, */*;q=0.1',
      // pgward reads snapshot bundles only (no delta bundles).
      prefer: 'modes=snapshot',
    };
    if (this.opts.userAgent !== undefined) headers['user-agent'] = this.opts.userAgent;
    const token = this.token();
    if (token !== null) headers['authorization'] = `Bearer ${token}`;
    const etag = this.active?.etag ?? null;
    if (etag !== null) headers['if-none-match'] = etag;

    const signal = AbortSignal.any([AbortSignal.timeout(this.timeoutMs), this.closer.signal]);
    let res: Response;
    try {
      res = await fetch(this.url, { method: 'GET', headers, signal, redirect: 'follow' });
    } catch (err) {
      throw fetchError(this.location, describeFetchFailure(err, this.timeoutMs));
    }
    if (res.status === 304) {
      await res.body?.cancel().catch(() => undefined);
      if (etag === null) throw fetchError(this.location, '304 Not Modified to an unconditional request');
      return { kind: 'unchanged' };
    }
    if (res.status !== 200) {
      await res.body?.cancel().catch(() => undefined);
      throw fetchError(this.location, `HTTP ${res.status}${res.statusText ? ` ${res.statusText}` : ''}`);
    }
    const bytes = await this.readBody(res);
    const digest = createHash('sha256').update(bytes).digest('hex');
    const version: SourceVersion = { etag: res.headers.get('etag'), digest };
    // Same bytes as the active bundle under a new ETag (or a server without ETags): nothing to do.
    if (this.active !== null && this.active.digest === digest) {
      this.active = version;
      return { kind: 'unchanged' };
    }
    const bundle = loadBundleFromBuffer(bytes, this.location, { maxBytes: this.maxBytes });
    return { kind: 'bundle', bundle, version };
  }

  private async readBody(res: Response): Promise<Buffer> {
    const declared = res.headers.get('content-length');
    if (declared !== null && Number(declared) > this.maxBytes) {
      await res.body?.cancel().catch(() => undefined);
      throw fetchError(this.location, `bundle is ${declared} bytes, more than the limit of ${this.maxBytes}`);
    }
    if (res.body === null) return Buffer.alloc(0);
    const chunks: Buffer[] = [];
    let total = 0;
    const reader = res.body.getReader();
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        total += value.byteLength;
        if (total > this.maxBytes) {
          await reader.cancel().catch(() => undefined);
          throw fetchError(this.location, `bundle is larger than the limit of ${this.maxBytes} bytes`);
        }
        chunks.push(Buffer.from(value.buffer, value.byteOffset, value.byteLength));
      }
    } catch (err) {
      if (err instanceof PgwardError) throw err;
      throw fetchError(this.location, `reading the body: ${describeFetchFailure(err, this.timeoutMs)}`);
    }
    return Buffer.concat(chunks, total);
  }

  commit(version: SourceVersion | null): void {
    if (version !== null) this.active = version;
  }

  close(): void {
    this.closer.abort();
  }
}
