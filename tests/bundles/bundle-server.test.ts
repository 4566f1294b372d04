/**
 * pgward against a real local HTTP bundle server (OPA bundle service protocol): new revisions are
 * picked up by polling, an unchanged bundle is never downloaded again (304 only), the bearer token
 * is sent, and a server that goes away leaves the last bundle active and the gateway ready.
 */
import fs from 'node:fs';
import { startBundleServer, type BundleServer } from '../helpers/bundle-server';
import { buildBundleWithData, startGateway, stopAllGateways } from '../helpers/gateway';
import { bundleView, queryThrough, reloadViaSidecar, revisionOf, sleep, waitFor } from './support';

jest.setTimeout(120_000);

let bytesA: Buffer;
let bytesB: Buffer;
let revA = '';
let revB = '';
const servers: BundleServer[] = [];

beforeAll(async () => {
  const a = await buildBundleWithData({ admins: ['postgres'] });
  const b = await buildBundleWithData({ admins: ['postgres'], break_glass: ['pgward_bundle_server_b'] });
  bytesA = fs.readFileSync(a);
  bytesB = fs.readFileSync(b);
  revA = await revisionOf(a);
  revB = await revisionOf(b);
});

afterAll(async () => {
  await stopAllGateways();
  await Promise.all(servers.map((s) => s.close()));
});

const TOKEN = 'bundle-server-token-123';
const polling = { poll_min_delay_s: 1, poll_max_delay_s: 1 };

it('polls with ETags, sends the bearer token, picks up new revisions and survives the server going away', async () => {
  const server = await startBundleServer({ bundle: bytesA });
  servers.push(server);
  server.requireToken(TOKEN);
  const gw = await startGateway({
    bundle: server.url,
    config: { policy: { ...polling, bearer_token: TOKEN }, audit: { sink: 'none' } },
  });
  const view = await bundleView(gw);
  expect(view.revision).toBe(revA);
  expect(view.source).toBe(server.url);
  expect((await gw.admin('/readyz')).status).toBe(200);

  // Unchanged: only 304s after the first download, each conditional on the served ETag.
  await waitFor(() => server.counts().notModified >= 3, 15_000, 'three 304 answers');
  expect(server.counts()).toMatchObject({ ok: 1, other: 0 });
  const etag = server.requests.find((r) => r.status === 200)!.headers;
  expect(etag['if-none-match']).toBeUndefined();
  for (const r of server.requests) {
    expect(r.headers.authorization).toBe(`Bearer ${TOKEN}`);
    expect(r.method).toBe('GET');
  }
  expect(
    server.requests
      .filter((r) => r.status === 304)
      .every((r) => typeof r.headers['if-none-match'] === 'string'),
  ).toBe(true);
  expect(gw.logs.filter((l) => l.msg === 'policy bundle activated')).toHaveLength(1);

  // A new revision is downloaded once and activated.
  server.setBundle(bytesB);
  await waitFor(async () => (await bundleView(gw)).revision === revB, 15_000, 'revision B');
  await waitFor(() => server.counts().notModified >= 5, 15_000, 'more 304 answers');
  expect(server.counts().ok).toBe(2);
  expect(await queryThrough(gw, 'SELECT 2 AS n')).toBe(2);

  // A manual reload against the server: 304, nothing reloads, 200 with the same revision.
  const manual = await reloadViaSidecar(gw);
  expect(manual).toEqual({ status: 200, body: { revision: revB } });
  expect(server.counts().ok).toBe(2);

  // The server goes away: the last bundle stays active and the gateway stays ready.
  await server.goAway();
  await waitFor(
    async () => ((await bundleView(gw)).last_reload_error ?? '').includes('PGWARD_ERR_BUNDLE_FETCH'),
    15_000,
    'a fetch error',
  );
  await sleep(2500);
  const away = await bundleView(gw);
  expect(away.revision).toBe(revB);
  expect(away.last_reload_error).toMatch(/^PGWARD_ERR_BUNDLE_FETCH: cannot download bundle .*ECONNREFUSED/);
  expect((await gw.admin('/readyz')).status).toBe(200);
  expect(await queryThrough(gw, 'SELECT 3 AS n')).toBe(3);
  const metrics = await (await gw.admin('/metrics')).text();
  const failures = Number(/pgward_bundle_reloads_total\{result="failure"\} (\d+)/.exec(metrics)?.[1]);
  expect(failures).toBeGreaterThanOrEqual(2);
  const sidecarReload = await reloadViaSidecar(gw);
  expect(sidecarReload.status).toBe(502);
  expect(sidecarReload.body.code).toBe('PGWARD_ERR_BUNDLE_FETCH');

  // Back again: the error clears with a 304 (same bundle), no download.
  const before = server.counts();
  await server.comeBack();
  await waitFor(async () => (await bundleView(gw)).last_reload_error === null, 20_000, 'the error to clear');
  expect(server.counts().ok).toBe(before.ok);
  expect((await bundleView(gw)).revision).toBe(revB);
  await gw.stop();
});

it('starts not ready while the bundle server is down and becomes ready when it answers', async () => {
  const server = await startBundleServer({ bundle: bytesA });
  servers.push(server);
  await server.goAway();
  const gw = await startGateway({ bundle: server.url, config: { policy: polling, audit: { sink: 'none' } } });
  const ready = await gw.admin('/readyz');
  expect(ready.status).toBe(503);
  expect(ready.headers.get('retry-after')).toBe('1');
  const view = await bundleView(gw);
  expect(view.active).toBe(false);
  expect(view.last_reload_error).toMatch(/PGWARD_ERR_BUNDLE_FETCH/);

  await server.comeBack();
  await waitFor(async () => (await gw.admin('/readyz')).status === 200, 20_000, 'readiness');
  expect((await bundleView(gw)).revision).toBe(revA);
  await gw.stop();
});

it('refuses a bundle the server denies (wrong token) and keeps polling', async () => {
  const server = await startBundleServer({ bundle: bytesA });
  servers.push(server);
  server.requireToken('the-right-token');
  const gw = await startGateway({
    bundle: server.url,
    config: { policy: { ...polling, bearer_token: 'a-wrong-token' }, audit: { sink: 'none' } },
  });
  expect((await bundleView(gw)).last_reload_error).toMatch(/PGWARD_ERR_BUNDLE_FETCH: .*HTTP 401/);
  expect((await gw.admin('/readyz')).status).toBe(503);
  await waitFor(() => server.counts().other >= 2, 15_000, 'a second attempt');
  expect(server.counts().ok).toBe(0);
  await gw.stop();
});
