/**
 * Twenty reloads through the sidecar while pgbench runs through pgward: pgbench completes with no
 * failed transaction and no dropped client, every reload answers 200 with the new revision, and
 * every decision (from the decision log) names exactly one of the two revisions — the one active
 * when it was made.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { Client } from 'pg';
import { LOCAL_PG } from '../helpers/cluster';
import { buildBundleWithData, startGateway, stopAllGateways, type RunningGateway } from '../helpers/gateway';
import { dropDatabase, recreateDatabase } from '../proxy/proxy-helpers';
import { bundleView, reloadViaSidecar, replaceFile, revisionOf, sleep, tempDir } from './support';

const DB = 'pgward_reload_it';
const RELOADS = 20;
const PGBENCH_SECONDS = 12;

jest.setTimeout(180_000);

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function run(cmd: string, args: string[]): { done: Promise<Run>; running: () => boolean } {
  const p = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, PGPASSWORD: '' } });
  let stdout = '';
  let stderr = '';
  let finished = false;
  p.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
  p.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  const done = new Promise<Run>((resolve) =>
    p.on('close', (code) => {
      finished = true;
      resolve({ code, stdout, stderr });
    }),
  );
  return { done, running: () => !finished };
}

let gw: RunningGateway;
let dir = '';

afterAll(async () => {
  await stopAllGateways();
  await dropDatabase(DB);
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

it('reloads 20 times under pgbench with zero failed transactions and clean revision switches', async () => {
  await recreateDatabase(DB);
  const init = await run('pgbench', [
    '-i',
    '-s',
    '1',
    '-q',
    '-h',
    LOCAL_PG.host,
    '-p',
    String(LOCAL_PG.port),
    '-U',
    LOCAL_PG.user,
    DB,
  ]).done;
  expect(init.code).toBe(0);

  // Two revisions of the shipped policy that both let postgres run pgbench.
  // The probes are found in the decision log by the marker in their SQL text (the logged input is
  // the full document, whatever the bundle reads).
  const bundleA = await buildBundleWithData({ admins: ['postgres'] });
  const bundleB = await buildBundleWithData({
    admins: ['postgres'],
    break_glass: ['pgward_reload_it_b'],
  });
  const revA = await revisionOf(bundleA);
  const revB = await revisionOf(bundleB);
  expect(revA).not.toBe(revB);

  dir = tempDir('pgward-reload-');
  const active = path.join(dir, 'bundle.tar.gz');
  replaceFile(bundleA, active);
  gw = await startGateway({
    bundle: active,
    config: {
      log: { level: 'info' },
      // The probes' markers are literals: keep them in the decision log (redacted by default).
      audit: { sink: 'none', redact: { literals: false } },
      decision_log: { enabled: true, sample_rate: 1, sink: 'stdout' },
      policy: { watch: false },
    },
  });
  expect((await bundleView(gw)).revision).toBe(revA);

  const bench = run('pgbench', [
    '-S',
    '-n',
    '-c',
    '4',
    '-j',
    '2',
    '-T',
    String(PGBENCH_SECONDS),
    '-h',
    gw.host,
    '-p',
    String(gw.port),
    '-U',
    LOCAL_PG.user,
    DB,
  ]);
  // A separate connection whose marked queries show which revision decided right after each reload.
  const probe = new Client({ host: gw.host, port: gw.port, user: LOCAL_PG.user, database: DB });
  probe.on('error', () => undefined);
  await probe.connect();
  await sleep(1000);

  const expected: Array<{ marker: string; revision: string }> = [];
  for (let i = 0; i < RELOADS; i++) {
    const [file, rev] = i % 2 === 0 ? [bundleB, revB] : [bundleA, revA];
    replaceFile(file, active);
    const r = await reloadViaSidecar(gw);
    expect(r).toEqual({ status: 200, body: { revision: rev } });
    const view = await bundleView(gw);
    expect(view.revision).toBe(rev);
    expect(view.last_reload_error).toBeNull();
    const marker = `pgward-reload-probe-${i}`;
    await probe.query(`SELECT '${marker}' AS probe`);
    expected.push({ marker, revision: rev });
    await sleep(250);
  }
  // All reloads happened while pgbench was still running.
  expect(bench.running()).toBe(true);
  await probe.end();

  const result = await bench.done;
  expect(result.stderr).not.toMatch(/aborted|error|FATAL/i);
  expect(result.code).toBe(0);
  expect(result.stdout).toMatch(/number of clients: 4/);
  expect(result.stdout).toMatch(/number of failed transactions: 0 \(0\.000%\)/);
  const processed = /number of transactions actually processed: (\d+)/.exec(result.stdout);
  expect(Number(processed?.[1])).toBeGreaterThan(100);

  // Decision log: each decision names exactly one bundle revision, one of the two.
  await sleep(500);
  const decisions = gw.logs.filter((l) => typeof l.decision_id === 'string' && l.path !== undefined);
  expect(decisions.length).toBeGreaterThan(100);
  const seen = new Set<string>();
  for (const d of decisions) {
    const bundles = d.bundles as Record<string, { revision: string }>;
    expect(Object.keys(bundles)).toEqual(['pgward']);
    expect([revA, revB]).toContain(bundles.pgward!.revision);
    seen.add(bundles.pgward!.revision);
  }
  expect(seen).toEqual(new Set([revA, revB]));
  // The probe after each reload was decided by the revision that reload activated.
  for (const { marker, revision } of expected) {
    const line = decisions.find((d) => JSON.stringify(d.input).includes(marker));
    expect(line).toBeDefined();
    expect((line!.bundles as Record<string, { revision: string }>).pgward!.revision).toBe(revision);
  }
  const activations = gw.logs.filter((l) => l.msg === 'policy bundle activated');
  expect(activations).toHaveLength(RELOADS + 1);

  const metrics = await (await gw.admin('/metrics')).text();
  expect(metrics).toMatch(/pgward_bundle_reloads_total\{result="success"\} 21/);
  expect(metrics).toMatch(/pgward_bundle_reloads_total\{result="failure"\} 0/);
});
