/**
 * Re-capturing the same workload leaves the expectations file unchanged: two live captures of the
 * same scenarios (run concurrently, so their connections interleave differently; new connection
 * ids; different file names) give byte-identical expect.jsonl files.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { stopAllClusters, CLUSTER_DB, type Cluster } from '../helpers/cluster';
import { SHIPPED_BUNDLE, startGateway, stopAllGateways } from '../helpers/gateway';
import { runReplay } from '../../gateway/src/replay/cli';
import { SCENARIOS } from './traffic';
import { captureFiles, resetTables, startReplayCluster } from './helpers';

jest.setTimeout(180_000);

let cluster: Cluster;
let tmp = '';

beforeAll(async () => {
  cluster = await startReplayCluster();
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'pgward-recapture-'));
});

afterAll(async () => {
  await stopAllGateways();
  await stopAllClusters();
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

async function captureOnce(n: number): Promise<string> {
  await resetTables(cluster);
  const dir = path.join(tmp, `capture-${n}`);
  // The shipped defaults: captures redacted.
  const gw = await startGateway({
    upstream: `${cluster.host}:${cluster.port}`,
    config: { capture: { enabled: true, dir }, audit: { sink: 'none' } },
  });
  const target = { host: gw.host, port: gw.port, database: CLUSTER_DB };
  await Promise.all([
    SCENARIOS['orm-app'](target),
    SCENARIOS['psql-admin'](target),
    SCENARIOS.attacks(target),
  ]);
  expect(await gw.stop()).toBe(0);
  const files = captureFiles(dir);
  expect(files.length).toBeGreaterThan(0);
  const expectFile = path.join(tmp, `expect-${n}.jsonl`);
  await runReplay({ captures: files, bundle: SHIPPED_BUNDLE, expect: expectFile, updateExpect: true });
  return expectFile;
}

test('the same workload captured twice gives the same expect.jsonl', async () => {
  const first = await captureOnce(1);
  const second = await captureOnce(2);
  const a = fs.readFileSync(first, 'utf8');
  expect(a.split('\n').length).toBeGreaterThan(100);
  expect(fs.readFileSync(second, 'utf8')).toBe(a);
  // And the second capture replays against the first's expectations with no change.
  const run = await runReplay({
    captures: captureFiles(path.join(tmp, 'capture-2')),
    bundle: SHIPPED_BUNDLE,
    expect: first,
  });
  expect(run.report.comparisons[0]!.changed).toBe(0);
  expect(run.exitCode).toBe(0);
});
