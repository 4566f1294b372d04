/**
 * Shutdown behind a Kubernetes Service (issue 13). With pgbench running through pgward:
 *  - SIGTERM turns /readyz to 503 at once, while new connections still succeed for the delay;
 *  - then the listener closes, an open transaction still commits, and the gateway exits 0;
 *  - pgbench reports zero failed transactions.
 * And at the shutdown timeout a running query is cancelled and the gateway waits for the server,
 * so the query does not outlive it.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Client } from 'pg';
import { ensureLocalTestDb, LOCAL_PG } from '../helpers/cluster';
import { buildBundleWithData, startGateway, stopAllGateways, type RunningGateway } from '../helpers/gateway';

jest.setTimeout(120_000);

const DELAY_MS = 12_000;

let bundle = '';
let database = '';
let tmp = '';

beforeAll(async () => {
  bundle = await buildBundleWithData({ admins: ['postgres'] });
  database = (await ensureLocalTestDb()).database;
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'pgward-drain-'));
});

afterAll(async () => {
  await stopAllGateways();
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

function client(gw: RunningGateway, application_name: string): Client {
  const c = new Client({ host: gw.host, port: gw.port, user: LOCAL_PG.user, database, application_name });
  c.on('error', () => undefined);
  return c;
}

async function readyStatus(gw: RunningGateway): Promise<number> {
  return (await gw.admin('/readyz')).status;
}

/** Resolves with the first status that is not `status`; polls as fast as the sidecar answers. */
async function untilStatusLeaves(gw: RunningGateway, status: number, timeoutMs: number): Promise<number> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const s = await readyStatus(gw);
    if (s !== status) return s;
    if (Date.now() > end) throw new Error(`/readyz stayed ${status} for ${timeoutMs} ms`);
  }
}

function exitOf(gw: RunningGateway): Promise<number | null> {
  if (gw.proc.exitCode !== null) return Promise.resolve(gw.proc.exitCode);
  return new Promise((resolve) => gw.proc.once('exit', (code) => resolve(code)));
}

function tcpConnect(host: string, port: number): Promise<'connected' | string> {
  return new Promise((resolve) => {
    const s = net.connect({ host, port });
    s.once('connect', () => {
      s.destroy();
      resolve('connected');
    });
    s.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
  });
}

it('SIGTERM under pgbench: /readyz 503 at once, new connections served during the delay, clean drain, zero failed transactions', async () => {
  const gw = await startGateway({
    bundle,
    config: {
      audit: { sink: 'none' },
      limits: { shutdown_delay_ms: DELAY_MS, shutdown_timeout_ms: 20_000, shutdown_cancel_wait_ms: 5000 },
    },
  });
  expect(await readyStatus(gw)).toBe(200);

  // A transaction that is open across the whole shutdown: it must still commit.
  const tx = client(gw, 'pgward-drain-tx');
  await tx.connect();
  const txEnded = new Promise<void>((resolve) => tx.once('end', () => resolve()));
  await tx.query('BEGIN');
  await tx.query('SELECT 1');

  // pgbench: a new connection per transaction (-C), so the listener is exercised the whole time.
  const script = path.join(tmp, 'tx.sql');
  fs.writeFileSync(script, 'BEGIN;\nSELECT 1;\nSELECT pg_sleep(0.005);\nCOMMIT;\n');
  const pgbench = spawn(
    'pgbench',
    ['-n', '-C', '-c', '4', '-j', '2', '-T', '5', '-f', script, '-h', gw.host, '-p', String(gw.port)].concat([
      '-U',
      LOCAL_PG.user,
      database,
    ]),
    { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, PGAPPNAME: 'pgward-drain-pgbench' } },
  );
  let out = '';
  pgbench.stdout.on('data', (c: Buffer) => (out += c.toString()));
  pgbench.stderr.on('data', (c: Buffer) => (out += c.toString()));
  const pgbenchDone = new Promise<number | null>((resolve) => pgbench.on('close', (code) => resolve(code)));

  // Wait until the load is really flowing through pgward (sessions counted by the gateway).
  const opened = async (): Promise<number> => {
    const text = await (await gw.admin('/metrics')).text();
    return Number(/^pgward_connections_opened_total (\d+)/m.exec(text)?.[1] ?? 0);
  };
  const t0 = Date.now();
  while ((await opened()) < 6) {
    if (Date.now() - t0 > 15_000) throw new Error(`pgbench made no progress: ${out}`);
  }

  const exited = exitOf(gw);
  const termAt = Date.now();
  gw.proc.kill('SIGTERM');
  expect(await untilStatusLeaves(gw, 200, 2000)).toBe(503);
  const notReadyAfterMs = Date.now() - termAt;
  expect(notReadyAfterMs).toBeLessThan(1000);
  const body = (await (await gw.admin('/readyz')).json()) as { missing: string[] };
  expect(body.missing).toEqual(['accepting']);

  // Not ready, yet still serving new connections (kube-proxy may still route here).
  const late = client(gw, 'pgward-drain-late');
  await late.connect();
  expect((await late.query('SELECT 7 AS n')).rows[0]).toEqual({ n: 7 });
  expect(Date.now() - termAt).toBeLessThan(DELAY_MS);
  expect(await readyStatus(gw)).toBe(503);
  await late.end();

  const bench = await pgbenchDone;
  expect(Date.now() - termAt).toBeLessThan(DELAY_MS); // the load ran inside the window
  expect({ code: bench, out }).toMatchObject({ code: 0 });
  expect(out).toMatch(/number of failed transactions: 0 \(0\.000%\)/);
  const processed = Number(/number of transactions actually processed: (\d+)/.exec(out)?.[1] ?? 0);
  expect(processed).toBeGreaterThan(10);

  // After the delay: the listener closes; the open transaction still finishes and commits.
  await gw.waitForLog((l) => l.msg === 'shutting down: listener closed, draining sessions', DELAY_MS + 5000);
  expect(Date.now() - termAt).toBeGreaterThanOrEqual(DELAY_MS - 50);
  expect(await tcpConnect(gw.host, gw.port)).toBe('ECONNREFUSED');
  expect((await tx.query('SELECT 2 AS n')).rows[0]).toEqual({ n: 2 });
  await tx.query('COMMIT');
  await txEnded; // idle now: pgward ends the session (57P01) and the client sees the end

  expect(await exited).toBe(0);
  const done = gw.logs.find((l) => l.msg === 'shutdown: sessions closed');
  expect(done).toMatchObject({ cancelled: 0, terminated: 0 });
  expect(gw.logs.some((l) => l.msg === 'shutdown complete')).toBe(true);
});

it('at the shutdown timeout a running query is cancelled and the server confirms before the gateway exits', async () => {
  const gw = await startGateway({
    bundle,
    config: {
      audit: { sink: 'none' },
      limits: { shutdown_delay_ms: 0, shutdown_timeout_ms: 500, shutdown_cancel_wait_ms: 10_000 },
    },
  });
  const marker = `pgward_drain_orphan_${process.pid}`;
  const c = client(gw, 'pgward-drain-orphan');
  await c.connect();
  const running = c.query(`SELECT pg_sleep(25) AS ${marker}`).then(
    () => null,
    (err: { code?: string }) => err.code ?? 'error',
  );

  const direct = new Client({ ...LOCAL_PG, database: 'postgres', application_name: 'pgward-drain-check' });
  direct.on('error', () => undefined);
  await direct.connect();
  try {
    const activeCount = async (): Promise<number> => {
      const r = await direct.query<{ n: string }>(
        `SELECT count(*) AS n FROM pg_stat_activity WHERE state = 'active' AND query LIKE $1 AND pid <> pg_backend_pid()`,
        [`%${marker}%`],
      );
      return Number(r.rows[0]?.n);
    };
    const t0 = Date.now();
    while ((await activeCount()) === 0) {
      if (Date.now() - t0 > 10_000) throw new Error('the query never showed up in pg_stat_activity');
    }

    const exited = exitOf(gw);
    gw.proc.kill('SIGTERM');
    expect(await exited).toBe(0);
    // The gateway is gone; the query must be gone too (not still sleeping on the server).
    expect(await activeCount()).toBe(0);
    expect(await running).toBe('57014'); // query_canceled, the server's own answer
    expect(gw.logs.find((l) => l.msg === 'shutdown: sessions closed')).toMatchObject({
      cancelled: 1,
      terminated: 0,
    });
  } finally {
    await direct.end();
    await c.end().catch(() => undefined);
  }
});
