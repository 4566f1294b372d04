/**
 * SIGTERM to the primary of `serve --workers 2` drains every worker as one process drains
 * (lifecycle/drain.ts): /readyz turns 503, an open transaction on each worker still commits, then
 * every worker and the primary exit 0.
 */
import net from 'node:net';
import { Client } from 'pg';
import { LOCAL_PG } from '../helpers/cluster';
import { startGateway, stopAllGateways } from '../helpers/gateway';
import { connectThrough } from './support';

jest.setTimeout(90_000);

afterAll(async () => {
  await stopAllGateways();
});

test('SIGTERM: not ready at once, open transactions on both workers commit, everything exits 0', async () => {
  const gw = await startGateway({
    args: ['--workers', '2'],
    config: { audit: { sink: 'none' }, limits: { shutdown_delay_ms: 500, shutdown_timeout_ms: 20_000 } },
  });
  const clients: Client[] = [];
  const workers = new Set<number>();
  // Round robin: consecutive connections land on different workers; the key says which.
  while (workers.size < 2 && clients.length < 8) {
    const c = new Client({ host: gw.host, port: gw.port, user: LOCAL_PG.user, database: 'postgres' });
    c.on('error', () => undefined);
    await c.connect();
    await c.query('BEGIN');
    await c.query('SELECT 1');
    clients.push(c);
    workers.add(((c as unknown as { secretKey: number }).secretKey >>> 31) & 1);
  }
  expect(workers).toEqual(new Set([0, 1]));
  const exited = new Promise<number | null>((resolve) => gw.proc.once('exit', (code) => resolve(code)));
  gw.proc.kill('SIGTERM');
  await gw.waitForLog((l) => l.msg === 'signal received');
  const until = Date.now() + 5000;
  while ((await gw.admin('/readyz')).status !== 503) {
    if (Date.now() > until) throw new Error('/readyz stayed 200 after SIGTERM');
  }
  // Both workers closed their listener and wait for their open transaction.
  const drainingLogs = (): number =>
    gw.logs.filter((l) => l.msg === 'shutting down: listener closed, draining sessions').length;
  await gw.waitForLog(() => drainingLogs() >= 2, 10_000);
  for (const c of clients) {
    const r = await c.query('COMMIT');
    expect(r.command).toBe('COMMIT');
  }
  const code = await exited;
  // On a failure, what the primary said (an uncaught error shows on stderr).
  if (code !== 0)
    console.error(`primary exited ${code}; stderr:\n${gw.stderr}\nlast logs:`, gw.logs.slice(-10));
  expect(code).toBe(0);
  expect(gw.logs.filter((l) => l.msg === 'shutdown complete')).toHaveLength(2);
  await Promise.all(clients.map((c) => c.end().catch(() => undefined)));
});

test('a worker that cannot start stops the whole instance with exit 1', async () => {
  // Worker 0's admin listener cannot bind: the port is taken.
  const taken = net.createServer();
  await new Promise<void>((r) => taken.listen(0, '127.0.0.1', r));
  const port = (taken.address() as net.AddressInfo).port;
  try {
    await expect(
      startGateway({ args: ['--workers', '2'], config: { admin: { listen: `127.0.0.1:${port}` } } }),
    ).rejects.toThrow(/exited with 1/);
  } finally {
    taken.close();
  }
});

test('a worker killed while serving is started again and the instance is ready again', async () => {
  const gw = await startGateway({ args: ['--workers', '2'], config: { audit: { sink: 'none' } } });
  try {
    // Worker 1: worker 0 would come back with its admin listener on a new port (port 0 here).
    const w1 = await gw.waitForLog((l) => l.msg === 'pgward worker listening' && l.worker === 1);
    process.kill(w1.pid as number, 'SIGKILL');
    await gw.waitForLog((l) => l.msg === 'worker exited; starting it again');
    const until = Date.now() + 20_000;
    let listening = 0;
    while (listening < 3) {
      if (Date.now() > until) throw new Error('the worker was not started again');
      listening = gw.logs.filter((l) => l.msg === 'pgward worker listening').length;
      await new Promise((r) => setTimeout(r, 100));
    }
    while ((await gw.admin('/readyz').catch(() => null))?.status !== 200) {
      if (Date.now() > until) throw new Error('not ready again');
      await new Promise((r) => setTimeout(r, 100));
    }
    const c = await connectThrough(gw.host, gw.port);
    expect((await c.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
    await c.end();
  } finally {
    await gw.stop();
  }
});
