/**
 * Reloads as Kubernetes drives them (issue 13): a ConfigMap-mounted bundle updated by the kubelet's
 * atomic writer (`..data` swap) is active within 2 s without a signal; SIGHUP reloads the config
 * keys that can change at run time and names the changed keys that need a restart.
 */
import fs from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { buildBundleWithData, startGateway, stopAllGateways } from '../helpers/gateway';
import { bundleView, queryThrough, revisionOf, tempDir, waitFor } from '../bundles/support';
import { atomicWrite } from './kubelet-atomic-writer';

jest.setTimeout(120_000);

let dir = '';
let bundleA = '';
let bundleB = '';
let revA = '';
let revB = '';

beforeAll(async () => {
  dir = tempDir('pgward-ops-reload-');
  bundleA = await buildBundleWithData({ admins: ['postgres'] });
  bundleB = await buildBundleWithData({ admins: ['postgres'], break_glass: ['pgward_ops_reload_b'] });
  revA = await revisionOf(bundleA);
  revB = await revisionOf(bundleB);
  expect(revA).not.toBe(revB);
});

afterAll(async () => {
  await stopAllGateways();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

it('activates a ConfigMap bundle update (kubelet ..data swap) within 2 s, without a signal', async () => {
  const vol = path.join(dir, 'bundle-volume');
  atomicWrite(vol, { 'bundle.tar.gz': fs.readFileSync(bundleA) });
  const gw = await startGateway({
    bundle: path.join(vol, 'bundle.tar.gz'),
    // watch_debounce_ms at its default (500 ms)
    config: { policy: { watch: true }, audit: { sink: 'none' } },
  });
  expect((await bundleView(gw)).revision).toBe(revA);

  const t0 = Date.now();
  atomicWrite(vol, { 'bundle.tar.gz': fs.readFileSync(bundleB) });
  await waitFor(async () => (await bundleView(gw)).revision === revB, 2000, 'revision B within 2 s');
  const ms = Date.now() - t0;
  expect(ms).toBeLessThan(2000);
  expect(gw.logs.filter((l) => l.msg === 'policy bundle activated').map((l) => l.revision)).toEqual([
    revA,
    revB,
  ]);
  expect(await queryThrough(gw, 'SELECT 40 + 2 AS n')).toBe(42);
  await gw.stop();
});

it('SIGHUP applies log level, limits and bundle source, and names the keys that need a restart', async () => {
  const gw = await startGateway({
    bundle: bundleA,
    config: { log: { level: 'info' }, limits: { max_clients: 100 }, audit: { sink: 'none' } },
  });
  const metric = async (name: string): Promise<string | undefined> => {
    const text = await (await gw.admin('/metrics')).text();
    return new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1];
  };
  expect(await metric('pgward_connections_max')).toBe('100');

  const cfg = YAML.parse(fs.readFileSync(gw.configFile, 'utf8')) as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
  cfg.log.level = 'debug';
  cfg.limits.max_clients = 200;
  cfg.policy.bundle = bundleB;
  cfg.upstream.connect_timeout_ms = 1234; // needs a restart
  fs.writeFileSync(gw.configFile, YAML.stringify(cfg));
  gw.proc.kill('SIGHUP');
  const line = await gw.waitForLog((l) => l.msg === 'config reloaded; some changed keys need a restart');
  expect(line.applied).toEqual(['limits.max_clients', 'log.level', 'policy.bundle']);
  expect(line.restart_required).toEqual(['upstream.connect_timeout_ms']);
  await waitFor(async () => (await bundleView(gw)).revision === revB, 15_000, 'the new bundle source');
  expect(await metric('pgward_connections_max')).toBe('200');
  expect(await metric('pgward_config_reloads_total\\{result="success"\\}')).toBe('1');
  // Debug level is on: the session logs at debug now.
  expect(await queryThrough(gw, 'SELECT 1 AS n')).toBe(1);
  await gw.waitForLog((l) => l.level === 20);

  // A config that does not validate changes nothing and is counted.
  fs.writeFileSync(gw.configFile, 'limits:\n  max_clients: -1\n');
  gw.proc.kill('SIGHUP');
  const err = await gw.waitForLog((l) => l.msg === 'config reload failed; the running configuration stays');
  expect(err.code).toBe('PGWARD_ERR_CONFIG_INVALID');
  expect(await metric('pgward_config_reloads_total\\{result="failure"\\}')).toBe('1');
  expect(await metric('pgward_connections_max')).toBe('200');
  expect((await bundleView(gw)).revision).toBe(revB);
  expect(await queryThrough(gw, 'SELECT 2 AS n')).toBe(2);
  await gw.stop();
});

it('SIGHUP reopens the audit log with new settings (sink, redaction)', async () => {
  // The shipped bundle (nobody is an admin): both statements below are denied and audited.
  const gw = await startGateway({ config: { audit: { sink: 'none' } } });
  const denied = (sql: string): Promise<unknown> => queryThrough(gw, sql).catch((e: unknown) => e);
  const before = gw.logs.length;
  await denied("TRUNCATE pg_ops_reload_t -- 'quiet'");
  const cfg = YAML.parse(fs.readFileSync(gw.configFile, 'utf8')) as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
  cfg.audit = { sink: 'stdout', redact: { literals: false } };
  fs.writeFileSync(gw.configFile, YAML.stringify(cfg));
  gw.proc.kill('SIGHUP');
  const line = await gw.waitForLog((l) => l.msg === 'config reloaded');
  expect(line.applied).toEqual(['audit.redact.literals', 'audit.sink']);
  await denied("DROP TABLE pg_ops_reload_t -- 'loud'");
  const rec = await gw.waitForLog((l) => l.kind === 'deny' && String(l.sql).includes('loud'));
  expect(rec.sql).toBe("DROP TABLE pg_ops_reload_t -- 'loud'");
  // Nothing was audited while the sink was 'none'.
  expect(gw.logs.slice(before).filter((l) => String(l.sql ?? '').includes('quiet'))).toEqual([]);
  await gw.stop();
});
