/**
 * Shared by the bundle integration tests: replacing the bundle file atomically, reading
 * /v1/bundle, waiting for conditions, and building OPA-signed bundles with the pinned OPA.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { Client } from 'pg';
import { LOCAL_PG } from '../helpers/cluster';
import { REPO, type RunningGateway } from '../helpers/gateway';

const execFileP = promisify(execFile);

/** Copies `src` over `dst` by rename, as a deployment would. */
export function replaceFile(src: string, dst: string): void {
  const tmp = `${dst}.${process.pid}.tmp`;
  fs.copyFileSync(src, tmp);
  fs.renameSync(tmp, dst);
}

/** The first JSON line of a .tar.gz's /.manifest, i.e. its revision. */
export async function revisionOf(bundle: string): Promise<string> {
  const { stdout } = await execFileP('tar', ['-xzOf', bundle, '/.manifest']).catch(() =>
    execFileP('tar', ['-xzOf', bundle, '.manifest']),
  );
  return (JSON.parse(stdout) as { revision: string }).revision;
}

export interface BundleView {
  active: boolean;
  revision: string | null;
  source: string | null;
  last_reload_error: string | null;
  last_reload_at: string | null;
}

export async function bundleView(gw: RunningGateway): Promise<BundleView> {
  const res = await gw.admin('/v1/bundle');
  expect(res.status).toBe(200);
  return (await res.json()) as BundleView;
}

export async function reloadViaSidecar(
  gw: RunningGateway,
  token?: string,
): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await gw.admin('/v1/bundle/reload', {
    method: 'POST',
    ...(token ? { headers: { authorization: `Bearer ${token}` } } : {}),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export async function waitFor(
  pred: () => Promise<boolean> | boolean,
  timeoutMs = 15_000,
  what = 'condition',
): Promise<void> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    if (await pred()) return;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

/** One query through the gateway as postgres; returns the value of the first column. */
export async function queryThrough(gw: RunningGateway, sql: string, database = 'postgres'): Promise<unknown> {
  const c = new Client({
    host: gw.host,
    port: gw.port,
    user: LOCAL_PG.user,
    database,
    application_name: 'pgward-bundles-it',
  });
  c.on('error', () => undefined);
  await c.connect();
  try {
    const r = await c.query<Record<string, unknown>>(sql);
    const row = r.rows[0];
    return row ? Object.values(row)[0] : undefined;
  } finally {
    await c.end();
  }
}

export function tempDir(prefix: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

export interface Keys {
  dir: string;
  rsaPrivate: string;
  rsaPublic: string;
  rsaOtherPrivate: string;
  ecPrivate: string;
  ecPublic: string;
  ecOtherPrivate: string;
  hmacSecret: string;
}

/** RSA 2048 and EC P-256 key pairs plus a second private key of each (openssl), and an HMAC secret. */
export async function makeKeys(dir: string): Promise<Keys> {
  const p = (n: string): string => path.join(dir, n);
  await execFileP('openssl', ['genrsa', '-out', p('rsa.pem'), '2048']);
  await execFileP('openssl', ['rsa', '-in', p('rsa.pem'), '-pubout', '-out', p('rsa.pub.pem')]);
  await execFileP('openssl', ['genrsa', '-out', p('rsa-other.pem'), '2048']);
  await execFileP('openssl', ['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', p('ec.pem')]);
  await execFileP('openssl', ['ec', '-in', p('ec.pem'), '-pubout', '-out', p('ec.pub.pem')]);
  await execFileP('openssl', [
    'ecparam',
    '-name',
    'prime256v1',
    '-genkey',
    '-noout',
    '-out',
    p('ec-other.pem'),
  ]);
  return {
    dir,
    rsaPrivate: p('rsa.pem'),
    rsaPublic: p('rsa.pub.pem'),
    rsaOtherPrivate: p('rsa-other.pem'),
    ecPrivate: p('ec.pem'),
    ecPublic: p('ec.pub.pem'),
    ecOtherPrivate: p('ec-other.pem'),
    hmacSecret: `pgward-hmac-${Math.random().toString(36).slice(2)}-secret`,
  };
}

let opaBinary: Promise<string> | null = null;
let capabilities: Promise<string> | null = null;

function opa(): Promise<string> {
  opaBinary ??= execFileP('go', ['tool', '-n', 'opa'], {
    cwd: path.join(REPO, 'wasm-build'),
    env: { ...process.env, PATH: `/usr/local/go/bin:${process.env.PATH ?? ''}` },
  }).then((r) => r.stdout.trim());
  return opaBinary;
}

/** The opa-wasm SDK's capabilities plus the rego_v1 feature, as scripts/build-policy.sh makes them. */
function capabilitiesFile(): Promise<string> {
  capabilities ??= (async () => {
    const src = path.join(REPO, 'node_modules', '@open-policy-agent', 'opa-wasm', 'capabilities.json');
    const caps = JSON.parse(fs.readFileSync(src, 'utf8')) as { features?: string[] };
    caps.features = [...new Set([...(caps.features ?? []), 'rego_v1'])].sort();
    const out = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'pgward-caps-')), 'capabilities.json');
    fs.writeFileSync(out, JSON.stringify(caps));
    return out;
  })();
  return capabilities;
}

export interface SignedBundleOptions {
  out: string;
  revision: string;
  alg: 'RS256' | 'ES256' | 'HS256';
  /** PEM file of the private key (RS256, ES256) or the secret itself (HS256). */
  signingKey: string;
  keyId: string;
  /** Fields of data.pgward replaced in the shipped data. */
  data?: Record<string, unknown>;
  workDir: string;
}

/** `opa build -t wasm --signing-key ...` of the shipped rego/ with test data: a real signed bundle. */
export async function buildSignedBundle(o: SignedBundleOptions): Promise<string> {
  const regoDir = path.join(REPO, 'rego');
  const src = fs.mkdtempSync(path.join(o.workDir, 'src-'));
  for (const f of fs.readdirSync(regoDir)) {
    if (f.endsWith('.rego') && !f.endsWith('_test.rego'))
      fs.copyFileSync(path.join(regoDir, f), path.join(src, f));
  }
  const shipped = JSON.parse(fs.readFileSync(path.join(regoDir, 'data.json'), 'utf8')) as {
    pgward: Record<string, unknown>;
  };
  fs.writeFileSync(
    path.join(src, 'data.json'),
    JSON.stringify({ ...shipped, pgward: { ...shipped.pgward, ...o.data } }, null, 2),
  );
  await execFileP(
    await opa(),
    [
      'build',
      '-b',
      '.',
      '-t',
      'wasm',
      '-e',
      'pgward/decision',
      '--capabilities',
      await capabilitiesFile(),
      '--revision',
      o.revision,
      '--signing-key',
      o.signingKey,
      '--signing-alg',
      o.alg,
      '--verification-key-id',
      o.keyId,
      '-o',
      o.out,
    ],
    { cwd: src },
  );
  fs.rmSync(src, { recursive: true, force: true });
  return o.out;
}

/** Unpacks a .tar.gz, lets `edit` change the files, and packs it again (gzip, paths as in OPA's). */
export async function repack(
  bundle: string,
  out: string,
  edit: (dir: string) => void,
  workDir: string,
): Promise<string> {
  const dir = fs.mkdtempSync(path.join(workDir, 'repack-'));
  await execFileP('tar', ['-xzf', bundle, '-C', dir]);
  edit(dir);
  const names = fs.readdirSync(dir);
  await execFileP('tar', ['-czf', out, '-C', dir, ...names]);
  fs.rmSync(dir, { recursive: true, force: true });
  return out;
}
