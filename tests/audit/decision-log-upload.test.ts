/**
 * Decision log upload from a live gateway to a local OPA-compatible receiver that is down at
 * first: client traffic does not stall, and once the receiver listens the buffered entries arrive
 * (gzipped JSON arrays on POST /logs), valid against the event schema.
 */
import http from 'node:http';
import net from 'node:net';
import zlib from 'node:zlib';
import { Client } from 'pg';
import { ensureLocalTestDb } from '../helpers/cluster';
import { startGateway, stopAllGateways } from '../helpers/gateway';
import { validateEvent } from './event-schema';

type Rec = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

afterAll(stopAllGateways);

/** A port nobody listens on (yet). */
async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

test('uploads survive the receiver being down without stalling client traffic', async () => {
  const { database } = await ensureLocalTestDb();
  const port = await freePort();
  const gw = await startGateway({
    config: {
      audit: { sink: 'none' },
      decision_log: {
        enabled: true,
        sink: 'none',
        services: {
          receiver: { url: `http://127.0.0.1:${port}`, credentials: { bearer: { token: 't0k' } } },
        },
        decision_logs: {
          service: 'receiver',
          reporting: { min_delay_seconds: 1, max_delay_seconds: 2, buffer_size_limit_bytes: '1MiB' },
        },
      },
    },
  });
  const c = new Client({ host: gw.host, port: gw.port, user: 'postgres', database });
  await c.connect();
  // Receiver down: at least one upload fails (logged), while queries keep their usual pace.
  const failed = gw.waitForLog((l) => l.msg === 'decision log upload failed; retrying with backoff', 10_000);
  const t0 = Date.now();
  for (let i = 0; i < 200; i++) await c.query(`SELECT ${i} AS n`);
  const ms = Date.now() - t0;
  expect(ms).toBeLessThan(20_000);
  await failed;
  for (let i = 200; i < 210; i++) await c.query(`SELECT ${i} AS n`);

  // The receiver comes up on the same port: what was buffered arrives.
  const got: Rec[] = [];
  const auth: string[] = [];
  let notify: (() => void) | null = null;
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (b: Buffer) => chunks.push(b));
    req.on('end', () => {
      expect(req.url).toBe('/logs');
      expect(req.headers['content-encoding']).toBe('gzip');
      auth.push(String(req.headers.authorization));
      got.push(...(JSON.parse(zlib.gunzipSync(Buffer.concat(chunks)).toString('utf8')) as Rec[]));
      res.end();
      notify?.();
    });
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  try {
    const isThere = (): boolean => got.filter((e) => e.input?.message?.type === 'Query').length >= 210;
    while (!isThere()) await new Promise<void>((resolve) => (notify = resolve));
    expect(auth.every((a) => a === 'Bearer t0k')).toBe(true);
    for (const e of got.slice(0, 20)) validateEvent(e);
    const queries = got.filter((e) => e.input?.message?.type === 'Query');
    // Redacted by default (or left out of the input by the bundle): no literal number.
    expect(JSON.stringify(queries)).not.toMatch(/SELECT \d+ AS n/);
    const metrics = await (await gw.admin('/metrics')).text();
    expect(metrics).toMatch(/pgward_log_records_total\{log="decision_log_upload",outcome="failed"\} [1-9]/);
    expect(metrics).toMatch(/pgward_log_records_total\{log="decision_log_upload",outcome="written"\} [1-9]/);
  } finally {
    await c.end();
    await gw.stop();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}, 60_000);
