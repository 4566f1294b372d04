#!/usr/bin/env node
// make bench: pgbench -S (simple, extended, prepared) at 1, 8 and 32 clients against
//   direct PostgreSQL, pgbouncer (session mode), pgward with a bare allow-everything policy
//   and pgward with the shipped policies — all in one run, on the same database —
// then gateway memory per idle client (1,000 idle connections), and the micro-benchmarks
// (classification, policy evaluation, framing, replay). Appends a dated section to
// docs/benchmarks.md and prints it.
//
// Besides TPS, each proxy's CPU per transaction (user + system time of the proxy process, all its
// threads, from /proc/PID/stat, divided by the transactions pgbench completed): on a shared
// two-core box TPS moves ±15 % between runs, CPU per transaction much less.
//
// Interleaved rounds: every mode and client count runs BENCH_ROUNDS rounds (default 3), each round
// a pgbench run against every proxy in turn, the order rotated by one proxy per round; the tables
// give the median of the rounds, and each ratio is the median of the ratios of the same round (the
// two proxies measured minutes apart at most, in the same machine state). One sequential run per
// proxy moved a ratio by ±15 % on the shared two-core box; the median of interleaved rounds is
// the figure the issues' bars are read from.
//
// Environment: BENCH_SECONDS (default 6), BENCH_ROUNDS (default 3), BENCH_CLIENTS (default "1,8,32"), BENCH_MODES,
// BENCH_IDLE (default 1000), BENCH_SKIP (comma list of: pgbench,idle,micro), BENCH_NO_WRITE=1,
// BENCH_BASELINE=DIR: another built checkout of pgward (dist/ and wasm-build/out/bundle.tar.gz),
// measured in the same run with its own shipped bundle ("baseline"), to compare two versions in
// one machine state.
// BENCH_WARMUP=S (default 2): seconds of unmeasured pgbench against every proxy before each mode's
// rounds (0: none).
// BENCH_WORKERS=N (default 1): this checkout's pgward runs with `--workers N`; its CPU and RSS are
// those of the primary and every worker together (the process tree).
// The idle-memory phase also measures this checkout's pgward with `--workers 2` (key
// pgward_workers2; the same figures as pgward when BENCH_WORKERS=2).
'use strict';
/* eslint-disable @typescript-eslint/no-require-imports */
const { spawn, execFileSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const net = require('node:net');

const ROOT = path.resolve(__dirname, '..');
const SECONDS = Number(process.env.BENCH_SECONDS || 6);
const ROUNDS = Math.max(1, Math.floor(Number(process.env.BENCH_ROUNDS || 3)) || 3);
const CLIENTS = (process.env.BENCH_CLIENTS || '1,8,32').split(',').map(Number);
const MODES = (process.env.BENCH_MODES || 'simple,extended,prepared').split(',');
const IDLE = Number(process.env.BENCH_IDLE || 1000);
const SKIP = new Set((process.env.BENCH_SKIP || '').split(',').filter(Boolean));
const WORKERS = Number(process.env.BENCH_WORKERS || 1);
const WARMUP = Number(process.env.BENCH_WARMUP ?? 2);
const DB = 'pgward_bench';
const PG = { host: '127.0.0.1', port: 5432, user: 'postgres' };

function log(...a) {
  process.stderr.write(a.join(' ') + '\n');
}

function sh(cmd, args, opts = {}) {
  return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], ...opts });
}

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => {
      const p = s.address().port;
      s.close(() => resolve(p));
    });
    s.on('error', reject);
  });
}

function waitPort(port, ms = 15000) {
  const until = Date.now() + ms;
  return new Promise((resolve, reject) => {
    const tryOnce = () => {
      const s = net.connect(port, '127.0.0.1');
      s.once('connect', () => {
        s.destroy();
        resolve();
      });
      s.once('error', () => {
        s.destroy();
        if (Date.now() > until) reject(new Error(`port ${port} did not open`));
        else setTimeout(tryOnce, 100);
      });
    };
    tryOnce();
  });
}

function buildBundle(dir, out, revision) {
  sh(path.join(ROOT, 'scripts/build-policy.sh'), [dir, out], {
    env: { ...process.env, PGWARD_POLICY_REVISION: revision },
  });
  return out;
}

/** Whether the pgward built in `root` has `serve --workers`. */
function knowsWorkers(root) {
  try {
    return fs.readFileSync(path.join(root, 'dist/cli.js'), 'utf8').includes('--workers');
  } catch {
    return false;
  }
}

/** extra: { upstream: 'host:port', workers: N (this checkout only; default BENCH_WORKERS) }. */
async function startPgward(bundle, tag, extra = {}, root = ROOT) {
  const port = await freePort();
  const adminPort = await freePort();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `pgward-bench-${tag}-`));
  const cfg = {
    listen: `127.0.0.1:${port}`,
    upstream: { address: extra.upstream || `${PG.host}:${PG.port}` },
    admin: { enabled: true, listen: `127.0.0.1:${adminPort}` },
    policy: { bundle, watch: false },
    log: { level: 'warn' },
    audit: { sink: 'none' },
    limits: { max_clients: 20000, max_unauthenticated: 5000 },
  };
  fs.writeFileSync(path.join(dir, 'pgward.yaml'), JSON.stringify(cfg));
  const proc = spawn(
    extra.runtime === 'bun' ? BUN : process.execPath,
    [
      path.join(root, 'dist/cli.js'),
      'serve',
      '--config',
      path.join(dir, 'pgward.yaml'),
      // This checkout defaults to one worker per CPU; a baseline checkout that knows --workers runs
      // with one too (else its figures are those of a primary and a worker per CPU), one that
      // predates it runs as it does.
      ...(root === ROOT || knowsWorkers(root)
        ? ['--workers', String(root === ROOT ? (extra.workers ?? WORKERS) : 1)]
        : []),
    ],
    {
      cwd: root,
      stdio: ['ignore', 'ignore', 'inherit'],
    },
  );
  await waitPort(port);
  await waitReady(adminPort);
  const stop = () =>
    (proc.exitCode !== null || proc.signalCode !== null
      ? Promise.resolve()
      : new Promise((r) => (proc.once('exit', r), proc.kill('SIGTERM')))
    ).then(() => fs.rmSync(dir, { recursive: true, force: true }));
  return { port, adminPort, proc, stop };
}

/**
 * The gateway's own pgward_policy_eval_seconds histogram (every judged message, the decision cache
 * included): how many evaluations, the share at or under 10 µs, and the bucket holding the median.
 */
async function evalHistogram(adminPort) {
  const res = await fetch(`http://127.0.0.1:${adminPort}/metrics`);
  const text = await res.text();
  const buckets = [];
  let count = 0;
  let sum = 0;
  for (const line of text.split('\n')) {
    let m = /^pgward_policy_eval_seconds_bucket\{le="([^"]+)"\} (\S+)$/.exec(line);
    if (m) buckets.push([m[1] === '+Inf' ? Infinity : Number(m[1]), Number(m[2])]);
    m = /^pgward_policy_eval_seconds_count (\S+)$/.exec(line);
    if (m) count = Number(m[1]);
    m = /^pgward_policy_eval_seconds_sum (\S+)$/.exec(line);
    if (m) sum = Number(m[1]);
  }
  const at = (le) => buckets.find(([b]) => Math.abs(b - le) < 1e-12)?.[1] ?? NaN;
  const medianBucket = buckets.find(([, n]) => n >= count / 2)?.[0] ?? NaN;
  return {
    evaluations: count,
    mean_us: count ? (sum / count) * 1e6 : NaN,
    share_le_10us: count ? at(1e-5) / count : NaN,
    share_le_5us: count ? at(5e-6) / count : NaN,
    median_at_most_us: medianBucket * 1e6,
  };
}

async function startPgbouncer() {
  const port = await freePort();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pgward-bench-pgbouncer-'));
  fs.writeFileSync(path.join(dir, 'users.txt'), `"${PG.user}" ""\n`);
  fs.writeFileSync(
    path.join(dir, 'pgbouncer.ini'),
    [
      '[databases]',
      `* = host=${PG.host} port=${PG.port}`,
      '[pgbouncer]',
      `listen_addr = 127.0.0.1`,
      `listen_port = ${port}`,
      'auth_type = trust',
      `auth_file = ${dir}/users.txt`,
      'pool_mode = session',
      'max_client_conn = 2000',
      'default_pool_size = 64',
      `logfile = ${dir}/pgbouncer.log`,
      `pidfile = ${dir}/pgbouncer.pid`,
      `unix_socket_dir = ${dir}`,
      '',
    ].join('\n'),
  );
  sh('chown', ['-R', 'postgres:postgres', dir]);
  const bin = fs.existsSync('/usr/sbin/pgbouncer') ? '/usr/sbin/pgbouncer' : 'pgbouncer';
  const proc = spawn('runuser', ['-u', 'postgres', '--', bin, path.join(dir, 'pgbouncer.ini')], {
    stdio: 'inherit',
  });
  await waitPort(port);
  // runuser forks: the proxy's own CPU is pgbouncer's, named by its pid file.
  const pid = Number(fs.readFileSync(path.join(dir, 'pgbouncer.pid'), 'utf8').trim());
  const stop = () =>
    new Promise((r) => (proc.once('exit', r), proc.kill('SIGTERM'))).then(() =>
      fs.rmSync(dir, { recursive: true, force: true }),
    );
  return { port, pid, proc, stop };
}

/** A minimal Node.js proxy: no parsing, `pipe()` both ways. */
const NODE_FLOOR = (upstreamPort, port) =>
  `require('net').createServer({ noDelay: true }, (c) => { const u = require('net').connect(${upstreamPort}, '127.0.0.1'); u.setNoDelay(true); c.pipe(u); u.pipe(c); c.on('error', () => {}); u.on('error', () => {}); }).listen(${port}, '127.0.0.1')`;

/**
 * The same proxy reading and writing the way pgward does with plain TCP sockets
 * (session/shared-reads.ts: one shared read buffer, each read copied out, no stream `data` path;
 * session/direct-writes.ts: writes through the socket's handle, no Writable), still without any
 * parsing: the floor of a Node.js proxy that moves bytes as pgward does.
 */
const NODE_FLOOR_SHARED = (upstreamPort, port) =>
  `const net = require('net'); const { useSharedReads } = require(${JSON.stringify(path.join(ROOT, 'dist/session/shared-reads.js'))}); const { directWriter } = require(${JSON.stringify(path.join(ROOT, 'dist/session/direct-writes.js'))}); net.createServer({ noDelay: true }, (c) => { const u = net.connect(${upstreamPort}, '127.0.0.1'); u.setNoDelay(true); let wu = null; let wc = null; const toU = (b) => { if (!(wu ? wu.write(b) : u.write(b))) c.pause(); }; const toC = (b) => { if (!(wc ? wc.write(b) : c.write(b))) u.pause(); }; c.on('drain', () => u.resume()); u.on('drain', () => c.resume()); if (useSharedReads(c, toU) !== 'switched') c.on('data', toU); u.once('connect', () => { wu = directWriter(u); wc = directWriter(c); if (useSharedReads(u, toC) !== 'switched') u.on('data', toC); }); c.on('error', () => {}); u.on('error', () => {}); c.on('close', () => u.destroy()); u.on('close', () => c.destroy()); }).listen(${port}, '127.0.0.1')`;

/**
 * The same on Bun's own sockets (`Bun.listen`/`Bun.connect`, bytes written as they come): the
 * floor of a proxy on Bun, beside pgward under Bun (session/bun-socket.ts).
 */
const BUN_FLOOR = (upstreamPort, port) => `
Bun.listen({ hostname: '127.0.0.1', port: ${port}, socket: {
  open(c) { c.data = { q: [], u: null }; Bun.connect({ hostname: '127.0.0.1', port: ${upstreamPort}, socket: {
      open(u) { u.data = c; c.data.u = u; for (const b of c.data.q) u.write(b); c.data.q = []; },
      data(u, b) { u.data.write(b); }, close(u) { u.data.end(); }, error() {} } }); },
  data(c, b) { if (c.data.u) c.data.u.write(b); else c.data.q.push(b); },
  close(c) { c.data.u && c.data.u.end(); }, error() {} } });`;

/** Bun as `make integration-bun` installs it; the Bun rows are left out without it. */
const BUN = path.join(ROOT, '.tmp/bun/node_modules/.bin/bun');
const HAVE_BUN = fs.existsSync(BUN);

/** runtime: 'node' (pipe), 'node-shared' (shared reads, NODE_FLOOR_SHARED) or 'bun'. */
async function startNodeFloor(upstreamPort, runtime = 'node') {
  const port = await freePort();
  const code = { node: NODE_FLOOR, 'node-shared': NODE_FLOOR_SHARED, bun: BUN_FLOOR }[runtime];
  const proc = spawn(runtime === 'bun' ? BUN : process.execPath, ['-e', code(upstreamPort, port)], {
    stdio: 'ignore',
  });
  await waitPort(port);
  const stop = () =>
    proc.exitCode !== null || proc.signalCode !== null
      ? Promise.resolve()
      : new Promise((r) => (proc.once('exit', r), proc.kill('SIGTERM')));
  return { port, proc, stop };
}

function pgbench(port, mode, clients, seconds = SECONDS) {
  const logDir = fs.mkdtempSync(path.join(os.tmpdir(), 'pgward-bench-log-'));
  const args = [
    '-h',
    PG.host,
    '-p',
    String(port),
    '-U',
    PG.user,
    '-n',
    '-S',
    '-M',
    mode,
    '-c',
    String(clients),
    '-j',
    String(Math.min(clients, 2)),
    '-T',
    String(seconds),
    '-l',
    '--log-prefix',
    path.join(logDir, 'tx'),
    DB,
  ];
  const out = sh('pgbench', args, { env: { ...process.env, PGAPPNAME: 'pgward-bench' } });
  const tps = Number(/tps = ([\d.]+)/.exec(out)?.[1] ?? NaN);
  const transactions = Number(/number of transactions actually processed: (\d+)/.exec(out)?.[1] ?? NaN);
  const failed = Number(/number of failed transactions: (\d+)/.exec(out)?.[1] ?? 0);
  const lat = [];
  for (const f of fs.readdirSync(logDir)) {
    for (const line of fs.readFileSync(path.join(logDir, f), 'utf8').split('\n')) {
      const cols = line.split(' ');
      if (cols.length > 3) lat.push(Number(cols[2]));
    }
  }
  fs.rmSync(logDir, { recursive: true, force: true });
  lat.sort((a, b) => a - b);
  const q = (p) => (lat.length ? lat[Math.min(lat.length - 1, Math.floor(p * lat.length))] / 1000 : NaN);
  return { tps, transactions, failed, p50: q(0.5), p99: q(0.99) };
}

/** /proc/PID/stat fields after the command name (which may hold spaces): f[1] is the ppid. */
function statFields(pid) {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
}

/** `pid` and its descendants (a pgward primary and its workers). */
function processTree(pid) {
  const parent = new Map();
  for (const d of fs.readdirSync('/proc')) {
    if (!/^[0-9]+$/.test(d)) continue;
    try {
      parent.set(Number(d), Number(statFields(d)[1]));
    } catch {
      /* exited meanwhile */
    }
  }
  const out = [pid];
  for (let i = 0; i < out.length; i++) {
    for (const [child, p] of parent) if (p === out[i]) out.push(child);
  }
  return out;
}

/**
 * User and system CPU seconds, apart, of a process and its descendants so far, all threads (utime
 * and stime, fields 14 and 15 of /proc/PID/stat); a descendant that has exited is counted in its
 * parent's cutime/cstime only once waited for, so the tree is taken while it runs.
 */
function cpuSplit(pid) {
  let user = 0;
  let system = 0;
  for (const p of processTree(pid)) {
    const f = statFields(p);
    user += Number(f[11]) / CLK_TCK;
    system += Number(f[12]) / CLK_TCK;
  }
  return { user, system };
}

/** Until /readyz answers 200 (with workers: every worker runs the bundle). */
async function waitReady(adminPort, ms = 30000) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    const ok = await fetch(`http://127.0.0.1:${adminPort}/readyz`).then(
      (r) => r.status === 200,
      () => false,
    );
    if (ok) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`pgward on admin port ${adminPort} not ready after ${ms} ms`);
}

const CLK_TCK = (() => {
  try {
    return Number(sh('getconf', ['CLK_TCK']).trim()) || 100;
  } catch {
    return 100;
  }
})();

/** VmRSS of a process and its descendants (a pgward primary and its workers), KiB. */
function rssKiB(pid) {
  let kib = 0;
  for (const p of processTree(pid)) {
    const s = fs.readFileSync(`/proc/${p}/status`, 'utf8');
    kib += Number(/VmRSS:\s+(\d+)/.exec(s)[1]);
  }
  return kib;
}

/** Opens `n` authenticated connections (50 at a time) to `port`; each runs one query. */
async function openIdle(port, n) {
  const { Client } = require('pg');
  const clients = [];
  for (let i = 0; i < n; i += 50) {
    const batch = [];
    for (let j = i; j < Math.min(n, i + 50); j++) {
      const c = new Client({ host: '127.0.0.1', port, user: 'trust_user', database: 'pgward_test' });
      c.on('error', () => undefined);
      batch.push(
        c
          .connect()
          .then(() => c.query('select 1'))
          .then(() => c),
      );
    }
    clients.push(...(await Promise.all(batch)));
  }
  return clients;
}

const closeAll = (clients) => Promise.all(clients.map((c) => c.end().catch(() => undefined)));

/**
 * RSS of the process behind `port` before and after IDLE idle connections, cold (fresh process)
 * and warm (after the same number of connections came and went: V8's young generation grows
 * with a burst of allocation and keeps that size, a fixed cost that is not per client).
 */
async function measureIdle(pid, port, workers = 1) {
  // One connection per worker first (the primary hands connections to the workers in turn): code
  // loaded and compiled on first use is not per client.
  await closeAll(await openIdle(port, workers));
  await new Promise((r) => setTimeout(r, 1000));
  const cold = rssKiB(pid);
  let clients = await openIdle(port, IDLE);
  await new Promise((r) => setTimeout(r, 2000));
  const coldAfter = rssKiB(pid);
  await closeAll(clients);
  await new Promise((r) => setTimeout(r, 2000));
  const warm = rssKiB(pid);
  clients = await openIdle(port, IDLE);
  await new Promise((r) => setTimeout(r, 2000));
  const warmAfter = rssKiB(pid);
  await closeAll(clients);
  return {
    cold_before_kib: cold,
    cold_after_kib: coldAfter,
    cold_per_client_kib: (coldAfter - cold) / IDLE,
    warm_before_kib: warm,
    warm_after_kib: warmAfter,
    warm_per_client_kib: (warmAfter - warm) / IDLE,
    // Everything the instance holds (all workers and the primary, fixed costs included) per client.
    warm_total_per_client_kib: warmAfter / IDLE,
  };
}

async function idleMemory(bundle) {
  // The local server allows ~100 connections: a throwaway cluster takes the 1,000 idle backends.
  // --owner-pid: if this run is killed, the next cluster start reaps the cluster.
  const out = execFileSync(
    path.join(ROOT, 'scripts/pg-cluster.sh'),
    ['start', '--owner-pid', String(process.pid)],
    {
      encoding: 'utf8',
      env: { ...process.env, PGWARD_CLUSTER_MAX_CONNECTIONS: String(IDLE + 50) },
    },
  );
  const cluster = JSON.parse(out.trim().split('\n').pop());
  const upstream = `127.0.0.1:${cluster.port}`;
  let running = null;
  try {
    const measure = async (start, workers = 1) => {
      running = await start();
      const r = await measureIdle(running.proc.pid, running.port, workers);
      await running.stop();
      running = null;
      return r;
    };
    const pgward = await measure(() => startPgward(bundle, 'idle', { upstream }), WORKERS);
    // The same gateway with two workers (RSS of the primary and both workers).
    const pgwardWorkers2 =
      WORKERS === 2
        ? pgward
        : await measure(() => startPgward(bundle, 'idle-w2', { upstream, workers: 2 }), 2);
    // The floor for comparison: a minimal Node.js proxy (socket.pipe both ways) on the same test.
    const nodeFloor = await measure(() => startNodeFloor(cluster.port));
    return { clients: IDLE, workers: WORKERS, pgward, pgward_workers2: pgwardWorkers2, floor: nodeFloor };
  } finally {
    if (running) await running.stop();
    execFileSync(path.join(ROOT, 'scripts/pg-cluster.sh'), ['stop', cluster.dir]);
  }
}

function micro() {
  const res = {};
  const run = (name, script, args = [], env = {}) => {
    try {
      const out = sh(process.execPath, [path.join(ROOT, 'scripts', script), ...args], {
        env: { ...process.env, ...env },
      });
      res[name] = JSON.parse(
        out
          .trim()
          .split('\n')
          .filter((l) => l.startsWith('{'))
          .pop(),
      );
    } catch (err) {
      res[name] = { error: String(err.message || err).split('\n')[0] };
    }
  };
  run('classify', 'bench-classify.js');
  run('eval_shipped', 'bench-eval.js');
  // pgward's own work per pgbench-like cycle, without sockets (shipped bundle, real engine).
  run('session_core', 'bench-core.js');
  // The same with caches as cold as under load (8 sessions, 256 KiB written after every read):
  // this one follows the live gateway's cost, where the hot loop flatters (benchmarks.md, "Where
  // the rest of pgward's CPU goes").
  run('session_core_cold', 'bench-core.js', [], { BENCH_CORE_SESSIONS: '8', BENCH_CORE_THRASH_KB: '256' });
  if (fs.existsSync(path.join(ROOT, 'scripts/bench-replay.js'))) run('replay', 'bench-replay.js');
  if (fs.existsSync(path.join(ROOT, 'scripts/bench-framing.js'))) run('framing', 'bench-framing.js');
  return res;
}

function machine() {
  const cpus = os.cpus();
  return `${cpus.length} × ${cpus[0]?.model ?? 'cpu'}, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, ${os.type()} ${os.release()}, Node ${process.version}, ${sh('psql', ['--version']).trim()}, ${sh('pgbouncer', ['--version']).split('\n')[0]}`;
}

const f1 = (x) => (Number.isFinite(x) ? x.toFixed(0) : 'n/a');
const f2 = (x) => (Number.isFinite(x) ? x.toFixed(2) : 'n/a');
const f1d = (x) => (Number.isFinite(x) ? x.toFixed(1) : 'n/a');

/** The median over the rounds of `a`'s `key` (tps, cpu_us_per_tx) divided by `b`'s in the same round. */
function roundRatio(rounds, key, a, b) {
  return median(rounds.map((x) => x[a][key] / x[b][key]));
}

/** The median of the finite numbers of `xs` (NaN when none). */
function median(xs) {
  const v = xs.filter(Number.isFinite).sort((a, b) => a - b);
  if (v.length === 0) return NaN;
  const m = v.length >> 1;
  return v.length % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
}

async function main() {
  const date = new Date().toISOString().replace('T', ' ').slice(0, 16) + ' UTC';
  const lines = [
    `## ${date}`,
    '',
    `Machine: ${machine()}.`,
    '',
    'Command: `make bench` (' +
      `BENCH_SECONDS=${SECONDS}, BENCH_ROUNDS=${ROUNDS}, clients ${CLIENTS.join('/')}, modes ${MODES.join('/')}, pgward workers ${WORKERS}).`,
    '',
  ];
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'pgward-bench-bundles-'));
  // The bare proxy: a policy that allows everything, raises no alert and reads no input (its
  // derived input paths are empty) — what is left is pgward's own cost per judged message.
  const bareDir = path.join(tmp, 'bare');
  fs.mkdirSync(bareDir);
  fs.writeFileSync(
    path.join(bareDir, 'policy.rego'),
    'package pgward\n\n# METADATA\n# entrypoint: true\ndecision := {"allow": true, "denials": [], "alerts": []}\n',
  );
  const bare = buildBundle(bareDir, path.join(tmp, 'bare.tar.gz'), 'bench-bare');
  // Issue 11's two reference policies: one that reads only a connection field (its decisions are
  // cached per session), and one that reads every Bind value (pgbench's are all distinct, so each
  // Bind is a full evaluation).
  const ruleBundle = (name, body) => {
    const dir = path.join(tmp, name);
    fs.mkdirSync(dir);
    fs.writeFileSync(
      path.join(dir, 'policy.rego'),
      'package pgward\n\n# METADATA\n# entrypoint: true\n' +
        'decision := {"allow": count(_denials) == 0, "denials": _denials, "alerts": []}\n\n' +
        `_denials := [d | ${body}; d := {"rule": "${name}", "message": "${name}", "priority": 1}]\n`,
    );
    return buildBundle(dir, path.join(tmp, `${name}.tar.gz`), `bench-${name}`);
  };
  const connRule = ruleBundle('connection_rule', 'input.connection.user in {"mallory", "eve"}');
  const bindRule = ruleBundle('bind_values', 'some p in input.message.parameters; p.value == "forbidden"');
  const shipped = path.join(ROOT, 'wasm-build/out/bundle.tar.gz');

  if (!SKIP.has('pgbench')) {
    log('preparing database', DB);
    try {
      sh('psql', [
        '-h',
        PG.host,
        '-p',
        String(PG.port),
        '-U',
        PG.user,
        '-d',
        'postgres',
        '-c',
        `CREATE DATABASE ${DB}`,
      ]);
    } catch {
      /* exists */
    }
    sh('pgbench', ['-h', PG.host, '-p', String(PG.port), '-U', PG.user, '-i', '-q', '-s', '10', DB]);
    const bouncer = await startPgbouncer();
    const gwBare = await startPgward(bare, 'bare');
    const gwShipped = await startPgward(shipped, 'shipped');
    const gwConn = await startPgward(connRule, 'connection-rule');
    const gwBind = await startPgward(bindRule, 'bind-values');
    const floor = await startNodeFloor(PG.port);
    const sharedFloor = await startNodeFloor(PG.port, 'node-shared');
    // pgward under Bun (its own sockets, session/bun-socket.ts) and a bare proxy on Bun's sockets.
    const gwBun = HAVE_BUN ? await startPgward(shipped, 'shipped-bun', { runtime: 'bun' }) : null;
    const gwBunConn = HAVE_BUN
      ? await startPgward(connRule, 'connection-rule-bun', { runtime: 'bun' })
      : null;
    const gwBunBind = HAVE_BUN ? await startPgward(bindRule, 'bind-values-bun', { runtime: 'bun' }) : null;
    const bunFloor = HAVE_BUN ? await startNodeFloor(PG.port, 'bun') : null;
    if (!HAVE_BUN) log(`no ${BUN} (make integration-bun installs it): Bun rows left out`);
    const baselineRoot = process.env.BENCH_BASELINE ? path.resolve(process.env.BENCH_BASELINE) : null;
    const gwBaseline = baselineRoot
      ? await startPgward(
          path.join(baselineRoot, 'wasm-build/out/bundle.tar.gz'),
          'baseline',
          {},
          baselineRoot,
        )
      : null;
    const targets = [
      ['direct', PG.port, null],
      ['pgbouncer', bouncer.port, bouncer.pid],
      ['node floor', floor.port, floor.proc.pid],
      ['node floor, shared reads', sharedFloor.port, sharedFloor.proc.pid],
      ['pgward (allow-all)', gwBare.port, gwBare.proc.pid],
      ['pgward (shipped policies)', gwShipped.port, gwShipped.proc.pid],
      ['pgward (connection rule)', gwConn.port, gwConn.proc.pid],
      ['pgward (every Bind value)', gwBind.port, gwBind.proc.pid],
      ...(gwBaseline ? [['baseline (shipped policies)', gwBaseline.port, gwBaseline.proc.pid]] : []),
      ...(gwBun ? [['pgward on Bun (shipped policies)', gwBun.port, gwBun.proc.pid]] : []),
      ...(gwBunConn ? [['pgward on Bun (connection rule)', gwBunConn.port, gwBunConn.proc.pid]] : []),
      ...(gwBunBind ? [['pgward on Bun (every Bind value)', gwBunBind.port, gwBunBind.proc.pid]] : []),
      ...(bunFloor ? [['Bun floor', bunFloor.port, bunFloor.proc.pid]] : []),
    ];
    const cpuRows = [];
    lines.push('### pgbench -S (TPS, latency ms p50/p99)', '');
    lines.push(
      '"node floor": a minimal Node.js proxy (`socket.pipe()` both ways, no parsing at all), the ceiling of any proxy built on Node\'s net streams on this machine; the issues\' CPU bars are read against it. "node floor, shared reads" (CPU tables only): the same proxy reading and writing as pgward does with plain TCP sockets (session/shared-reads.ts, session/direct-writes.ts), without any parsing.',
      `Median of ${ROUNDS} interleaved round${ROUNDS === 1 ? '' : 's'} (TPS, p50 and p99 each).`,
      '',
    );
    lines.push(
      '| mode | clients | direct | pgbouncer | node floor | pgward bare | pgward shipped | floor/pgbouncer | bare/pgbouncer | shipped/pgbouncer | bare/floor | shipped/direct |',
    );
    lines.push('|---|---|---|---|---|---|---|---|---|---|---|---|');
    try {
      for (const mode of MODES) {
        // Unmeasured: every proxy runs this mode first (its code paths compiled, its caches
        // filled), so the first measured round of a mode is not the one that pays for it.
        if (WARMUP > 0)
          for (const [name, port] of targets) {
            log(`warm-up: pgbench -S -M ${mode} -c 8 → ${name}`);
            pgbench(port, mode, 8, WARMUP);
          }
        for (const c of CLIENTS) {
          // rounds[i][name]: round i's run against `name`; r[name]: the median of the rounds.
          const rounds = [];
          for (let i = 0; i < ROUNDS; i++) {
            const round = {};
            const order = targets.map((_, k) => targets[(k + i) % targets.length]);
            for (const [name, port, pid] of order) {
              log(`round ${i + 1}/${ROUNDS}: pgbench -S -M ${mode} -c ${c} → ${name}`);
              const cpu0 = pid ? cpuSplit(pid) : null;
              round[name] = pgbench(port, mode, c);
              const cpu1 = pid ? cpuSplit(pid) : null;
              const perTx = (k) =>
                cpu0 && cpu1 ? ((cpu1[k] - cpu0[k]) / round[name].transactions) * 1e6 : NaN;
              round[name].user_us_per_tx = perTx('user');
              round[name].system_us_per_tx = perTx('system');
              round[name].cpu_us_per_tx = round[name].user_us_per_tx + round[name].system_us_per_tx;
              if (round[name].failed) log(`  ${round[name].failed} failed transactions!`);
            }
            rounds.push(round);
          }
          const r = {};
          for (const [name] of targets) {
            const of = (k) => median(rounds.map((x) => x[name][k]));
            r[name] = {
              tps: of('tps'),
              p50: of('p50'),
              p99: of('p99'),
              cpu_us_per_tx: of('cpu_us_per_tx'),
              user_us_per_tx: of('user_us_per_tx'),
              system_us_per_tx: of('system_us_per_tx'),
              failed: rounds.reduce((n, x) => n + x[name].failed, 0),
            };
          }
          cpuRows.push({ mode, c, r, rounds });
          const cell = (x) =>
            `${f1(x.tps)} (${f2(x.p50)}/${f2(x.p99)})${x.failed ? ` ⚠ ${x.failed} failed` : ''}`;
          const D = 'direct';
          const B = 'pgbouncer';
          const FL = 'node floor';
          const W = 'pgward (allow-all)';
          const S = 'pgward (shipped policies)';
          const q = (a, z) => f2(roundRatio(rounds, 'tps', a, z));
          lines.push(
            `| ${mode} | ${c} | ${cell(r[D])} | ${cell(r[B])} | ${cell(r[FL])} | ${cell(r[W])} | ${cell(r[S])} | ${q(FL, B)} | ${q(W, B)} | ${q(S, B)} | ${q(W, FL)} | ${q(S, D)} |`,
          );
        }
      }
      lines.push('', '### CPU of the proxy process per transaction (µs, user + system, all threads)', '');
      const proxies = targets.filter(([, , pid]) => pid).map(([name]) => name);
      lines.push(
        `| mode | clients | ${proxies.join(' | ')} | shipped/floor | connection rule/floor | every Bind value/floor | shipped/floor with shared reads | shipped/pgbouncer${gwBaseline ? ' | shipped/baseline' : ''}${gwBun ? ' | on Bun/node floor | on Bun/Bun floor | on Bun, connection rule/node floor | on Bun, every Bind value/node floor' : ''} |`,
      );
      lines.push(
        `|---|---|${proxies.map(() => '---|').join('')}---|---|---|---|---|${gwBaseline ? '---|' : ''}${gwBun ? '---|---|---|---|' : ''}`,
      );
      for (const { mode, c, r, rounds } of cpuRows) {
        const cpu = (n) => r[n].cpu_us_per_tx;
        // The median of the ratios of each round (see the header comment).
        const q = (a, b) => f2(roundRatio(rounds, 'cpu_us_per_tx', a, b));
        const S = 'pgward (shipped policies)';
        lines.push(
          `| ${mode} | ${c} | ${proxies.map((n) => f1(cpu(n))).join(' | ')} | ${q(S, 'node floor')} | ${q('pgward (connection rule)', 'node floor')} | ${q('pgward (every Bind value)', 'node floor')} | ${q(S, 'node floor, shared reads')} | ${q(S, 'pgbouncer')}${gwBaseline ? ` | ${q(S, 'baseline (shipped policies)')}` : ''}${gwBun ? ` | ${q('pgward on Bun (shipped policies)', 'node floor')} | ${q('pgward on Bun (shipped policies)', 'Bun floor')} | ${q('pgward on Bun (connection rule)', 'node floor')} | ${q('pgward on Bun (every Bind value)', 'node floor')}` : ''} |`,
        );
      }
      lines.push(
        '',
        `Each figure is the median of ${ROUNDS} interleaved round${ROUNDS === 1 ? '' : 's'} (every proxy in turn, the order rotated each round); each ratio is the median of the per-round ratios.`,
      );
      // The same CPU split into user and system time: the system part (the same reads and writes
      // in every proxy) moves with the machine's state and scheduling; the user part is each
      // proxy's own work. A ratio that moved between runs can be read here.
      const split = [
        'pgbouncer',
        'node floor',
        'node floor, shared reads',
        'pgward (shipped policies)',
        'pgward (connection rule)',
      ].filter((n) => proxies.includes(n));
      lines.push(
        '',
        '#### User and system time per transaction (µs, user / system, medians of the rounds)',
        '',
        `| mode | clients | ${split.join(' | ')} | shipped − floor, user | shipped − floor, system |`,
        `|---|---|${split.map(() => '---|').join('')}---|---|`,
      );
      for (const { mode, c, r } of cpuRows) {
        const S = 'pgward (shipped policies)';
        const FL = 'node floor';
        lines.push(
          `| ${mode} | ${c} | ${split.map((n) => `${f1d(r[n].user_us_per_tx)} / ${f1d(r[n].system_us_per_tx)}`).join(' | ')} | ${f1d(r[S].user_us_per_tx - r[FL].user_us_per_tx)} | ${f1d(r[S].system_us_per_tx - r[FL].system_us_per_tx)} |`,
        );
      }
      if (gwBaseline) {
        lines.push(
          '',
          `Baseline: ${baselineRoot} at ${sh('git', ['-C', baselineRoot, 'rev-parse', '--short', 'HEAD']).trim()}.`,
        );
        lines.push(
          '',
          '| mode | clients | baseline TPS | shipped TPS | shipped/baseline |',
          '|---|---|---|---|---|',
          ...cpuRows.map(
            ({ mode, c, r, rounds }) =>
              `| ${mode} | ${c} | ${f1(r['baseline (shipped policies)'].tps)} | ${f1(r['pgward (shipped policies)'].tps)} | ${f2(roundRatio(rounds, 'tps', 'pgward (shipped policies)', 'baseline (shipped policies)'))} |`,
          ),
        );
      }
      // One retry: the keep-alive connection of the readiness check may have been closed by the
      // sidecar minutes ago (a stale pooled socket answers EPIPE once).
      const h = await evalHistogram(gwShipped.adminPort)
        .catch(() => evalHistogram(gwShipped.adminPort))
        .catch((err) => {
          log(
            `the shipped gateway's /metrics did not answer: ${err.cause?.message ?? err.message} (exit ${gwShipped.proc.exitCode}, signal ${gwShipped.proc.signalCode})`,
          );
          return null;
        });
      lines.push('');
      if (h)
        lines.push(
          `Policy evaluations inside the gateway with the shipped policies over all the runs above (its own pgward_policy_eval_seconds histogram, the decision cache included): ${h.evaluations} evaluations, median ≤ ${f2(h.median_at_most_us)} µs (bucket bound), mean ${f2(h.mean_us)} µs, ${(100 * h.share_le_5us).toFixed(2)} % ≤ 5 µs, ${(100 * h.share_le_10us).toFixed(2)} % ≤ 10 µs.`,
        );
    } finally {
      await Promise.all([
        bouncer.stop(),
        gwBare.stop(),
        gwShipped.stop(),
        gwConn.stop(),
        gwBind.stop(),
        floor.stop(),
        sharedFloor.stop(),
        ...(gwBaseline ? [gwBaseline.stop()] : []),
        ...(gwBun ? [gwBun.stop()] : []),
        ...(gwBunConn ? [gwBunConn.stop()] : []),
        ...(gwBunBind ? [gwBunBind.stop()] : []),
        ...(bunFloor ? [bunFloor.stop()] : []),
      ]);
    }
    lines.push('');
  }

  if (!SKIP.has('idle')) {
    log(`idle memory with ${IDLE} connections`);
    const m = await idleMemory(bare);
    lines.push('### Gateway memory per idle client', '');
    lines.push(
      `${m.clients} idle authenticated connections (each ran one query), RSS growth per client; pgward with ${WORKERS} worker${WORKERS === 1 ? '' : 's'}${WORKERS === 2 ? '' : ', and with 2 workers'} (RSS of the primary and every worker). Last column: all the RSS with the clients connected, divided by the clients. Cold: a process that has served one connection. Warm: after the same number of connections came and went (V8's young generation has grown to its working size, a fixed cost).${process.env.NODE_OPTIONS ? ` NODE_OPTIONS=${process.env.NODE_OPTIONS}.` : ''}`,
      '',
    );
    lines.push(
      '| process | cold: RSS KiB before → after | cold per client | warm: RSS KiB before → after | warm per client | warm: RSS / clients |',
    );
    lines.push('|---|---|---|---|---|---|');
    for (const [name, r] of [
      ['pgward (bare policy)', m.pgward],
      ...(WORKERS === 2 ? [] : [['pgward (bare policy), 2 workers', m.pgward_workers2]]),
      ['minimal Node.js pipe proxy', m.floor],
    ]) {
      lines.push(
        `| ${name} | ${f1(r.cold_before_kib)} → ${f1(r.cold_after_kib)} | ${f2(r.cold_per_client_kib)} KiB | ${f1(r.warm_before_kib)} → ${f1(r.warm_after_kib)} | **${f2(r.warm_per_client_kib)} KiB** | ${f2(r.warm_total_per_client_kib)} KiB |`,
      );
    }
    lines.push('');
  }

  if (!SKIP.has('micro')) {
    log('micro-benchmarks');
    const m = micro();
    lines.push('### Micro-benchmarks', '', '```json', JSON.stringify(m, null, 2), '```', '');
  }

  const section = lines.join('\n') + '\n';
  process.stdout.write(section);
  if (!process.env.BENCH_NO_WRITE) {
    const file = path.join(ROOT, 'docs/benchmarks.md');
    const head = fs.existsSync(file)
      ? fs.readFileSync(file, 'utf8')
      : '# Benchmarks\n\nEvery run of `make bench` appends a section here.\n\n';
    fs.writeFileSync(file, head.trimEnd() + '\n\n' + section);
    log(`appended to ${file}`);
  }
  fs.rmSync(tmp, { recursive: true, force: true });
}

main().catch((err) => {
  log(err.stack || String(err));
  process.exit(1);
});
