import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startBundleServer, tgz, type BundleServer } from '../../../tests/helpers/bundle-server';
import { ErrorCodes, PgwardError } from '../errors';
import {
  createBundleSource,
  FileBundleSource,
  HttpBundleSource,
  redactUrl,
  type FetchOutcome,
} from './bundle-source';

const WASM = Buffer.from([0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00]);
const bundleRev = (rev: string): Buffer =>
  tgz({ '/policy.wasm': WASM, '/data.json': '{}', '/.manifest': JSON.stringify({ revision: rev }) });

async function fetchErr(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(PgwardError);
    expect((err as PgwardError).code).toBe(ErrorCodes.BUNDLE_FETCH);
    return (err as Error).message;
  }
  throw new Error('expected a fetch error');
}

function revisionOf(o: FetchOutcome): string {
  if (o.kind !== 'bundle') throw new Error(`expected a bundle, got ${o.kind}`);
  return o.bundle.manifest.revision;
}

describe('HttpBundleSource', () => {
  let server: BundleServer;
  beforeEach(async () => {
    server = await startBundleServer({ bundle: bundleRev('r1') });
  });
  afterEach(async () => {
    await server.close();
  });

  it('downloads, then asks with If-None-Match once the bundle is active; 304 is unchanged', async () => {
    const src = new HttpBundleSource(server.url, { timeoutMs: 2000 });
    const first = await src.fetch();
    expect(revisionOf(first)).toBe('r1');
    expect(server.requests[0]!.headers['if-none-match']).toBeUndefined();
    expect(server.requests[0]!.headers['accept-encoding']).toBe('identity');
    // Not committed (e.g. it failed verification): the next request is unconditional again.
    expect(revisionOf(await src.fetch())).toBe('r1');
    expect(server.requests[1]!.headers['if-none-match']).toBeUndefined();
    src.commit(first.kind === 'bundle' ? first.version : null);
    expect(await src.fetch()).toEqual({ kind: 'unchanged' });
    expect(server.requests[2]!.headers['if-none-match']).toBe(
      first.kind === 'bundle' ? first.version.etag : '',
    );
    expect(server.counts()).toMatchObject({ ok: 2, notModified: 1 });

    server.setBundle(bundleRev('r2'));
    const second = await src.fetch();
    expect(revisionOf(second)).toBe('r2');
  });

  it('treats the same bytes under another ETag (or none) as unchanged', async () => {
    const src = new HttpBundleSource(server.url, { timeoutMs: 2000 });
    const first = await src.fetch();
    src.commit(first.kind === 'bundle' ? first.version : null);
    server.setBundle(bundleRev('r1'), '"another"');
    expect(await src.fetch()).toEqual({ kind: 'unchanged' });
    server.setBundle(bundleRev('r1'), null);
    expect(await src.fetch()).toEqual({ kind: 'unchanged' });
    expect(server.counts().ok).toBe(3);
  });

  it('sends the bearer token, from the configuration or from a file read on each request', async () => {
    server.requireToken('s3cret');
    expect(await fetchErr(new HttpBundleSource(server.url).fetch())).toMatch(/HTTP 401/);
    expect(revisionOf(await new HttpBundleSource(server.url, { bearerToken: 's3cret' }).fetch())).toBe('r1');
    const dir = mkdtempSync(join(tmpdir(), 'pgward-token-'));
    try {
      const file = join(dir, 'token');
      writeFileSync(file, 'wrong\n');
      const src = new HttpBundleSource(server.url, { bearerTokenFile: file });
      expect(await fetchErr(src.fetch())).toMatch(/HTTP 401/);
      writeFileSync(file, 's3cret\n');
      expect(revisionOf(await src.fetch())).toBe('r1');
      expect(server.requests.at(-1)!.headers.authorization).toBe('Bearer s3cret');
      rmSync(file);
      expect(await fetchErr(src.fetch())).toMatch(/bearer token file/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('reports server errors, refused connections and timeouts as PGWARD_ERR_BUNDLE_FETCH', async () => {
    const src = new HttpBundleSource(server.url, { timeoutMs: 300 });
    server.failWith(503);
    expect(await fetchErr(src.fetch())).toMatch(/HTTP 503/);
    server.failWith(null);
    await server.goAway();
    expect(await fetchErr(src.fetch())).toMatch(/ECONNREFUSED/);

    const silent = http.createServer(() => undefined);
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', () => r()));
    try {
      const port = (silent.address() as AddressInfo).port;
      const t0 = Date.now();
      expect(
        await fetchErr(new HttpBundleSource(`http://127.0.0.1:${port}/b.tar.gz`, { timeoutMs: 300 }).fetch()),
      ).toMatch(/timed out after 300 ms/);
      expect(Date.now() - t0).toBeLessThan(3000);
    } finally {
      silent.closeAllConnections();
      await new Promise((r) => silent.close(r));
    }
  });

  it('bounds the download, by Content-Length and while streaming', async () => {
    const big = bundleRev('r1');
    const src = new HttpBundleSource(server.url, { maxBytes: big.length - 1 });
    expect(await fetchErr(src.fetch())).toMatch(/more than the limit/);

    const chunked = http.createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/gzip' });
      const chunk = Buffer.alloc(64 * 1024);
      let n = 0;
      const write = (): void => {
        while (n < 64 && res.write(chunk)) n++;
        if (n < 64) res.once('drain', write);
        else res.end();
      };
      write();
    });
    await new Promise<void>((r) => chunked.listen(0, '127.0.0.1', () => r()));
    try {
      const port = (chunked.address() as AddressInfo).port;
      const s = new HttpBundleSource(`http://127.0.0.1:${port}/b.tar.gz`, { maxBytes: 1024 * 1024 });
      expect(await fetchErr(s.fetch())).toMatch(/larger than the limit/);
    } finally {
      chunked.closeAllConnections();
      await new Promise((r) => chunked.close(r));
    }
  });

  it('refuses a body that is not a bundle with PGWARD_ERR_BUNDLE_LOAD', async () => {
    server.setBundle(Buffer.from('<html>login</html>'));
    await expect(new HttpBundleSource(server.url).fetch()).rejects.toMatchObject({
      code: ErrorCodes.BUNDLE_LOAD,
    });
  });

  it('stops a download in progress on close()', async () => {
    const silent = http.createServer(() => undefined);
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', () => r()));
    try {
      const port = (silent.address() as AddressInfo).port;
      const src = new HttpBundleSource(`http://127.0.0.1:${port}/b.tar.gz`, { timeoutMs: 10_000 });
      const p = src.fetch();
      setTimeout(() => src.close(), 100);
      expect(await fetchErr(p)).toMatch(/aborted/);
    } finally {
      silent.closeAllConnections();
      await new Promise((r) => silent.close(r));
    }
  });
});

describe('createBundleSource', () => {
  it('picks HTTP for http(s) URLs and files otherwise', () => {
    expect(createBundleSource('https://example.com/b.tar.gz')).toBeInstanceOf(HttpBundleSource);
    expect(createBundleSource('HTTP://example.com/b.tar.gz')).toBeInstanceOf(HttpBundleSource);
    expect(createBundleSource('wasm-build/out/bundle.tar.gz')).toBeInstanceOf(FileBundleSource);
  });

  it('keeps credentials out of the location', () => {
    expect(redactUrl('https://user:pw@example.com:8443/b/bundle.tar.gz?sig=abc')).toBe(
      'https://example.com:8443/b/bundle.tar.gz',
    );
    expect(createBundleSource('https://u:p@example.com/x?token=1').location).toBe('https://example.com/x');
  });

  it('reads a local bundle on every fetch', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pgward-src-'));
    try {
      const file = join(dir, 'bundle.tar.gz');
      writeFileSync(file, bundleRev('a'));
      const src = createBundleSource(file);
      expect(revisionOf(await src.fetch())).toBe('a');
      writeFileSync(file, bundleRev('b'));
      expect(revisionOf(await src.fetch())).toBe('b');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
