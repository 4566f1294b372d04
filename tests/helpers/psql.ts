import { spawn } from 'node:child_process';

export interface ProcessResult {
  /** exit code; null when the process was killed by a signal */
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  /** written to stdin, which is then closed */
  input?: string;
  /** merged over the cleaned environment */
  env?: NodeJS.ProcessEnv;
  /** SIGKILL after this long and reject (default 60 s) */
  timeoutMs?: number;
}

export interface PsqlOptions extends RunOptions {
  host: string;
  port: number;
  user: string;
  db: string;
  password?: string;
  /** libpq sslmode: disable | allow | prefer | require | verify-ca | verify-full */
  sslmode?: string;
  sslrootcert?: string;
  sslcert?: string;
  sslkey?: string;
  /** extra psql arguments, e.g. ['-Atc', 'select 1'] */
  args?: string[];
}

const DEFAULT_TIMEOUT_MS = 60_000;

/**
 * The inherited environment without libpq's PG* variables (a developer's PGHOST, PGOPTIONS or
 * PGSERVICE must not leak into a test), without ~/.pgpass (PGPASSFILE points at a missing file), with an application name set.
 */
function cleanEnv(appName: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (!key.startsWith('PG')) env[key] = value;
  }
  env.PGPASSFILE = '/nonexistent/pgward-no-pgpass'; // a missing file is skipped silently
  env.PGAPPNAME = appName;
  env.PGCONNECT_TIMEOUT = '10';
  return env;
}

/** Spawns `command args`, collects stdout/stderr; resolves on exit, rejects on spawn failure or timeout. */
export function runProcess(command: string, args: string[], opts: RunOptions = {}): Promise<ProcessResult> {
  const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { env: opts.env ?? process.env, stdio: ['pipe', 'pipe', 'pipe'] });
    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    timer.unref();
    child.stdout.on('data', (chunk: Buffer) => stdout.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => stderr.push(chunk));
    // EPIPE when the child exits before reading all input is not the caller's error.
    child.stdin.on('error', () => undefined);
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(new Error(`${command}: ${err.message}`));
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      const result: ProcessResult = {
        code,
        signal,
        stdout: Buffer.concat(stdout).toString('utf8'),
        stderr: Buffer.concat(stderr).toString('utf8'),
      };
      if (timedOut) {
        reject(
          new Error(`${command} ${args.join(' ')} timed out after ${timeoutMs} ms; stderr: ${result.stderr}`),
        );
      } else {
        resolve(result);
      }
    });
    child.stdin.end(opts.input ?? '');
  });
}

/**
 * psql against host:port as user/db: `-X` (no .psqlrc), `-q`, `-w` (never prompt), `-v ON_ERROR_STOP=0`,
 * SQL from `input` on stdin and/or `args` (e.g. `-Atc`). PGPASSWORD/PGSSLMODE/... come only from opts.
 * Exit code 2 means the connection failed (server error text in stderr), 3 an error with ON_ERROR_STOP.
 */
export function runPsql(opts: PsqlOptions): Promise<ProcessResult> {
  const env = cleanEnv('pgward-test-psql');
  if (opts.password !== undefined) env.PGPASSWORD = opts.password;
  if (opts.sslmode !== undefined) env.PGSSLMODE = opts.sslmode;
  if (opts.sslrootcert !== undefined) env.PGSSLROOTCERT = opts.sslrootcert;
  if (opts.sslcert !== undefined) env.PGSSLCERT = opts.sslcert;
  if (opts.sslkey !== undefined) env.PGSSLKEY = opts.sslkey;
  Object.assign(env, opts.env);
  const args = [
    '-X',
    '-q',
    '-w',
    '-v',
    'ON_ERROR_STOP=0',
    '-h',
    opts.host,
    '-p',
    String(opts.port),
    '-U',
    opts.user,
    '-d',
    opts.db,
    ...(opts.args ?? []),
  ];
  const run: RunOptions = { env };
  if (opts.input !== undefined) run.input = opts.input;
  if (opts.timeoutMs !== undefined) run.timeoutMs = opts.timeoutMs;
  return runProcess('psql', args, run);
}

/** pgbench with `args`, the cleaned environment plus `env` (set PGPASSWORD there), PGAPPNAME set. */
export function runPgbench(
  args: string[],
  env: NodeJS.ProcessEnv = {},
  opts: { timeoutMs?: number } = {},
): Promise<ProcessResult> {
  const run: RunOptions = { env: { ...cleanEnv('pgward-test-pgbench'), ...env } };
  if (opts.timeoutMs !== undefined) run.timeoutMs = opts.timeoutMs;
  return runProcess('pgbench', args, run);
}
