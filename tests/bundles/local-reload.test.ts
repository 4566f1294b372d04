/**
 * A local bundle file is reloaded on SIGHUP and, with `policy.watch`, on change (debounced: a
 * burst of writes gives one reload). A broken file keeps the previous bundle serving.
 */
import fs from 'node:fs';
import path from 'node:path';
import { buildBundleWithData, startGateway, stopAllGateways } from '../helpers/gateway';
import { bundleView, queryThrough, replaceFile, revisionOf, sleep, tempDir, waitFor } from './support';

jest.setTimeout(120_000);

let dir = '';
let bundleA = '';
let bundleB = '';
let revA = '';
let revB = '';

beforeAll(async () => {
  dir = tempDir('pgward-local-reload-');
  bundleA = await buildBundleWithData({ admins: ['postgres'] });
  bundleB = await buildBundleWithData({ admins: ['postgres'], break_glass: ['pgward_local_reload_b'] });
  revA = await revisionOf(bundleA);
  revB = await revisionOf(bundleB);
});

afterAll(async () => {
  await stopAllGateways();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

const activations = (logs: Array<Record<string, unknown>>): string[] =>
  logs.filter((l) => l.msg === 'policy bundle activated').map((l) => String(l.revision));

it('reloads on SIGHUP, and keeps the previous bundle when the new file is broken', async () => {
  const file = path.join(dir, 'sighup.tar.gz');
  replaceFile(bundleA, file);
  const gw = await startGateway({
    bundle: file,
    config: { policy: { watch: false }, audit: { sink: 'none' } },
  });
  expect((await bundleView(gw)).revision).toBe(revA);

  replaceFile(bundleB, file);
  await sleep(300);
  expect((await bundleView(gw)).revision).toBe(revA); // no watch: nothing happens by itself
  gw.proc.kill('SIGHUP');
  await waitFor(async () => (await bundleView(gw)).revision === revB, 15_000, 'revision B after SIGHUP');

  fs.writeFileSync(`${file}.tmp`, 'garbage');
  fs.renameSync(`${file}.tmp`, file);
  gw.proc.kill('SIGHUP');
  await waitFor(async () => (await bundleView(gw)).last_reload_error !== null, 15_000, 'a reload error');
  const view = await bundleView(gw);
  expect(view.revision).toBe(revB);
  expect(view.last_reload_error).toMatch(/^PGWARD_ERR_BUNDLE_LOAD: /);
  expect(await queryThrough(gw, 'SELECT 41 + 1 AS n')).toBe(42);
  expect((await gw.admin('/readyz')).status).toBe(200);
  expect(activations(gw.logs)).toEqual([revA, revB]);
  await gw.stop();
});

it('reloads on file change once per burst of writes (debounced)', async () => {
  const sub = path.join(dir, 'watched');
  fs.mkdirSync(sub);
  const file = path.join(sub, 'bundle.tar.gz');
  replaceFile(bundleA, file);
  const gw = await startGateway({
    bundle: file,
    config: { policy: { watch: true, watch_debounce_ms: 400 }, audit: { sink: 'none' } },
  });
  expect((await bundleView(gw)).revision).toBe(revA);

  // A burst: B, A, B within the debounce window gives one reload, to B.
  for (const b of [bundleB, bundleA, bundleB]) {
    replaceFile(b, file);
    await sleep(50);
  }
  fs.writeFileSync(path.join(sub, 'unrelated.txt'), 'not the bundle');
  await waitFor(async () => (await bundleView(gw)).revision === revB, 15_000, 'revision B after the change');
  await sleep(1000);
  expect(activations(gw.logs)).toEqual([revA, revB]);

  // A plain write in place (not a rename) is seen too.
  fs.writeFileSync(file, fs.readFileSync(bundleA));
  await waitFor(async () => (await bundleView(gw)).revision === revA, 15_000, 'revision A after the write');
  expect(await queryThrough(gw, 'SELECT 1 AS one')).toBe(1);
  await gw.stop();
});
