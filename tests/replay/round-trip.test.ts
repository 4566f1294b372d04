/**
 * Round trip: traffic captured by a live pgward replays to exactly the decisions the live gateway
 * made (its own decision log is the reference). With PGWARD_UPDATE_REPLAY_CORPUS=1 the captures
 * are also copied into tests/replay/corpus/ and the corpus expectations rewritten.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { stopAllClusters, CLUSTER_DB, type Cluster } from '../helpers/cluster';
import { SHIPPED_BUNDLE, startGateway, stopAllGateways } from '../helpers/gateway';
import { runReplay } from '../../gateway/src/replay/cli';
import type { ReplayDecision } from '../../gateway/src/replay/replay';
import { SCENARIOS, type ScenarioName } from './traffic';
import {
  CORPUS_DIR,
  CORPUS_EXPECT,
  captureFiles,
  liveDecisions,
  resetTables,
  startReplayCluster,
  type Outcome,
} from './helpers';

jest.setTimeout(180_000);

let cluster: Cluster;
let tmp = '';
const captured: Record<string, string> = {};

beforeAll(async () => {
  cluster = await startReplayCluster();
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'pgward-replay-rt-'));
});

afterAll(async () => {
  await stopAllGateways();
  await stopAllClusters();
  if (process.env.PGWARD_UPDATE_REPLAY_CORPUS === '1' && Object.keys(captured).length === 4) {
    fs.mkdirSync(CORPUS_DIR, { recursive: true });
    for (const f of fs.readdirSync(CORPUS_DIR)) fs.rmSync(path.join(CORPUS_DIR, f));
    const files: string[] = [];
    for (const [name, file] of Object.entries(captured)) {
      const dest = path.join(CORPUS_DIR, `${name}.jsonl`);
      fs.copyFileSync(file, dest);
      files.push(dest);
    }
    await runReplay({
      captures: files.sort(),
      bundle: SHIPPED_BUNDLE,
      expect: CORPUS_EXPECT,
      updateExpect: true,
    });
  }
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

function byConnection(ds: readonly ReplayDecision[]): Map<string, Outcome[]> {
  const out = new Map<string, Outcome[]>();
  for (const d of ds) {
    const list = out.get(d.conn) ?? [];
    list.push({ type: d.type, allow: d.allow, reasons: d.reasons, alerts: d.alerts });
    out.set(d.conn, list);
  }
  return out;
}

const order: ScenarioName[] = ['orm-app', 'psql-admin', 'pgbench', 'attacks'];

test.each(order)('%s: replay gives exactly the live decisions', async (name) => {
  await resetTables(cluster);
  const dir = path.join(tmp, name);
  const gw = await startGateway({
    upstream: `${cluster.host}:${cluster.port}`,
    // Unredacted: replay must see the literals the live gateway judged (the default redacts them).
    config: {
      capture: { enabled: true, dir, redact: { literals: false, parameters: false } },
      decision_log: { enabled: true },
      audit: { sink: 'none', redact: { literals: false, parameters: false } },
    },
  });
  await SCENARIOS[name]({ host: gw.host, port: gw.port, database: CLUSTER_DB });
  expect(await gw.stop()).toBe(0);

  const files = captureFiles(dir);
  expect(files).toHaveLength(1);
  captured[name] = files[0]!;
  const text = fs.readFileSync(files[0]!, 'utf8');
  expect(JSON.parse(text.split('\n')[0]!)).toMatchObject({
    format: 'pgward-capture',
    version: 1,
    source: 'pgward',
  });
  // Never a password frame ('p'), not even the SCRAM exchange of the readonly user.
  for (const line of text.split('\n').slice(1)) {
    if (!line) continue;
    const rec = JSON.parse(line) as { dir?: string; frame?: string };
    if (rec.dir === 'F') expect(Buffer.from(rec.frame!, 'base64')[0]).not.toBe(0x70);
  }

  const live = liveDecisions(gw);
  const run = await runReplay({ captures: files, bundle: SHIPPED_BUNDLE });
  const replayed = byConnection(run.decisions);
  expect(replayed.size).toBe(live.size);
  expect(replayed).toEqual(live);
  const total = [...live.values()].reduce((n, l) => n + l.length, 0);
  expect(total).toBeGreaterThan(name === 'pgbench' ? 200 : 10);
  if (name === 'attacks') expect(run.decisions.filter((d) => !d.allow).length).toBeGreaterThan(10);
});
