/**
 * Shadow mode: a candidate bundle evaluated beside the active one; disagreements appear in the
 * audit log (kind 'shadow') and in pgward_shadow_disagreements_total; enforcement is unchanged.
 */
import fs from 'node:fs';
import path from 'node:path';
import { stopAllClusters, CLUSTER_DB, type Cluster } from '../helpers/cluster';
import { buildBundleWithData, REPO, startGateway, stopAllGateways } from '../helpers/gateway';
import { pgClient } from '../helpers/pg-clients';
import { startReplayCluster } from './helpers';

jest.setTimeout(120_000);

let cluster: Cluster;

beforeAll(async () => {
  cluster = await startReplayCluster();
});

afterAll(async () => {
  await stopAllGateways();
  await stopAllClusters();
});

test('the shadow bundle disagrees, is audited and counted, and never enforces', async () => {
  const shipped = JSON.parse(fs.readFileSync(path.join(REPO, 'rego', 'data.json'), 'utf8')) as {
    pgward: { read_only_users: string[] };
  };
  const shadow = await buildBundleWithData({
    read_only_users: [...shipped.pgward.read_only_users, 'postgres'],
  });
  const gw = await startGateway({
    upstream: `${cluster.host}:${cluster.port}`,
    config: { policy: { shadow_bundle: shadow }, audit: { sink: 'stdout' } },
  });
  await gw.waitForLog((l) => l.msg === 'shadow bundle loaded');
  const c = await pgClient({ host: gw.host, port: gw.port, user: 'postgres', database: CLUSTER_DB });
  try {
    // Allowed by the active bundle, denied by the shadow one: it runs.
    const ins = await c.query(
      'INSERT INTO replay_orders (customer_id, amount) VALUES (1, 9.99) RETURNING id',
    );
    expect(ins.rowCount).toBe(1);
    // Both agree: no event.
    await c.query('SELECT 1');
    const n = await c.query('SELECT count(*)::int AS n FROM replay_orders WHERE amount = 9.99');
    expect(n.rows[0].n).toBe(1);
  } finally {
    await c.end();
  }
  const ev = await gw.waitForLog((l) => l.kind === 'shadow');
  expect(ev).toMatchObject({ message_type: 'Query', connection: { user: 'postgres' } });
  expect(String(ev.sql)).toMatch(/^INSERT INTO replay_orders/);
  expect((ev.reasons as string[]).length).toBeGreaterThan(0);
  expect(gw.logs.filter((l) => l.kind === 'shadow')).toHaveLength(1);
  expect(gw.logs.some((l) => l.kind === 'deny')).toBe(false);
  const metrics = await (await gw.admin('/metrics')).text();
  expect(metrics).toMatch(/^pgward_shadow_disagreements_total 1$/m);
  expect(metrics).toMatch(/^pgward_audit_events_total\{kind="shadow"\} 1$/m);
});
