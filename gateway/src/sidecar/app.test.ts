import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as https from 'node:https';
import type { AddressInfo } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { Registry } from 'prom-client';
import { createMetrics } from '../metrics/metrics';
import type { BundleInfo, Decision, PolicyEngine } from '../policy/types';
import { buildSidecar, sidecarServerOptions, type ReloadResult, type SidecarDeps } from './app';

const REV1: BundleInfo = {
  revision: 'rev-1',
  entrypoint: 'pgward/decision',
  source: 'wasm-build/out/bundle.tar.gz',
  loaded_at: '2024-05-01T12:00:00.000Z',
  opa_version: '1.4.2',
};

/** A stand-in for the bundle manager: holds the active bundle and runs scripted reloads. */
class FakeBundles {
  info: BundleInfo | null = null;
  lastError: string | null = null;
  lastAt: string | null = null;
  reloadCalls = 0;
  next: () => Promise<ReloadResult> = () => Promise.resolve({ ok: true, revision: 'rev-2' });

  readonly engine: PolicyEngine = {
    evaluate: (): Decision => {
      throw new Error('not used by the sidecar');
    },
    bundle: () => this.info,
  };

  async reload(): Promise<ReloadResult> {
    this.reloadCalls++;
    const r = await this.next();
    this.lastAt = '2024-05-01T13:00:00.000Z';
    if (r.ok) {
      this.info = { ...REV1, revision: r.revision };
      this.lastError = null;
    } else this.lastError = r.error;
    return r;
  }
}

function build(over: Partial<SidecarDeps> = {}): {
  app: FastifyInstance;
  bundles: FakeBundles;
  upstream: { ok: boolean; calls: number };
  metrics: ReturnType<typeof createMetrics>;
} {
  const bundles = new FakeBundles();
  const upstream = { ok: true, calls: 0 };
  const metrics = createMetrics(new Registry());
  const app = buildSidecar({
    engine: bundles.engine,
    bundleStatus: () => ({
      info: bundles.info,
      last_reload_error: bundles.lastError,
      last_reload_at: bundles.lastAt,
    }),
    reload: () => bundles.reload(),
    upstreamReady: () => {
      upstream.calls++;
      return Promise.resolve(upstream.ok);
    },
    registry: metrics.registry,
    ...over,
  });
  return { app, bundles, upstream, metrics };
}

describe('sidecar', () => {
  it('with workers: /readyz waits for every worker, /metrics serves the summed text', async () => {
    let all = false;
    const { app, bundles } = build({
      workersReady: () => all,
      metricsText: () => Promise.resolve('# summed\npgward_x 2\n'),
    });
    bundles.info = REV1;
    let res = await app.inject({ method: 'GET', url: '/readyz' });
    expect(res.statusCode).toBe(503);
    expect(res.json()).toMatchObject({ status: 'not_ready', missing: ['workers'] });
    all = true;
    res = await app.inject({ method: 'GET', url: '/readyz' });
    expect(res.statusCode).toBe(200);
    res = await app.inject({ method: 'GET', url: '/metrics' });
    expect(res.body).toBe('# summed\npgward_x 2\n');
    await app.close();
  });

  it('GET /healthz', async () => {
    const { app } = build();
    const res = await app.inject({ method: 'GET', url: '/healthz' });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ status: 'ok' });
  });

  it("GET /readyz is pgward's own readiness: bundle, listener, not shutting down; never the upstream", async () => {
    const serving = { listener: true, accepting: true };
    const { app, bundles, upstream, metrics } = build({ upstreamCacheMs: 0, serving: () => serving });
    let res = await app.inject({ method: 'GET', url: '/readyz' });
    expect(res.statusCode).toBe(503);
    expect(res.headers['retry-after']).toBe('1');
    expect(res.json()).toEqual({
      status: 'not_ready',
      bundle: false,
      listener: true,
      accepting: true,
      missing: ['bundle'],
    });

    bundles.info = REV1;
    res = await app.inject({ method: 'GET', url: '/readyz' });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ status: 'ready', revision: 'rev-1' });

    // PostgreSQL briefly unreachable: still ready, so clients get the server's own error through pgward.
    upstream.ok = false;
    res = await app.inject({ method: 'GET', url: '/readyz' });
    expect(res.statusCode).toBe(200);
    expect(upstream.calls).toBe(0);

    serving.accepting = false; // SIGTERM
    res = await app.inject({ method: 'GET', url: '/readyz' });
    expect(res.statusCode).toBe(503);
    expect(res.json()).toEqual({
      status: 'not_ready',
      bundle: true,
      listener: true,
      accepting: false,
      missing: ['accepting'],
    });
    serving.listener = false;
    bundles.info = null;
    res = await app.inject({ method: 'GET', url: '/readyz' });
    expect(res.json().missing).toEqual(['bundle', 'listener', 'accepting']);
    const text = await metrics.registry.metrics();
    expect(text).toContain('pgward_ready{component="accepting"} 0');
    expect(text).toContain('pgward_ready{component="listener"} 0');
  });

  it('GET /upstreamz and pgward_upstream_up report the upstream separately', async () => {
    const { app, upstream, metrics } = build({ upstreamCacheMs: 0 });
    let res = await app.inject({ method: 'GET', url: '/upstreamz' });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ status: 'up' });
    expect(await metrics.registry.metrics()).toContain('pgward_upstream_up 1');
    upstream.ok = false;
    res = await app.inject({ method: 'GET', url: '/upstreamz' });
    expect(res.statusCode).toBe(503);
    expect(res.json()).toEqual({ status: 'down' });
    expect(await metrics.registry.metrics()).toContain('pgward_upstream_up 0');
  });

  it('caches the upstream probe', async () => {
    const { app, upstream } = build();
    for (let i = 0; i < 5; i++)
      expect((await app.inject({ method: 'GET', url: '/upstreamz' })).statusCode).toBe(200);
    expect(upstream.calls).toBe(1);
  });

  it('treats a failing or hanging upstream probe as down', async () => {
    const failing = build({ upstreamReady: () => Promise.reject(new Error('ECONNREFUSED')) });
    expect((await failing.app.inject({ method: 'GET', url: '/upstreamz' })).statusCode).toBe(503);

    const hanging = build({ upstreamReady: () => new Promise<boolean>(() => {}), upstreamTimeoutMs: 20 });
    const res = await hanging.app.inject({ method: 'GET', url: '/upstreamz' });
    expect(res.statusCode).toBe(503);
  });

  it('GET /metrics serves the registry in Prometheus text format', async () => {
    const { app } = build();
    const res = await app.inject({ method: 'GET', url: '/metrics' });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);
    expect(res.body).toContain('# TYPE pgward_connections_active gauge');
    expect(res.body).toContain('process_cpu_user_seconds_total');
    expect(res.body).not.toContain('pgward_process_');
    expect(res.body).toContain('pgward_ready{component="bundle"} 0');
    expect(res.body).toContain('pgward_upstream_up 1');
  });

  it('GET /v1/bundle', async () => {
    const { app, bundles } = build();
    let res = await app.inject({ method: 'GET', url: '/v1/bundle' });
    expect(res.json()).toEqual({
      active: false,
      revision: null,
      entrypoint: null,
      source: null,
      loaded_at: null,
      opa_version: null,
      last_reload_error: null,
      last_reload_at: null,
    });
    bundles.info = REV1;
    res = await app.inject({ method: 'GET', url: '/v1/bundle' });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ active: true, ...REV1, last_reload_error: null, last_reload_at: null });
  });

  describe('POST /v1/bundle/reload', () => {
    it.each([
      ['missing', undefined],
      ['wrong token', 'Bearer nope'],
      ['longer token', 'Bearer s3cret-token-and-more'],
      ['prefix of the token', 'Bearer s3cret'],
      ['other scheme', 'Basic s3cret-token'],
      ['no token after Bearer', 'Bearer '],
    ])('refuses %s with 401 and reloads nothing', async (_name, authorization) => {
      const { app, bundles, metrics } = build({ token: 's3cret-token' });
      const res = await app.inject({
        method: 'POST',
        url: '/v1/bundle/reload',
        headers: authorization === undefined ? {} : { authorization },
      });
      expect(res.statusCode).toBe(401);
      expect(res.headers['www-authenticate']).toBe('Bearer');
      expect(res.json()).toEqual({ error: 'unauthorized', code: 'PGWARD_ERR_ADMIN_UNAUTHORIZED' });
      expect(bundles.reloadCalls).toBe(0);
      expect(await metrics.registry.metrics()).toContain(
        'pgward_admin_unauthorized_total{route="/v1/bundle/reload"} 1',
      );
    });

    it('reloads with the right token', async () => {
      const { app, bundles } = build({ token: 's3cret-token' });
      const res = await app.inject({
        method: 'POST',
        url: '/v1/bundle/reload',
        headers: { authorization: 'bearer s3cret-token' },
      });
      expect(res.statusCode).toBe(200);
      expect(res.json()).toEqual({ revision: 'rev-2' });
      expect(bundles.reloadCalls).toBe(1);
    });

    it('needs no token when none is configured', async () => {
      const { app, bundles } = build();
      const res = await app.inject({ method: 'POST', url: '/v1/bundle/reload' });
      expect(res.statusCode).toBe(200);
      expect(bundles.reloadCalls).toBe(1);
    });

    it('refuses an empty configured token', () => {
      expect(() => build({ token: '' })).toThrow(/must not be empty/);
    });

    it.each([
      ['PGWARD_ERR_BUNDLE_LOAD', 422],
      ['PGWARD_ERR_BUNDLE_SMOKE', 422],
      ['PGWARD_ERR_BUNDLE_SIGNATURE', 422],
      ['PGWARD_ERR_BUNDLE_FETCH', 502],
      ['PGWARD_ERR_SOMETHING_ELSE', 500],
    ])('answers %s with %i and keeps the old bundle', async (code, status) => {
      const { app, bundles } = build();
      bundles.info = REV1;
      bundles.next = () => Promise.resolve({ ok: false, error: 'policy.wasm: bad magic', code });
      const res = await app.inject({ method: 'POST', url: '/v1/bundle/reload' });
      expect(res.statusCode).toBe(status);
      expect(res.json()).toEqual({ error: 'policy.wasm: bad magic', code });
      const info = await app.inject({ method: 'GET', url: '/v1/bundle' });
      expect(info.json()).toEqual({
        active: true,
        ...REV1,
        last_reload_error: 'policy.wasm: bad magic',
        last_reload_at: '2024-05-01T13:00:00.000Z',
      });
    });

    it('answers 500 when reload throws', async () => {
      const { app, bundles } = build();
      bundles.next = () => Promise.reject(new Error('boom'));
      const res = await app.inject({ method: 'POST', url: '/v1/bundle/reload' });
      expect(res.statusCode).toBe(500);
      expect(res.json()).toEqual({ error: 'bundle reload failed', code: 'PGWARD_ERR_BUNDLE_LOAD' });
    });

    it('shares one reload between concurrent requests', async () => {
      const { app, bundles } = build();
      let release: (r: ReloadResult) => void = () => {};
      bundles.next = () => new Promise((r) => (release = r));
      const a = app.inject({ method: 'POST', url: '/v1/bundle/reload' });
      const b = app.inject({ method: 'POST', url: '/v1/bundle/reload' });
      await new Promise((r) => setTimeout(r, 20));
      release({ ok: true, revision: 'rev-9' });
      const [ra, rb] = await Promise.all([a, b]);
      expect([ra.json(), rb.json()]).toEqual([{ revision: 'rev-9' }, { revision: 'rev-9' }]);
      expect(bundles.reloadCalls).toBe(1);
    });
  });

  describe('over real sockets', () => {
    let app: FastifyInstance | null = null;
    afterEach(async () => {
      await app?.close();
      app = null;
    });

    it('serves HTTP on an ephemeral port', async () => {
      const built = build({ token: 'tok' });
      app = built.app;
      built.bundles.info = REV1;
      await app.listen({ host: '127.0.0.1', port: 0 });
      const { port } = app.server.address() as AddressInfo;
      const base = `http://127.0.0.1:${port}`;
      expect((await fetch(`${base}/healthz`)).status).toBe(200);
      expect((await fetch(`${base}/readyz`)).status).toBe(200);
      const metrics = await fetch(`${base}/metrics`);
      expect(await metrics.text()).toContain('pgward_bundle_reloads_total');
      expect((await fetch(`${base}/v1/bundle/reload`, { method: 'POST' })).status).toBe(401);
      expect(built.bundles.reloadCalls).toBe(0);
      const ok = await fetch(`${base}/v1/bundle/reload`, {
        method: 'POST',
        headers: { authorization: 'Bearer tok' },
      });
      expect(ok.status).toBe(200);
      expect(await ok.json()).toEqual({ revision: 'rev-2' });
    });

    it('serves HTTPS with sidecarServerOptions', async () => {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pgward-sidecar-'));
      try {
        const cert = path.join(dir, 'cert.pem');
        const key = path.join(dir, 'key.pem');
        execFileSync(
          'openssl',
          [
            'req',
            '-x509',
            '-newkey',
            'rsa:2048',
            '-nodes',
            '-days',
            '1',
            '-subj',
            '/CN=localhost',
            '-addext',
            'subjectAltName=DNS:localhost,IP:127.0.0.1',
            '-keyout',
            key,
            '-out',
            cert,
          ],
          { stdio: 'ignore' },
        );
        app = build({ server: sidecarServerOptions({ cert_file: cert, key_file: key }) }).app;
        await app.listen({ host: '127.0.0.1', port: 0 });
        const { port } = app.server.address() as AddressInfo;
        const body = await new Promise<string>((resolve, reject) => {
          https
            .get({ host: '127.0.0.1', port, path: '/healthz', ca: fs.readFileSync(cert) }, (res) => {
              let s = '';
              res.on('data', (c: Buffer) => (s += c.toString()));
              res.on('end', () => resolve(s));
            })
            .on('error', reject);
        });
        expect(JSON.parse(body)).toEqual({ status: 'ok' });
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    });
  });

  it('sidecarServerOptions: plain HTTP without TLS files, error with only one', () => {
    expect(sidecarServerOptions()).toEqual({});
    expect(sidecarServerOptions({})).toEqual({});
    expect(() => sidecarServerOptions({ cert_file: '/x.pem' })).toThrow(/both/);
  });
});
