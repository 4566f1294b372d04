import { createHmac } from 'node:crypto';
import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { startBundleServer, tgz, type BundleServer } from '../../../tests/helpers/bundle-server';
import { atomicWrite } from '../../../tests/ops/kubelet-atomic-writer';
import { ErrorCodes } from '../errors';
import type { LoadedBundle } from './bundle';
import { BundleManager, type BundleManagerOptions, type EngineFactory } from './bundle-manager';
import { hashBundleFile } from './bundle-signature';
import { ActiveEngine } from './opa-engine';
import type { BundleInfo, Decision, PolicyEngine } from './types';

const WASM = Buffer.from([0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00]);

function files(rev: string, data: Record<string, unknown> = {}): Record<string, string | Buffer> {
  return {
    'policy.wasm': WASM,
    'data.json': JSON.stringify(data),
    '.manifest': JSON.stringify({ revision: rev }),
  };
}

const SECRET = 'bundle-manager-test-secret';

/** Adds an HS256 `.signatures.json` like `opa build --signing-alg HS256 --signing-key SECRET`. */
function signedFiles(f: Record<string, string | Buffer>, secret = SECRET): Record<string, string | Buffer> {
  const listed = Object.entries(f).map(([name, body]) => ({
    name,
    hash: hashBundleFile(name, Buffer.from(body)),
    algorithm: 'SHA-256',
  }));
  const enc = (v: unknown): string => Buffer.from(JSON.stringify(v)).toString('base64url');
  const input = `${enc({ alg: 'HS256', kid: 'global' })}.${enc({ files: listed })}`;
  const token = `${input}.${createHmac('sha256', secret).update(input).digest('base64url')}`;
  return { ...f, '.signatures.json': JSON.stringify({ signatures: [token] }) };
}

/** An engine whose answers come from the bundle: data `{smoke: "fail"}` fails the smoke test. */
class FakeEngine implements PolicyEngine {
  constructor(private readonly b: LoadedBundle) {}
  evaluate(): Decision {
    const failing = this.b.data['smoke'] === 'fail';
    return {
      id: 'x',
      allow: !failing,
      denials: [],
      reasons: [],
      alerts: [],
      sqlstate: null,
      session_parameters: {},
      revision: this.b.manifest.revision,
      error_code: failing ? ErrorCodes.POLICY_UNDEFINED : null,
      eval_seconds: 0,
    };
  }
  bundle(): BundleInfo {
    return {
      revision: this.b.manifest.revision,
      entrypoint: 'pgward/decision',
      source: this.b.source,
      loaded_at: new Date().toISOString(),
      opa_version: null,
    };
  }
}

const fakeFactory: EngineFactory = async (b) => new FakeEngine(b);

interface Harness {
  manager: BundleManager;
  active: ActiveEngine;
  activated: string[];
  failed: Array<{ code: string; error: string }>;
}

function harness(opts: Partial<BundleManagerOptions> & { source: string }): Harness {
  const active = new ActiveEngine();
  const activated: string[] = [];
  const failed: Array<{ code: string; error: string }> = [];
  const manager = new BundleManager(
    active,
    { entrypoint: 'pgward/decision', watch: false, watchDebounceMs: 50, ...opts },
    {
      logger: pino({ level: 'silent' }),
      onActivated: (info) => activated.push(info.revision),
      onFailed: (code, error) => failed.push({ code, error }),
    },
    fakeFactory,
  );
  managers.push(manager);
  return { manager, active, activated, failed };
}

const managers: BundleManager[] = [];
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function until(pred: () => boolean, timeoutMs = 5000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!pred()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await sleep(10);
  }
}

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'pgward-bm-'));
});
afterEach(() => {
  for (const m of managers.splice(0)) m.stop();
  rmSync(dir, { recursive: true, force: true });
});

/** Replaces the file by rename, as deploy tools do. */
function put(file: string, bytes: Buffer): void {
  writeFileSync(`${file}.tmp`, bytes);
  renameSync(`${file}.tmp`, file);
}

describe('BundleManager with a local bundle', () => {
  it('loads, reloads, and keeps the previous bundle when a reload fails', async () => {
    const file = join(dir, 'bundle.tar.gz');
    put(file, tgz(files('r1')));
    const h = harness({ source: file });
    expect(await h.manager.start()).toEqual({ ok: true, revision: 'r1' });
    expect(h.active.bundle()?.revision).toBe('r1');

    put(file, tgz(files('r2')));
    expect(await h.manager.reload()).toEqual({ ok: true, revision: 'r2' });

    put(file, tgz(files('r3', { smoke: 'fail' })));
    const r = await h.manager.reload();
    expect(r).toMatchObject({ ok: false, code: ErrorCodes.BUNDLE_SMOKE });
    expect(h.active.bundle()?.revision).toBe('r2');
    expect(h.manager.status().last_reload_error).toMatch(/^PGWARD_ERR_BUNDLE_SMOKE: /);

    put(file, Buffer.from('not a bundle'));
    expect(await h.manager.reload()).toMatchObject({ ok: false, code: ErrorCodes.BUNDLE_LOAD });
    expect(h.active.bundle()?.revision).toBe('r2');
    expect(h.activated).toEqual(['r1', 'r2']);
    expect(h.failed.map((f) => f.code)).toEqual([ErrorCodes.BUNDLE_SMOKE, ErrorCodes.BUNDLE_LOAD]);

    put(file, tgz(files('r4')));
    expect(await h.manager.reload()).toEqual({ ok: true, revision: 'r4' });
    expect(h.manager.status().last_reload_error).toBeNull();
  });

  it('starts without a bundle when the first load fails, and never throws', async () => {
    const h = harness({ source: join(dir, 'missing.tar.gz') });
    expect(await h.manager.start()).toMatchObject({ ok: false, code: ErrorCodes.BUNDLE_LOAD });
    expect(h.active.bundle()).toBeNull();
  });

  it('runs one reload at a time, and once more for requests made meanwhile', async () => {
    const file = join(dir, 'bundle.tar.gz');
    put(file, tgz(files('r1')));
    const h = harness({ source: file });
    const a = h.manager.reload();
    const b = h.manager.reload();
    expect(b).toBe(a);
    await a;
    await until(() => h.activated.length === 2);
    await sleep(50);
    expect(h.activated).toEqual(['r1', 'r1']);
  });

  it('reloads on file change, debounced', async () => {
    const file = join(dir, 'bundle.tar.gz');
    put(file, tgz(files('r1')));
    const h = harness({ source: file, watch: true, watchDebounceMs: 150 });
    await h.manager.start();
    for (const rev of ['r2', 'r3', 'r4']) {
      put(file, tgz(files(rev)));
      await sleep(20);
    }
    writeFileSync(join(dir, 'unrelated.txt'), 'x');
    await until(() => h.active.bundle()?.revision === 'r4');
    await sleep(300);
    expect(h.activated).toEqual(['r1', 'r4']);
  });

  it('reloads on a ConfigMap volume update (the kubelet swaps ..data), within 2 s, and only once', async () => {
    const vol = join(dir, 'configmap');
    atomicWrite(vol, { 'bundle.tar.gz': tgz(files('cm1')), 'other.txt': 'a' });
    const h = harness({ source: join(vol, 'bundle.tar.gz'), watch: true, watchDebounceMs: 100 });
    await h.manager.start();
    expect(h.active.bundle()?.revision).toBe('cm1');
    const t0 = Date.now();
    atomicWrite(vol, { 'bundle.tar.gz': tgz(files('cm2')), 'other.txt': 'a' });
    await until(() => h.active.bundle()?.revision === 'cm2', 2000);
    expect(Date.now() - t0).toBeLessThan(2000);
    atomicWrite(vol, { 'bundle.tar.gz': tgz(files('cm3')), 'other.txt': 'b' });
    await until(() => h.active.bundle()?.revision === 'cm3', 2000);
    expect(h.activated).toEqual(['cm1', 'cm2', 'cm3']);
  });

  it('with verification on, activates signed bundles only', async () => {
    const file = join(dir, 'bundle.tar.gz');
    put(file, tgz(signedFiles(files('s1'))));
    const h = harness({ source: file, signing: { algorithm: 'HS256', key: SECRET, keyId: 'global' } });
    expect(await h.manager.start()).toEqual({ ok: true, revision: 's1' });

    put(file, tgz(files('unsigned')));
    expect(await h.manager.reload()).toMatchObject({ ok: false, code: ErrorCodes.BUNDLE_SIGNATURE });
    const tampered = signedFiles(files('s2'));
    tampered['data.json'] = '{"admins":["mallory"]}';
    put(file, tgz(tampered));
    expect(await h.manager.reload()).toMatchObject({ ok: false, code: ErrorCodes.BUNDLE_SIGNATURE });
    put(file, tgz(signedFiles(files('s3'), 'another secret')));
    expect(await h.manager.reload()).toMatchObject({ ok: false, code: ErrorCodes.BUNDLE_SIGNATURE });
    expect(h.active.bundle()?.revision).toBe('s1');
    expect(h.manager.status().last_reload_error).toMatch(/^PGWARD_ERR_BUNDLE_SIGNATURE: bundle signature: /);

    put(file, tgz(signedFiles(files('s4'))));
    expect(await h.manager.reload()).toEqual({ ok: true, revision: 's4' });
  });

  it('refuses a bad signing configuration at construction', () => {
    expect(() =>
      harness({ source: 'x', signing: { algorithm: 'RS256', key: 'not a pem', keyId: 'global' } }),
    ).toThrow(/policy.signing/);
  });
});

describe('BundleManager with a bundle server', () => {
  let server: BundleServer;
  beforeEach(async () => {
    server = await startBundleServer({ bundle: tgz(files('h1')) });
  });
  afterEach(async () => {
    await server.close();
  });

  it('polls with ETags: unchanged bundles are not downloaded again, new ones are activated', async () => {
    const h = harness({ source: server.url, pollMinDelayMs: 20, pollMaxDelayMs: 40 });
    expect(await h.manager.start()).toEqual({ ok: true, revision: 'h1' });
    await until(() => server.counts().notModified >= 3);
    expect(server.counts()).toMatchObject({ ok: 1, other: 0 });
    expect(h.activated).toEqual(['h1']);

    server.setBundle(tgz(files('h2')));
    await until(() => h.active.bundle()?.revision === 'h2');
    expect(server.counts().ok).toBe(2);
    expect(h.activated).toEqual(['h1', 'h2']);
  });

  it('keeps the last bundle while the server is away, counts the failures, and recovers', async () => {
    const h = harness({ source: server.url, pollMinDelayMs: 20, pollMaxDelayMs: 40 });
    await h.manager.start();
    await server.goAway();
    await until(() => h.failed.length >= 2);
    expect(h.failed.every((f) => f.code === ErrorCodes.BUNDLE_FETCH)).toBe(true);
    expect(h.active.bundle()?.revision).toBe('h1');
    expect(h.manager.status().last_reload_error).toMatch(/^PGWARD_ERR_BUNDLE_FETCH: .*ECONNREFUSED/);

    await server.comeBack();
    const before = server.counts().total;
    await until(() => h.manager.status().last_reload_error === null);
    expect(server.requests.slice(before).every((r) => r.status === 304)).toBe(true);
    expect(h.activated).toEqual(['h1']);
  });

  it('starts not ready when the server is down and picks the bundle up once it answers', async () => {
    await server.goAway();
    const h = harness({ source: server.url, pollMinDelayMs: 20, pollMaxDelayMs: 40 });
    expect(await h.manager.start()).toMatchObject({ ok: false, code: ErrorCodes.BUNDLE_FETCH });
    expect(h.active.bundle()).toBeNull();
    await server.comeBack();
    await until(() => h.active.bundle()?.revision === 'h1');
  });

  it('downloads a refused bundle again (the ETag is only kept for an active bundle)', async () => {
    const h = harness({ source: server.url, pollMinDelayMs: 20, pollMaxDelayMs: 40 });
    await h.manager.start();
    server.setBundle(tgz(files('bad', { smoke: 'fail' })));
    await until(() => h.failed.length >= 2);
    expect(h.failed.every((f) => f.code === ErrorCodes.BUNDLE_SMOKE)).toBe(true);
    expect(h.active.bundle()?.revision).toBe('h1');
    server.setBundle(tgz(files('h3')));
    await until(() => h.active.bundle()?.revision === 'h3');
  });

  it('stops polling on stop()', async () => {
    const h = harness({ source: server.url, pollMinDelayMs: 20, pollMaxDelayMs: 20 });
    await h.manager.start();
    await until(() => server.counts().total >= 3);
    h.manager.stop();
    await sleep(50);
    const n = server.counts().total;
    await sleep(150);
    expect(server.counts().total).toBe(n);
  });

  it('draws poll delays in [min, max] and backs off after failures up to max', () => {
    const h = harness({ source: server.url, pollMinDelayMs: 1000, pollMaxDelayMs: 8000 });
    const m = h.manager as unknown as { failedPolls: number };
    for (let i = 0; i < 100; i++) {
      const d = h.manager.nextPollDelayMs();
      expect(d).toBeGreaterThanOrEqual(1000);
      expect(d).toBeLessThanOrEqual(8000);
    }
    m.failedPolls = 1;
    expect(h.manager.nextPollDelayMs()).toBeLessThanOrEqual(1200);
    m.failedPolls = 50;
    const late = h.manager.nextPollDelayMs();
    expect(late).toBeGreaterThanOrEqual(8000 * 0.8);
    expect(late).toBeLessThanOrEqual(8000 * 1.2);
  });
});
