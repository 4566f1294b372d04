/**
 * Runs the real gateway (dist/cli.js, built by `make build`) as a child process for integration
 * tests, on free ports, with a generated config. Bundles with test data are built from rego/ by
 * scripts/build-policy.sh and cached per data content.
 */
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import YAML from 'yaml';

const execFileP = promisify(execFile);
export const REPO = path.resolve(__dirname, '..', '..');
export const CLI = path.join(REPO, 'dist', 'cli.js');
export const SHIPPED_BUNDLE = path.join(REPO, 'wasm-build', 'out', 'bundle.tar.gz');
const ARTIFACTS = path.join(REPO, 'tests', '.artifacts', 'bundles');

export interface GatewayOptions {
  /** Deep-merged into the generated config (snake_case keys as in pgward.yaml). */
  config?: Record<string, unknown>;
  bundle?: string;
  upstream?: string;
  env?: NodeJS.ProcessEnv;
  /** Extra command-line arguments after `serve`. */
  args?: string[];
}

export interface RunningGateway {
  host: string;
  port: number;
  adminPort: number | null;
  /** Every JSON log line so far. */
  logs: Array<Record<string, unknown>>;
  stdout: string[];
  stderr: string;
  proc: ChildProcess;
  configFile: string;
  waitForLog(
    pred: (l: Record<string, unknown>) => boolean,
    timeoutMs?: number,
  ): Promise<Record<string, unknown>>;
  admin(pathname: string, init?: RequestInit): Promise<Response>;
  /** SIGTERM and wait for exit (SIGKILL after timeoutMs). Returns the exit code. */
  stop(timeoutMs?: number): Promise<number | null>;
}

function deepMerge(a: Record<string, unknown>, b: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...a };
  for (const [k, v] of Object.entries(b)) {
    const cur = out[k];
    if (
      v &&
      typeof v === 'object' &&
      !Array.isArray(v) &&
      cur &&
      typeof cur === 'object' &&
      !Array.isArray(cur)
    ) {
      out[k] = deepMerge(cur as Record<string, unknown>, v as Record<string, unknown>);
    } else out[k] = v;
  }
  return out;
}

/**
 * The executable that runs dist/cli.js in tests: env PGWARD_TEST_RUNTIME unset or `node` is this
 * Node (process.execPath); `bun` is the binary named by PGWARD_BUN, else `bun` on PATH. Only the
 * gateway/CLI processes the tests start switch; jest itself stays on Node.
 */
export function gatewayRuntime(): string {
  const rt = (process.env.PGWARD_TEST_RUNTIME ?? '').trim().toLowerCase();
  if (rt === '' || rt === 'node') return process.execPath;
  if (rt === 'bun') return process.env.PGWARD_BUN || 'bun';
  throw new Error(`PGWARD_TEST_RUNTIME=${rt}: expected node or bun`);
}

const running = new Set<RunningGateway>();

export async function startGateway(opts: GatewayOptions = {}): Promise<RunningGateway> {
  if (!fs.existsSync(CLI)) throw new Error(`${CLI} missing: run 'make build' first`);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pgward-gw-'));
  const base: Record<string, unknown> = {
    listen: '127.0.0.1:0',
    upstream: { address: opts.upstream ?? '127.0.0.1:5432' },
    admin: { listen: '127.0.0.1:0' },
    policy: { bundle: opts.bundle ?? SHIPPED_BUNDLE, watch: false },
    log: { level: 'info' },
    audit: { sink: 'stdout' },
    // One process unless a test asks for workers (the default is one worker per CPU).
    cluster: { workers: 1 },
    // stop() (SIGTERM) exits as soon as the sessions have drained: no load balancer here to wait
    // for (the default keeps accepting 5 s). Tests of the shutdown delay set their own.
    limits: { shutdown_delay_ms: 0 },
  };
  const config = deepMerge(base, opts.config ?? {});
  const configFile = path.join(dir, 'pgward.yaml');
  fs.writeFileSync(configFile, YAML.stringify(config));
  const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: process.env.HOME, ...opts.env };
  const proc = spawn(gatewayRuntime(), [CLI, 'serve', '--config', configFile, ...(opts.args ?? [])], {
    cwd: REPO,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const logs: Array<Record<string, unknown>> = [];
  const stdout: string[] = [];
  let stderr = '';
  const waiters: Array<{
    pred: (l: Record<string, unknown>) => boolean;
    resolve: (l: Record<string, unknown>) => void;
  }> = [];
  let buf = '';
  proc.stdout!.setEncoding('utf8');
  proc.stdout!.on('data', (chunk: string) => {
    buf += chunk;
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      stdout.push(line);
      try {
        const obj = JSON.parse(line) as Record<string, unknown>;
        logs.push(obj);
        for (let i = waiters.length - 1; i >= 0; i--) {
          const w = waiters[i]!;
          if (w.pred(obj)) {
            waiters.splice(i, 1);
            w.resolve(obj);
          }
        }
      } catch {
        /* not JSON */
      }
    }
  });
  proc.stderr!.setEncoding('utf8');
  proc.stderr!.on('data', (c: string) => (stderr += c));
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));

  const waitForLog = (
    pred: (l: Record<string, unknown>) => boolean,
    timeoutMs = 15000,
  ): Promise<Record<string, unknown>> => {
    const found = logs.find(pred);
    if (found) return Promise.resolve(found);
    return new Promise((resolve, reject) => {
      const t = setTimeout(
        () => reject(new Error(`timed out waiting for a gateway log line; stderr: ${stderr}`)),
        timeoutMs,
      );
      waiters.push({
        pred,
        resolve: (l) => {
          clearTimeout(t);
          resolve(l);
        },
      });
      void exited.then((code) => {
        clearTimeout(t);
        reject(
          new Error(`gateway exited with ${code}; stderr: ${stderr}; stdout: ${stdout.slice(-5).join('\n')}`),
        );
      });
    });
  };

  let ready: Record<string, unknown>;
  try {
    ready = await waitForLog((l) => l.msg === 'pgward listening', 30000);
  } catch (err) {
    proc.kill('SIGKILL');
    fs.rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  const [host, port] = splitAddr(String(ready.listen));
  const adminPort = ready.admin ? splitAddr(String(ready.admin))[1] : null;
  const gw: RunningGateway = {
    host,
    port,
    adminPort,
    logs,
    stdout,
    get stderr() {
      return stderr;
    },
    proc,
    configFile,
    waitForLog,
    admin: (p, init) => fetch(`http://127.0.0.1:${adminPort}${p}`, init),
    async stop(timeoutMs = 10000) {
      running.delete(gw);
      if (proc.exitCode !== null || proc.signalCode !== null) return proc.exitCode;
      proc.kill('SIGTERM');
      const t = setTimeout(() => proc.kill('SIGKILL'), timeoutMs);
      const code = await exited;
      clearTimeout(t);
      fs.rmSync(dir, { recursive: true, force: true });
      return code;
    },
  };
  running.add(gw);
  return gw;
}

export async function stopAllGateways(): Promise<void> {
  await Promise.all([...running].map((g) => g.stop()));
}

function splitAddr(a: string): [string, number] {
  const i = a.lastIndexOf(':');
  return [a.slice(0, i), Number(a.slice(i + 1))];
}

/**
 * A bundle of the shipped policies with `data.pgward` fields replaced (e.g. `{admins: ['postgres']}`),
 * built once per distinct data and cached under tests/.artifacts/bundles.
 */
export async function buildBundleWithData(
  overrides: Record<string, unknown>,
  regoDir = path.join(REPO, 'rego'),
): Promise<string> {
  const shipped = JSON.parse(fs.readFileSync(path.join(regoDir, 'data.json'), 'utf8')) as {
    pgward: Record<string, unknown>;
  };
  const data = { ...shipped, pgward: { ...shipped.pgward, ...overrides } };
  const sources = fs
    .readdirSync(regoDir)
    .filter((f) => f.endsWith('.rego') && !f.endsWith('_test.rego'))
    .sort();
  const h = createHash('sha256');
  for (const f of sources) h.update(f).update(fs.readFileSync(path.join(regoDir, f)));
  h.update(JSON.stringify(data));
  const key = h.digest('hex').slice(0, 16);
  const out = path.join(ARTIFACTS, `${key}.tar.gz`);
  if (fs.existsSync(out)) return out;
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'pgward-rego-'));
  for (const f of sources) fs.copyFileSync(path.join(regoDir, f), path.join(tmp, f));
  fs.writeFileSync(path.join(tmp, 'data.json'), JSON.stringify(data));
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  await execFileP(path.join(REPO, 'scripts', 'build-policy.sh'), [tmp, out + '.tmp'], {
    env: { ...process.env, PGWARD_POLICY_REVISION: `test-${key}` },
  });
  fs.renameSync(out + '.tmp', out);
  fs.rmSync(tmp, { recursive: true, force: true });
  return out;
}

/** Builds an arbitrary Rego directory (e.g. tests/fixtures/bundles/deny-all) into a cached bundle. */
export async function buildBundleFromDir(dir: string, revision?: string): Promise<string> {
  const h = createHash('sha256');
  for (const f of fs.readdirSync(dir).sort()) {
    const p = path.join(dir, f);
    if (fs.statSync(p).isFile()) h.update(f).update(fs.readFileSync(p));
  }
  h.update(revision ?? '');
  const out = path.join(ARTIFACTS, `dir-${h.digest('hex').slice(0, 16)}.tar.gz`);
  if (fs.existsSync(out)) return out;
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  await execFileP(path.join(REPO, 'scripts', 'build-policy.sh'), [dir, out + '.tmp'], {
    env: { ...process.env, ...(revision ? { PGWARD_POLICY_REVISION: revision } : {}) },
  });
  fs.renameSync(out + '.tmp', out);
  return out;
}
