/** Shared by the tests of `serve --workers N` and peered replicas. */
import { spawn } from 'node:child_process';
import { Client } from 'pg';
import { LOCAL_PG } from '../helpers/cluster';

export interface Sleeper {
  client: Client;
  processId: number;
  secretKey: number;
  /** Settles when the query ends: the error (57014 when cancelled) or null. */
  done: Promise<{ code: string | null; at: number }>;
}

export async function connectThrough(host: string, port: number): Promise<Client> {
  const c = new Client({
    host,
    port,
    user: LOCAL_PG.user,
    database: 'postgres',
    application_name: 'pgward-scale-test',
  });
  c.on('error', () => undefined);
  await c.connect();
  return c;
}

/** A client through the gateway running pg_sleep(seconds); its key as the client received it. */
export async function startSleeper(host: string, port: number, seconds: number): Promise<Sleeper> {
  const client = await connectThrough(host, port);
  const k = client as unknown as { processID: number; secretKey: number };
  const done = client.query(`SELECT pg_sleep(${seconds})`).then(
    () => ({ code: null, at: Date.now() }),
    (err: { code?: string }) => ({ code: err.code ?? 'error', at: Date.now() }),
  );
  return { client, processId: k.processID, secretKey: k.secretKey, done };
}

/** Waits until `n` backends of this test run pg_sleep (seen from a direct connection). */
export async function waitForSleeping(n: number, timeoutMs = 15_000): Promise<void> {
  const probe = new Client({ ...LOCAL_PG, database: 'postgres' });
  await probe.connect();
  try {
    const until = Date.now() + timeoutMs;
    for (;;) {
      const r = await probe.query<{ n: string }>(
        `SELECT count(*) AS n FROM pg_stat_activity WHERE application_name = 'pgward-scale-test' AND query LIKE 'SELECT pg_sleep%' AND state = 'active'`,
      );
      if (Number(r.rows[0]?.n) >= n) return;
      if (Date.now() > until) throw new Error(`only ${r.rows[0]?.n} of ${n} sleeping`);
      await new Promise((r2) => setTimeout(r2, 50));
    }
  } finally {
    await probe.end();
  }
}

export interface PgbenchRun {
  done: Promise<{ code: number | null; stdout: string; stderr: string }>;
  running(): boolean;
}

/** pgbench against `db` at host:port as the local superuser (`args` before the database name). */
export function pgbench(host: string, port: number, db: string, args: string[]): PgbenchRun {
  const p = spawn('pgbench', [...args, '-h', host, '-p', String(port), '-U', LOCAL_PG.user, db], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  p.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
  p.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  return {
    done: new Promise((resolve) => p.on('close', (code) => resolve({ code, stdout, stderr }))),
    running: () => p.exitCode === null,
  };
}
