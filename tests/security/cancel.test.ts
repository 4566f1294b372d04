/**
 * Cancel keys: pgward gives every client its own BackendKeyData and honours only the keys it
 * issued; a real upstream key sent to pgward cancels nothing.
 * https://www.postgresql.org/docs/current/protocol-flow.html#PROTOCOL-FLOW-CANCELING-REQUESTS
 */
import { CLUSTER_DB, type Cluster, startCluster, stopAllClusters } from '../helpers/cluster';
import { type RunningGateway, startGateway, stopAllGateways } from '../helpers/gateway';
import {
  type BackendMessage,
  WireClient,
  dataRows,
  encodeCancelRequest,
  encodeQuery,
  errorsOf,
  exchange,
  readBackendKeyData,
} from './wire';

jest.setTimeout(60_000);

let cluster: Cluster;
let gw: RunningGateway;

beforeAll(async () => {
  cluster = await startCluster();
  gw = await startGateway({ upstream: `${cluster.host}:${cluster.port}` });
}, 120_000);

afterAll(async () => {
  await stopAllGateways();
  await stopAllClusters();
});

const STARTUP = { user: 'trust_user', database: CLUSTER_DB, application_name: 'pgward-cancel-test' };

function keyOf(msgs: BackendMessage[]): { processId: number; secretKey: Buffer } {
  const k = msgs.find((m) => m.type === 'K');
  if (!k) throw new Error('no BackendKeyData during startup');
  return readBackendKeyData(k.body);
}

async function backendPid(c: WireClient): Promise<number> {
  const rows = dataRows(await c.query('SELECT pg_backend_pid()'));
  return Number(rows[0]?.[0]);
}

/** Sends a CancelRequest on its own connection; resolves with what came back (nothing, normally). */
async function sendCancel(
  host: string,
  port: number,
  pid: number,
  key: Buffer,
): Promise<{ data: Buffer; closed: boolean }> {
  const r = await exchange(host, port, encodeCancelRequest(pid, key), 3000);
  return { data: r.data, closed: r.closed };
}

/** Waits until the backend `pid` is running pg_sleep (seen from a direct connection). */
async function waitUntilSleeping(pid: number): Promise<void> {
  const probe = await WireClient.connect(cluster.host, cluster.port);
  try {
    await probe.startup({ user: 'postgres', database: CLUSTER_DB, application_name: 'pgward-cancel-probe' });
    const deadline = Date.now() + 5000;
    while (Date.now() < deadline) {
      const rows = dataRows(
        await probe.query(
          `SELECT 1 FROM pg_stat_activity WHERE pid = ${pid} AND state = 'active' AND query LIKE '%pg_sleep%'`,
        ),
      );
      if (rows.length === 1) return;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`backend ${pid} never started its pg_sleep`);
  } finally {
    probe.destroy();
  }
}

test('the client is told the backend’s real pid, with a secret of pgward’s own (4 bytes in 3.0)', async () => {
  const c = await WireClient.connect(gw.host, gw.port);
  try {
    const key = keyOf(await c.startup(STARTUP));
    const pid = await backendPid(c);
    expect(pid).toBeGreaterThan(0);
    expect(key.processId).toBe(pid);
    expect(key.secretKey).toHaveLength(4);
  } finally {
    c.destroy();
  }
});

test('pg_sleep(30) through pgward is cancelled with pgward’s key: 57014 within 1 s', async () => {
  const c = await WireClient.connect(gw.host, gw.port);
  try {
    const key = keyOf(await c.startup(STARTUP));
    const pid = await backendPid(c);
    c.write(encodeQuery('SELECT pg_sleep(30)'));
    await waitUntilSleeping(pid);
    const t0 = Date.now();
    const cancel = await sendCancel(gw.host, gw.port, key.processId, key.secretKey);
    // Like PostgreSQL, pgward answers a CancelRequest with nothing and closes.
    expect(cancel.closed).toBe(true);
    expect(cancel.data).toHaveLength(0);
    const msgs = await c.readReady(1, 5000);
    expect(Date.now() - t0).toBeLessThan(1000);
    expect(errorsOf(msgs)).toEqual([
      expect.objectContaining({
        severity: 'ERROR',
        code: '57014',
        message: 'canceling statement due to user request',
      }),
    ]);
    // The session is still usable.
    expect(dataRows(await c.query('SELECT 42'))).toEqual([['42']]);
  } finally {
    c.destroy();
  }
});

test('pgward’s pid with a wrong secret cancels nothing', async () => {
  const c = await WireClient.connect(gw.host, gw.port);
  try {
    const key = keyOf(await c.startup(STARTUP));
    const pid = await backendPid(c);
    const t0 = Date.now();
    c.write(encodeQuery('SELECT pg_sleep(2)'));
    await waitUntilSleeping(pid);
    const wrong = Buffer.from(key.secretKey.map((b) => b ^ 0xff));
    await sendCancel(gw.host, gw.port, key.processId, wrong);
    const msgs = await c.readReady(1, 10_000);
    expect(errorsOf(msgs)).toEqual([]);
    expect(msgs.find((m) => m.type === 'C')?.body.toString('utf8', 0, 8)).toBe('SELECT 1');
    expect(Date.now() - t0).toBeGreaterThanOrEqual(1900);
  } finally {
    c.destroy();
  }
});

test('a real upstream key sent to pgward cancels nothing; sent to PostgreSQL it does', async () => {
  // A real (pid, secret) pair from PostgreSQL's own BackendKeyData on a direct connection.
  const direct = await WireClient.connect(cluster.host, cluster.port);
  try {
    const real = keyOf(await direct.startup(STARTUP));
    expect(await backendPid(direct)).toBe(real.processId);

    const t0 = Date.now();
    direct.write(encodeQuery('SELECT pg_sleep(3)'));
    await waitUntilSleeping(real.processId);
    const viaPgward = await sendCancel(gw.host, gw.port, real.processId, real.secretKey);
    expect(viaPgward.closed).toBe(true);
    expect(viaPgward.data).toHaveLength(0);
    await gw.waitForLog(
      (l) => l.msg === 'CancelRequest with a key pgward did not issue: ignored' && l.pid === real.processId,
    );
    const msgs = await direct.readReady(1, 10_000);
    expect(errorsOf(msgs)).toEqual([]);
    expect(dataRows(msgs)).toEqual([['']]);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(2900);

    // The key was genuine: sent straight to PostgreSQL, it cancels.
    direct.write(encodeQuery('SELECT pg_sleep(30)'));
    await waitUntilSleeping(real.processId);
    await sendCancel(cluster.host, cluster.port, real.processId, real.secretKey);
    expect(errorsOf(await direct.readReady(1, 5000))).toEqual([expect.objectContaining({ code: '57014' })]);
  } finally {
    direct.destroy();
  }
});

test('pgward’s key sent straight to PostgreSQL cancels nothing (the secret is pgward’s own)', async () => {
  const c = await WireClient.connect(gw.host, gw.port);
  try {
    const key = keyOf(await c.startup(STARTUP));
    const t0 = Date.now();
    c.write(encodeQuery('SELECT pg_sleep(2)'));
    await waitUntilSleeping(key.processId);
    const r = await sendCancel(cluster.host, cluster.port, key.processId, key.secretKey);
    expect(r.closed).toBe(true);
    const msgs = await c.readReady(1, 10_000);
    expect(errorsOf(msgs)).toEqual([]);
    expect(dataRows(msgs)).toEqual([['']]);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(1900);
  } finally {
    c.destroy();
  }
});
