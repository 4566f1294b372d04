/**
 * `serve --workers 2`: one sidecar (worker 0) for the instance. /metrics sums every worker
 * (promtool-clean), a reload runs in every worker and answers only when all run the new revision,
 * readiness follows, SIGHUP reaches every worker, and reloads under pgbench lose no transaction.
 */
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { LOCAL_PG } from '../helpers/cluster';
import { buildBundleWithData, startGateway, stopAllGateways, type RunningGateway } from '../helpers/gateway';
import { dropDatabase, recreateDatabase } from '../proxy/proxy-helpers';
import { reloadViaSidecar, replaceFile, revisionOf, sleep, tempDir } from '../bundles/support';
import { connectThrough, pgbench } from './support';

const DB = `pgward_workers_it_${process.pid}`;
const RELOADS = 10;

jest.setTimeout(180_000);

let gw: RunningGateway;
let dir = '';
let bundleA = '';
let bundleB = '';
let revA = '';
let revB = '';
let active = '';

beforeAll(async () => {
  await recreateDatabase(DB);
  expect((await pgbench(LOCAL_PG.host, LOCAL_PG.port, DB, ['-i', '-s', '1', '-q']).done).code).toBe(0);
  bundleA = await buildBundleWithData({ admins: ['postgres'] });
  bundleB = await buildBundleWithData({ admins: ['postgres'], break_glass: ['pgward_workers_it_b'] });
  revA = await revisionOf(bundleA);
  revB = await revisionOf(bundleB);
  dir = tempDir('pgward-workers-');
  active = path.join(dir, 'bundle.tar.gz');
  replaceFile(bundleA, active);
  gw = await startGateway({
    bundle: active,
    args: ['--workers', '2'],
    config: { audit: { sink: 'none' }, policy: { watch: false }, limits: { max_clients: 101 } },
  });
});

afterAll(async () => {
  await stopAllGateways();
  await dropDatabase(DB);
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

async function metricValue(text: string, line: RegExp): Promise<number> {
  const m = line.exec(text);
  if (!m) throw new Error(`no ${String(line)} in /metrics`);
  return Number(m[1]);
}

test('/metrics sums both workers and passes promtool check metrics', async () => {
  const res = await gw.admin('/metrics');
  expect(res.status).toBe(200);
  const text = await res.text();
  // Shares of 101 (51 + 50) add up to the instance's limit.
  expect(await metricValue(text, /^pgward_connections_max (\d+)$/m)).toBe(101);
  // Both workers activated the bundle at start.
  expect(await metricValue(text, /^pgward_bundle_reloads_total\{result="success"\} (\d+)$/m)).toBe(2);
  const file = path.join(dir, 'metrics.txt');
  fs.writeFileSync(file, text);
  const check = await new Promise<{ code: number | null; out: string }>((resolve) => {
    const p = spawn('sh', ['-c', `promtool check metrics < ${file}`]);
    let out = '';
    p.stdout.on('data', (c: Buffer) => (out += c.toString()));
    p.stderr.on('data', (c: Buffer) => (out += c.toString()));
    p.on('close', (code) => resolve({ code, out }));
  });
  expect(check).toEqual({ code: 0, out: '' });
});

test('reloads under pgbench: every worker switches, readiness names the revision, no transaction lost', async () => {
  const bench = pgbench(gw.host, gw.port, DB, ['-S', '-n', '-c', '4', '-j', '2', '-T', '10']);
  // The reloads start once all four pgbench sessions are connected (seen by the server).
  const probe = await connectThrough(LOCAL_PG.host, LOCAL_PG.port);
  try {
    const until = Date.now() + 15_000;
    const connected = async (): Promise<number> =>
      Number(
        (
          await probe.query<{ n: string }>(
            `SELECT count(*) AS n FROM pg_stat_activity WHERE datname = $1 AND application_name = 'pgbench'`,
            [DB],
          )
        ).rows[0]?.n,
      );
    while ((await connected()) < 4) {
      if (Date.now() > until) throw new Error('pgbench did not connect');
      await sleep(20);
    }
  } finally {
    await probe.end();
  }
  for (let i = 0; i < RELOADS; i++) {
    const [file, rev] = i % 2 === 0 ? [bundleB, revB] : [bundleA, revA];
    replaceFile(file, active);
    expect(await reloadViaSidecar(gw)).toEqual({ status: 200, body: { revision: rev } });
    const ready = await gw.admin('/readyz');
    expect(ready.status).toBe(200);
    expect(await ready.json()).toEqual({ status: 'ready', revision: rev });
    await sleep(300);
  }
  expect(bench.running()).toBe(true);
  const { code, stdout, stderr } = await bench.done;
  expect(code).toBe(0);
  expect(stderr).not.toMatch(/aborted|error|FATAL/i);
  expect(stdout).toMatch(/number of failed transactions: 0 \(0\.000%\)/);
  const text = await (await gw.admin('/metrics')).text();
  expect(await metricValue(text, /^pgward_bundle_reloads_total\{result="success"\} (\d+)$/m)).toBe(
    2 * (RELOADS + 1),
  );
});

test('SIGHUP to the primary reloads every worker; the new revision goes live in both at one commit', async () => {
  replaceFile(bundleB, active);
  const live = (): number => gw.logs.filter((l) => l.msg === 'policy bundle live in every worker').length;
  const before = live();
  gw.proc.kill('SIGHUP');
  const until = Date.now() + 15_000;
  while (live() < before + 2) {
    if (Date.now() > until) throw new Error('not every worker switched');
    await sleep(100);
  }
  const switched = gw.logs.filter((l) => l.msg === 'policy bundle live in every worker').slice(-2);
  expect(switched.map((l) => l.revision)).toEqual([revB, revB]);
  const ready = await gw.admin('/readyz');
  expect(await ready.json()).toEqual({ status: 'ready', revision: revB });
});

test('a worker that crashes and starts on a newer bundle brings every worker to it: ready again (readiness means every worker runs it)', async () => {
  // The file changes without a reload (watch is off); then worker 1 dies and starts again on it.
  const running = ((await (await gw.admin('/readyz')).json()) as { revision: string }).revision;
  const [next, nextRev] = running === revA ? [bundleB, revB] : [bundleA, revA];
  replaceFile(next, active);
  const workerPids = execFileSync('pgrep', ['-P', String(gw.proc.pid)], { encoding: 'utf8' })
    .trim()
    .split('\n')
    .map(Number);
  expect(workerPids).toHaveLength(2);
  process.kill(workerPids[1]!, 'SIGKILL');
  const until = Date.now() + 20_000;
  for (;;) {
    const r = await gw.admin('/readyz').catch(() => null);
    const body = r ? ((await r.json()) as { status: string; revision?: string }) : null;
    if (body?.status === 'ready' && body.revision === nextRev) break;
    if (Date.now() > until) throw new Error(`not ready on ${nextRev}: ${JSON.stringify(body)}`);
    await sleep(100);
  }
  expect(
    gw.logs.some((l) => l.msg === 'a restarted worker loaded another revision: reloading every worker'),
  ).toBe(true);
});
