/**
 * A real local HTTP bundle server for tests, speaking OPA's bundle service protocol: `GET <path>`
 * answers 200 with the bundle and its ETag, or 304 when `If-None-Match` names the current ETag.
 * It counts what it served, can swap the bundle, require a bearer token, fail on purpose, and go
 * away (stop listening and drop every connection) and come back on the same port.
 */
import { createHash } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import * as zlib from 'node:zlib';

export interface ServedRequest {
  method: string;
  path: string;
  headers: http.IncomingHttpHeaders;
  status: number;
}

export interface BundleServer {
  /** Full URL of the bundle. */
  readonly url: string;
  readonly port: number;
  readonly requests: ServedRequest[];
  counts(): { total: number; ok: number; notModified: number; other: number };
  /** Serve these bytes from now on; the ETag defaults to a digest of the bytes. */
  setBundle(bytes: Buffer, etag?: string | null): void;
  /** Answer every request with this status (e.g. 500) until set back to null. */
  failWith(status: number | null): void;
  /** Require `Authorization: Bearer <token>` (401 otherwise); null turns it off. */
  requireToken(token: string | null): void;
  /** Stop listening and destroy open connections: clients see connection refused. */
  goAway(): Promise<void>;
  /** Listen again on the same port. */
  comeBack(): Promise<void>;
  close(): Promise<void>;
}

function etagOf(bytes: Buffer): string {
  return `"${createHash('sha256').update(bytes).digest('hex').slice(0, 24)}"`;
}

/** RFC 9110 section 13.1.2: weak comparison; `*` matches any current representation. */
function matches(ifNoneMatch: string | undefined, etag: string | null): boolean {
  if (ifNoneMatch === undefined || etag === null) return false;
  const strip = (t: string): string => t.trim().replace(/^W\//, '');
  return ifNoneMatch.split(',').some((t) => t.trim() === '*' || strip(t) === strip(etag));
}

export async function startBundleServer(
  opts: { path?: string; bundle?: Buffer } = {},
): Promise<BundleServer> {
  const bundlePath = opts.path ?? '/bundles/pgward/bundle.tar.gz';
  let bytes: Buffer | null = opts.bundle ?? null;
  let etag: string | null = bytes ? etagOf(bytes) : null;
  let forced: number | null = null;
  let token: string | null = null;
  const requests: ServedRequest[] = [];
  const sockets = new Set<Socket>();

  const server = http.createServer((req, res) => {
    const record = (status: number): void => {
      requests.push({ method: req.method ?? '', path: req.url ?? '', headers: req.headers, status });
    };
    req.resume();
    if (forced !== null) {
      record(forced);
      res.writeHead(forced, { 'content-type': 'text/plain' }).end('forced failure\n');
      return;
    }
    if (token !== null && req.headers.authorization !== `Bearer ${token}`) {
      record(401);
      res.writeHead(401, { 'www-authenticate': 'Bearer' }).end();
      return;
    }
    if (req.method !== 'GET' || req.url !== bundlePath || bytes === null) {
      record(404);
      res.writeHead(404).end();
      return;
    }
    if (matches(req.headers['if-none-match'], etag)) {
      record(304);
      res.writeHead(304, etag ? { etag } : {}).end();
      return;
    }
    record(200);
    res
      .writeHead(200, {
        'content-type': 'application/gzip',
        'content-length': String(bytes.length),
        ...(etag ? { etag } : {}),
      })
      .end(bytes);
  });
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  const listen = (port: number): Promise<void> =>
    new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
  await listen(0);
  const port = (server.address() as AddressInfo).port;
  let listening = true;

  const goAway = async (): Promise<void> => {
    if (!listening) return;
    listening = false;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    for (const s of sockets) s.destroy();
    await closed;
  };

  return {
    url: `http://127.0.0.1:${port}${bundlePath}`,
    port,
    requests,
    counts: () => ({
      total: requests.length,
      ok: requests.filter((r) => r.status === 200).length,
      notModified: requests.filter((r) => r.status === 304).length,
      other: requests.filter((r) => r.status !== 200 && r.status !== 304).length,
    }),
    setBundle(b, e) {
      bytes = b;
      etag = e === undefined ? etagOf(b) : e;
    },
    failWith(status) {
      forced = status;
    },
    requireToken(t) {
      token = t;
    },
    goAway,
    async comeBack() {
      if (listening) return;
      await listen(port);
      listening = true;
    },
    close: goAway,
  };
}

/** A gzipped ustar archive of regular files (enough for hand-made bundles in tests). */
export function tgz(files: Record<string, string | Buffer>): Buffer {
  const blocks: Buffer[] = [];
  for (const [name, content] of Object.entries(files)) {
    const body = typeof content === 'string' ? Buffer.from(content) : content;
    const h = Buffer.alloc(512);
    h.write(name, 0, 100, 'utf8');
    h.write('0000644\0', 100);
    h.write('0000000\0', 108);
    h.write('0000000\0', 116);
    h.write(body.length.toString(8).padStart(11, '0') + '\0', 124);
    h.write('00000000000\0', 136);
    h.write('        ', 148);
    h.write('0', 156);
    h.write('ustar\0', 257);
    h.write('00', 263);
    let sum = 0;
    for (const b of h) sum += b;
    h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148);
    blocks.push(h, body, Buffer.alloc((512 - (body.length % 512)) % 512));
  }
  return zlib.gzipSync(Buffer.concat([...blocks, Buffer.alloc(1024)]));
}
