import http from 'node:http';
import type { AddressInfo } from 'node:net';
import zlib from 'node:zlib';
import { createDecisionLogUploader, type UploadOptions, type UploadService } from './decision-log-upload';

interface Received {
  url: string;
  headers: http.IncomingHttpHeaders;
  events: { decision_id: string }[];
}

/** A local OPA-compatible decision log receiver. */
class Receiver {
  readonly got: Received[] = [];
  status = 200;
  private server: http.Server | null = null;
  private waiters: (() => void)[] = [];
  port = 0;

  async start(port = 0): Promise<void> {
    this.server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        if (this.status === 200) {
          const body = zlib.gunzipSync(Buffer.concat(chunks)).toString('utf8');
          this.got.push({
            url: req.url ?? '',
            headers: req.headers,
            events: JSON.parse(body) as { decision_id: string }[],
          });
        }
        res.statusCode = this.status;
        res.end();
        for (const w of this.waiters.splice(0)) w();
      });
    });
    await new Promise<void>((resolve) => this.server!.listen(port, '127.0.0.1', resolve));
    this.port = (this.server.address() as AddressInfo).port;
  }

  async stop(): Promise<void> {
    const s = this.server;
    this.server = null;
    if (s) await new Promise<void>((resolve) => s.close(() => resolve()));
  }

  /** Resolves once `n` events in total were received. */
  async waitFor(n: number): Promise<void> {
    while (this.events().length < n) await new Promise<void>((resolve) => this.waiters.push(resolve));
  }

  events(): string[] {
    return this.got.flatMap((g) => g.events.map((e) => e.decision_id));
  }
}

function service(port: number, over: Partial<UploadService> = {}): UploadService {
  return {
    url: `http://127.0.0.1:${port}/v1/`,
    headers: { 'x-tenant': 'acme' },
    credentials: { bearer: { token: 's3cr3t', scheme: 'Bearer' } },
    response_header_timeout_seconds: 2,
    ...over,
  };
}

function options(over: Partial<UploadOptions['reporting']> = {}): UploadOptions {
  return {
    service: 'logs',
    resource: '/logs',
    reporting: {
      buffer_size_limit_bytes: 1 << 20,
      upload_size_limit_bytes: 32 * 1024,
      min_delay_seconds: 3600,
      max_delay_seconds: 3600,
      ...over,
    },
  };
}

const entry = (i: number): { decision_id: string; pad: string } => ({
  decision_id: `d-${i}`,
  pad: 'x'.repeat(100),
});

describe('decision log upload', () => {
  const receivers: Receiver[] = [];
  afterEach(async () => {
    for (const r of receivers.splice(0)) await r.stop();
  });
  const receiver = async (port = 0): Promise<Receiver> => {
    const r = new Receiver();
    await r.start(port);
    receivers.push(r);
    return r;
  };

  it('posts gzipped JSON arrays to <url>/logs with the service headers and bearer token, split by size', async () => {
    const r = await receiver();
    const up = createDecisionLogUploader(service(r.port), options({ upload_size_limit_bytes: 2048 }));
    for (let i = 0; i < 50; i++) up.push(entry(i));
    expect(await up.flush()).toBe(true);
    expect(r.events()).toEqual(Array.from({ length: 50 }, (_, i) => `d-${i}`));
    expect(r.got.length).toBeGreaterThan(1);
    for (const g of r.got) {
      expect(g.url).toBe('/v1/logs');
      expect(g.headers['content-encoding']).toBe('gzip');
      expect(g.headers['content-type']).toBe('application/json');
      expect(g.headers['authorization']).toBe('Bearer s3cr3t');
      expect(g.headers['x-tenant']).toBe('acme');
      expect(g.events.length).toBeLessThanOrEqual(2048 / 100);
    }
    expect(up.stats()).toMatchObject({ uploaded: 50, buffered_events: 0, dropped: 0, failures: 0 });
    await up.close();
  });

  it('survives the receiver being down: bounded buffer, drops counted, delivered when it is back', async () => {
    const probe = await receiver();
    const port = probe.port;
    await probe.stop();
    receivers.pop();
    let dropped = 0;
    let failed = 0;
    const up = createDecisionLogUploader(service(port), options({ buffer_size_limit_bytes: 64 * 1024 }), {
      onDropped: (n) => (dropped += n),
      onFailed: () => failed++,
    });
    // 2,000 entries of ~130 bytes into a 64 KiB buffer while nobody listens.
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < 2000; i++) up.push(entry(i));
    const pushMs = Number(process.hrtime.bigint() - t0) / 1e6;
    expect(pushMs).toBeLessThan(1000);
    expect(await up.flush()).toBe(false);
    expect(failed).toBe(1);
    const st = up.stats();
    expect(st.buffered_bytes).toBeLessThanOrEqual(64 * 1024);
    expect(dropped).toBe(2000 - st.buffered_events);
    expect(dropped).toBeGreaterThan(0);
    expect(st.backoff).toBe(1);
    // The oldest were dropped: what is kept is the newest.
    const kept = st.buffered_events;
    const r = await receiver(port);
    expect(await up.flush()).toBe(true);
    expect(r.events()).toEqual(Array.from({ length: kept }, (_, i) => `d-${2000 - kept + i}`));
    expect(up.stats()).toMatchObject({ backoff: 0, buffered_events: 0, uploaded: kept });
    await up.close();
  });

  it('keeps the entries of a rejected upload and retries them', async () => {
    const r = await receiver();
    r.status = 503;
    const up = createDecisionLogUploader(service(r.port), options());
    up.push(entry(1));
    expect(await up.flush()).toBe(false);
    r.status = 200;
    up.push(entry(2));
    expect(await up.flush()).toBe(true);
    expect(r.events()).toEqual(['d-1', 'd-2']);
    await up.close();
  });

  it('uploads on its own every min..max delay seconds, and with backoff after a failure', async () => {
    const r = await receiver();
    r.status = 500;
    let failed = 0;
    const up = createDecisionLogUploader(
      service(r.port),
      options({ min_delay_seconds: 1, max_delay_seconds: 2 }),
      { onFailed: () => failed++ },
    );
    up.push(entry(1));
    // The first timed upload fails; the retry (backoff: min_delay) succeeds.
    await new Promise<void>((resolve) => {
      const check = setInterval(() => {
        if (failed > 0) {
          clearInterval(check);
          resolve();
        }
      }, 20);
    });
    r.status = 200;
    await r.waitFor(1);
    expect(r.events()).toEqual(['d-1']);
    await up.close();
  }, 20000);

  it('reads the token from token_path on each upload, and drops what is pushed after close', async () => {
    const r = await receiver();
    const fs = await import('node:fs');
    const os = await import('node:os');
    const path = await import('node:path');
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'pgward-tok-')), 'token');
    fs.writeFileSync(file, 'from-file\n');
    let dropped = 0;
    const up = createDecisionLogUploader(
      service(r.port, { credentials: { bearer: { token_path: file, scheme: 'Bearer' } } }),
      options(),
      { onDropped: (n) => (dropped += n) },
    );
    up.push(entry(1));
    await up.close(); // the last flush on close delivers it
    expect(r.got[0]!.headers['authorization']).toBe('Bearer from-file');
    up.push(entry(2));
    expect(dropped).toBe(1);
  });
});
