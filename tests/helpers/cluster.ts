import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { Client } from 'pg';
import { REPO_DIR, TEST_CERTS_DIR } from './certs';

const execFileAsync = promisify(execFile);
const SCRIPT = path.join(REPO_DIR, 'scripts', 'pg-cluster.sh');

/** A throwaway PostgreSQL 15 started by scripts/pg-cluster.sh (roles and pg_hba.conf documented there). */
export interface Cluster {
  readonly host: string;
  readonly port: number;
  readonly dir: string;
  readonly dataDir: string;
  readonly socketDir: string;
  readonly logFile: string;
  readonly tls: boolean;
  /** ca.crt, client.crt/key, gateway.crt/key when started with tls; null otherwise */
  readonly certsDir: string | null;
  /** pg_ctl stop -m fast and remove dir; idempotent */
  stop(): Promise<void>;
}

export interface StartClusterOptions {
  tls?: boolean;
  /** fixed port; default: a free one picked by the script */
  port?: number;
}

/** Database every cluster has; owned by postgres, the test roles hold ALL on its schema public. */
export const CLUSTER_DB = 'pgward_test';
/** Passwords of the cluster roles (trust_user and postgres need none). */
export const CLUSTER_PASSWORDS = {
  md5_user: 'md5pass',
  scram_user: 'scrampass',
  ssl_only_user: 'sslpass',
  readonly: 'readonlypass',
} as const;

const live = new Set<Cluster>();

async function runScript(args: string[], timeoutMs: number): Promise<string> {
  try {
    const { stdout } = await execFileAsync('bash', [SCRIPT, ...args], {
      timeout: timeoutMs,
      killSignal: 'SIGKILL',
    });
    return stdout;
  } catch (err) {
    const e = err as { stderr?: string; killed?: boolean; message?: string };
    const why = e.killed === true ? `killed after ${timeoutMs} ms` : (e.message ?? String(err));
    throw new Error(`pg-cluster.sh ${args.join(' ')} failed (${why}): ${(e.stderr ?? '').trim()}`);
  }
}

function parseStartLine(stdout: string): Omit<Cluster, 'stop'> {
  const line = stdout.trim().split('\n').pop() ?? '';
  let raw: unknown;
  try {
    raw = JSON.parse(line);
  } catch {
    throw new Error(`pg-cluster.sh start printed no JSON line: ${JSON.stringify(stdout)}`);
  }
  const r = raw as Record<string, unknown>;
  const str = (k: string): string => {
    const v = r[k];
    if (typeof v !== 'string' || v === '') throw new Error(`pg-cluster.sh start: bad ${k} in ${line}`);
    return v;
  };
  const port = r.port;
  if (typeof port !== 'number' || !Number.isInteger(port) || port < 1 || port > 65535) {
    throw new Error(`pg-cluster.sh start: bad port in ${line}`);
  }
  if (typeof r.tls !== 'boolean') throw new Error(`pg-cluster.sh start: bad tls in ${line}`);
  return {
    host: str('host'),
    port,
    dir: str('dir'),
    dataDir: str('data_dir'),
    socketDir: str('socket_dir'),
    logFile: str('log_file'),
    tls: r.tls,
    certsDir: r.tls ? str('certs_dir') : null,
  };
}

/**
 * Starts a cluster (about 1 s). Stop it in afterAll; clusters of a test process that dies without
 * stopping are reaped by the next start (the script records process.pid as owner).
 */
export async function startCluster(opts: StartClusterOptions = {}): Promise<Cluster> {
  const args = ['start', '--owner-pid', String(process.pid)];
  if (opts.tls === true) args.push('--tls', '--certs-dir', TEST_CERTS_DIR);
  if (opts.port !== undefined) args.push('--port', String(opts.port));
  const info = parseStartLine(await runScript(args, 90_000));
  let stopping: Promise<void> | undefined;
  const cluster: Cluster = {
    ...info,
    stop() {
      stopping ??= runScript(['stop', info.dir], 60_000).then(
        () => {
          live.delete(cluster);
        },
        (err: unknown) => {
          stopping = undefined;
          throw err;
        },
      );
      return stopping;
    },
  };
  live.add(cluster);
  return cluster;
}

/** Stops every cluster this process started and has not stopped; reports all failures together. */
export async function stopAllClusters(): Promise<void> {
  const results = await Promise.allSettled([...live].map((c) => c.stop()));
  const failures = results.flatMap((r) => (r.status === 'rejected' ? [String(r.reason)] : []));
  if (failures.length > 0) throw new Error(`stopping clusters failed:\n${failures.join('\n')}`);
}

/** The machine's PostgreSQL 15 (trust for the postgres superuser on 127.0.0.1). */
export const LOCAL_PG = { host: '127.0.0.1', port: 5432, user: 'postgres' } as const;
export const LOCAL_TEST_DB = 'pgward_it';

export interface LocalDb {
  host: string;
  port: number;
  user: string;
  database: string;
}

/** Creates database pgward_it on the local server if missing (safe under concurrent callers). */
export async function ensureLocalTestDb(): Promise<LocalDb> {
  const client = new Client({
    ...LOCAL_PG,
    database: 'postgres',
    application_name: 'pgward-test-setup',
    connectionTimeoutMillis: 10_000,
  });
  client.on('error', () => undefined);
  try {
    await client.connect();
  } catch (err) {
    await client.end().catch(() => undefined);
    throw new Error(
      `local PostgreSQL at ${LOCAL_PG.host}:${LOCAL_PG.port} is not reachable as ${LOCAL_PG.user}: ${String(err)}`,
    );
  }
  try {
    const found = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [LOCAL_TEST_DB]);
    if (found.rowCount === 0) {
      try {
        await client.query(`CREATE DATABASE ${LOCAL_TEST_DB}`);
      } catch (err) {
        // 42P04 duplicate_database, or 23505 when a concurrent CREATE DATABASE won the race on pg_database.
        const code = (err as { code?: string }).code;
        if (code !== '42P04' && code !== '23505') throw err;
      }
    }
  } finally {
    await client.end();
  }
  return { ...LOCAL_PG, database: LOCAL_TEST_DB };
}
