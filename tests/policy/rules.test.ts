/**
 * Each shipped rule through the real gateway in front of the local PostgreSQL: the simple
 * protocol (pg and psql), the extended protocol (pg with parameters / a named statement) and
 * inside an explicit transaction, asserting what the client sees and — through a direct
 * connection — that the database did not change.
 */
import fs from 'node:fs';
import path from 'node:path';
import os from 'node:os';
import { buildBundleWithData, startGateway, type RunningGateway } from '../helpers/gateway';
import { runPsql } from '../helpers/psql';
import {
  connectAs,
  expectPolicyError,
  rejection,
  snapshot,
  withDirect,
  type TrackedClient,
  ClientPool,
  policySuite,
} from './policy-helpers';

const DB = 'pgward_policy_rules';
const MARKER = path.join(os.tmpdir(), `pgward-policy-rules-${process.pid}`);

interface DenyCase {
  rule: string;
  user: 'readonly' | 'analyst' | 'app' | 'postgres';
  sql: string;
  reason: string;
  code?: string;
  /** extended protocol with parameters; otherwise the SQL as a named prepared statement */
  params?: { text: string; values: unknown[] };
  /** what to check on disk after the case (files a bypass would have written) */
  files?: string[];
}

const DENY: DenyCase[] = [
  {
    rule: 'read-only: INSERT',
    user: 'readonly',
    sql: 'INSERT INTO t VALUES (100, 1)',
    reason: 'read-only user readonly cannot write to t',
    params: { text: 'INSERT INTO t VALUES ($1, $2)', values: [100, 1] },
  },
  {
    rule: 'read-only: UPDATE with WHERE',
    user: 'analyst',
    sql: 'UPDATE t SET v = v + 1 WHERE id = 1',
    reason: 'read-only user analyst cannot write to t',
    params: { text: 'UPDATE t SET v = v + 1 WHERE id = $1', values: [1] },
  },
  {
    rule: 'read-only: DELETE with WHERE',
    user: 'readonly',
    sql: 'DELETE FROM t WHERE id = 1',
    reason: 'read-only user readonly cannot write to t',
    params: { text: 'DELETE FROM t WHERE id = $1', values: [1] },
  },
  {
    rule: 'read-only: DDL',
    user: 'readonly',
    sql: 'CREATE TABLE ro_new (id int)',
    reason: 'read-only user readonly cannot run CREATE TABLE',
  },
  {
    rule: 'read-only: not read-only (nextval)',
    user: 'readonly',
    sql: "SELECT nextval('s')",
    reason: 'read-only user readonly cannot run SELECT: it is not read-only',
    params: { text: 'SELECT nextval($1)', values: ['s'] },
  },
  {
    rule: 'read-only: role change',
    user: 'readonly',
    sql: 'SET ROLE app',
    reason: 'read-only user readonly cannot change role',
  },
  {
    rule: 'read-only: COPY FROM',
    user: 'analyst',
    sql: 'COPY t FROM STDIN',
    reason: 'read-only user analyst cannot run COPY FROM on t',
  },
  {
    rule: 'read-only: turning read-only mode off',
    user: 'readonly',
    sql: 'SET default_transaction_read_only = off',
    reason: 'read-only user readonly cannot set default_transaction_read_only to off',
  },
  {
    rule: 'DELETE without WHERE',
    user: 'app',
    sql: 'DELETE FROM t',
    reason: 'DELETE without WHERE on t',
    params: { text: 'DELETE FROM t RETURNING $1::int', values: [1] },
  },
  {
    rule: 'UPDATE without WHERE',
    user: 'app',
    sql: 'UPDATE t SET v = 0',
    reason: 'UPDATE without WHERE on t',
    params: { text: 'UPDATE t SET v = $1', values: [0] },
  },
  {
    rule: 'DROP admin-only',
    user: 'app',
    sql: 'DROP TABLE t',
    reason: 'DROP TABLE t is reserved for admins',
  },
  {
    rule: 'TRUNCATE admin-only',
    user: 'app',
    sql: 'TRUNCATE t',
    reason: 'TRUNCATE t is reserved for admins',
  },
  {
    rule: 'ALTER admin-only',
    user: 'app',
    sql: 'ALTER TABLE t ADD COLUMN z int',
    reason: 'ALTER TABLE t is reserved for admins',
  },
  {
    rule: 'DO admin-only',
    user: 'app',
    sql: 'DO $$BEGIN DELETE FROM t; END$$',
    reason: 'DO is reserved for admins',
  },
  {
    rule: 'CREATE FUNCTION admin-only',
    user: 'app',
    sql: "CREATE FUNCTION public.f1() RETURNS int LANGUAGE sql AS 'SELECT 1'",
    reason: 'CREATE FUNCTION is reserved for admins',
  },
  {
    rule: 'GRANT admin-only',
    user: 'app',
    sql: 'GRANT SELECT ON t TO mallory',
    reason: 'GRANT is reserved for admins',
  },
  {
    rule: 'ALTER SYSTEM admin-only (superuser, not admin)',
    user: 'postgres',
    sql: "ALTER SYSTEM SET pgward.policy_it_marker = 'bypassed'",
    reason: 'ALTER SYSTEM is reserved for admins',
  },
  {
    rule: 'LOAD admin-only',
    user: 'postgres',
    sql: "LOAD 'auto_explain'",
    reason: 'LOAD is reserved for admins',
  },
  {
    rule: 'CREATE EXTENSION admin-only',
    user: 'postgres',
    sql: 'CREATE EXTENSION hstore',
    reason: 'CREATE EXTENSION is reserved for admins',
  },
  {
    rule: 'COPY PROGRAM admin-only',
    user: 'postgres',
    sql: `COPY t TO PROGRAM 'touch ${MARKER}-program'`,
    reason: 'COPY ... PROGRAM is reserved for admins',
    files: [`${MARKER}-program`],
  },
  {
    rule: 'COPY server file admin-only',
    user: 'postgres',
    sql: `COPY t TO '${MARKER}-file'`,
    reason: 'COPY with a server-side file is reserved for admins',
    files: [`${MARKER}-file`],
  },
  {
    rule: 'dangerous function',
    user: 'postgres',
    sql: "SELECT pg_read_file('/etc/hostname')",
    reason: 'function pg_read_file() is reserved for admins',
    params: { text: 'SELECT pg_read_file($1)', values: ['/etc/hostname'] },
  },
  {
    rule: 'role change admin-only',
    user: 'app',
    sql: 'SET ROLE postgres',
    reason: 'role change (SET ROLE) is reserved for admins',
  },
  { rule: 'unparsable SQL', user: 'app', sql: 'SELEC 1', reason: 'SQL could not be parsed', code: '42601' },
];

let stmtSeq = 0;

const pool = new ClientPool(() => suite.gw, DB);
const clientFor = (user: string): Promise<TrackedClient> => pool.as(user);

const suite = policySuite(DB, {
  gateway: { config: { log: { level: 'info' } } },
  after: async () => {
    await pool.endAll();
    // A bypass of ALTER SYSTEM would have left this behind; never leave it in the shared server.
    await withDirect('postgres', (c) => c.query('ALTER SYSTEM RESET pgward.policy_it_marker')).catch(
      () => undefined,
    );
  },
});

// A failed assertion must not leave a shared client inside a transaction for the next case.
afterEach(async () => {
  await pool.rollbackOpen();
});

describe.each(DENY)('$rule: $user `$sql`', (tc) => {
  let before: Record<string, unknown>;
  beforeAll(async () => {
    before = await snapshot(DB);
  });
  afterEach(async () => {
    expect(await snapshot(DB)).toEqual(before);
    for (const f of tc.files ?? []) expect(fs.existsSync(f)).toBe(false);
  });

  test('simple protocol (pg): policy error, session usable, status I', async () => {
    const c = await clientFor(tc.user);
    const err = await rejection(c.client.query(tc.sql));
    expectPolicyError(err, tc.reason, tc.code);
    expect(err.severity).toBe('ERROR');
    expect(await c.status()).toBe('I');
    expect((await c.client.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
  });

  test('simple protocol (psql)', async () => {
    const r = await runPsql({
      host: suite.gw.host,
      port: suite.gw.port,
      user: tc.user,
      db: DB,
      args: ['-v', 'VERBOSITY=verbose', '-c', tc.sql, '-c', 'SELECT 42'],
    });
    expect(r.stderr).toContain(`ERROR:  ${tc.code ?? '42501'}: permission denied by policy: ${tc.reason}`);
    expect(r.stderr).toMatch(/DETAIL: .*Decision /);
    expect(r.stdout).toContain('42');
  });

  test('extended protocol (pg, parameters or a named statement)', async () => {
    const c = await clientFor(tc.user);
    const q = tc.params
      ? { text: tc.params.text, values: tc.params.values }
      : { name: `rules_stmt_${++stmtSeq}`, text: tc.sql };
    const err = await rejection(c.client.query(q));
    expectPolicyError(err, tc.reason, tc.code);
    expect(await c.status()).toBe('I');
    expect((await c.client.query({ text: 'SELECT $1::int AS n', values: [7] })).rows).toEqual([{ n: 7 }]);
  });

  test('inside an explicit transaction: block fails (E), 25P02 until ROLLBACK, earlier effects undone', async () => {
    const c = await clientFor(tc.user);
    const writer = tc.user === 'app' || tc.user === 'postgres';
    await c.client.query('BEGIN');
    await c.client.query("SET statement_timeout = '7s'");
    if (writer) await c.client.query('INSERT INTO t VALUES (500, 5)');
    expect(await c.status()).toBe('T');
    const err = await rejection(c.client.query(tc.sql));
    expectPolicyError(err, tc.reason, tc.code);
    expect(await c.status()).toBe('E');
    const aborted = await rejection(c.client.query('SELECT 1'));
    expect(aborted.code).toBe('25P02');
    expect(aborted.message).toContain('current transaction is aborted');
    expect(await c.status()).toBe('E');
    await c.client.query('ROLLBACK');
    expect(await c.status()).toBe('I');
    expect((await c.client.query('SHOW statement_timeout')).rows[0].statement_timeout).not.toBe('7s');
    const n = await withDirect(DB, (d) => d.query('SELECT count(*)::int AS n FROM t WHERE id = 500'));
    expect(n.rows[0].n).toBe(0);
  });
});

describe('allowed statements', () => {
  test('read-only user reads, in both protocols and in a transaction', async () => {
    const c = await clientFor('readonly');
    expect((await c.client.query('SELECT count(*)::int AS n FROM t')).rows).toEqual([{ n: 10 }]);
    expect((await c.client.query({ text: 'SELECT v FROM t WHERE id = $1', values: [3] })).rows).toEqual([
      { v: 3 },
    ]);
    await c.client.query('BEGIN');
    expect((await c.client.query('SELECT count(*)::int AS n FROM t')).rows).toEqual([{ n: 10 }]);
    await c.client.query('COMMIT');
    expect(await c.status()).toBe('I');
    const r = await runPsql({
      host: suite.gw.host,
      port: suite.gw.port,
      user: 'readonly',
      db: DB,
      args: ['-c', 'COPY t TO STDOUT'],
    });
    expect(r.stdout.trim().split('\n')).toHaveLength(10);
  });

  test('an ordinary user writes with WHERE; the effect is visible directly', async () => {
    const c = await clientFor('app');
    await c.client.query('INSERT INTO t VALUES (700, 7)');
    await c.client.query({ text: 'UPDATE t SET v = $1 WHERE id = $2', values: [70, 700] });
    const r = await withDirect(DB, (d) => d.query('SELECT v FROM t WHERE id = 700'));
    expect(r.rows).toEqual([{ v: 70 }]);
    await c.client.query('DELETE FROM t WHERE id = 700');
    expect((await withDirect(DB, (d) => d.query('SELECT 1 FROM t WHERE id = 700'))).rowCount).toBe(0);
  });

  test('sensitive table: the query succeeds and an alert is logged with the decision id', async () => {
    const c = await clientFor('readonly');
    const r = await c.client.query('SELECT number FROM public.credit_cards ORDER BY id');
    expect(r.rows).toHaveLength(2);
    const alert = await suite.gw.waitForLog(
      (l) => l.kind === 'alert' && l.sql === 'SELECT number FROM public.credit_cards ORDER BY id',
      5000,
    );
    expect(alert.alerts).toEqual([
      {
        rule: 'sensitive_table',
        severity: 'medium',
        message: expect.stringContaining('public.credit_cards'),
      },
    ]);
    expect(typeof alert.decision_id).toBe('string');
    expect((alert.connection as { user: string }).user).toBe('readonly');

    const app = await clientFor('app');
    const u = await app.client.query({
      text: 'UPDATE public.users SET name = name WHERE id = $1',
      values: [1],
    });
    expect(u.rowCount).toBe(1);
    const w = await suite.gw.waitForLog(
      (l) => l.kind === 'alert' && l.sql === 'UPDATE public.users SET name = name WHERE id = $1',
      5000,
    );
    expect(w.alerts).toEqual([
      { rule: 'sensitive_table', severity: 'high', message: expect.stringContaining('public.users') },
    ]);
  });
});

describe('break-glass and admin principals (bundle with break_glass: [app], admins: [postgres])', () => {
  let gw2: RunningGateway;
  beforeAll(async () => {
    const bundle = await buildBundleWithData({ break_glass: ['app'], admins: ['postgres'] });
    gw2 = await startGateway({ bundle });
  }, 120_000);
  afterAll(async () => {
    await gw2?.stop();
  });

  test('break-glass DELETE without WHERE runs (rolled back here) with a break_glass alert; DROP stays admin-only', async () => {
    const c = await connectAs(gw2, 'app', DB);
    try {
      await c.client.query('BEGIN');
      expect((await c.client.query('DELETE FROM t')).rowCount).toBe(10);
      await c.client.query('ROLLBACK');
      await gw2
        .waitForLog((l) => l.kind === 'alert' && l.sql === 'DELETE FROM t', 5000)
        .then((l) =>
          expect(l.alerts).toEqual([expect.objectContaining({ rule: 'break_glass', severity: 'high' })]),
        );
      expectPolicyError(
        await rejection(c.client.query('DROP TABLE t')),
        'DROP TABLE t is reserved for admins',
      );
    } finally {
      await c.end();
    }
    const n = await withDirect(DB, (d) => d.query('SELECT count(*)::int AS n FROM t'));
    expect(n.rows[0].n).toBe(10);
  });

  test('admin TRUNCATE runs (rolled back here) with an admin_override alert', async () => {
    const c = await connectAs(gw2, 'postgres', DB);
    try {
      await c.client.query('BEGIN');
      await c.client.query('TRUNCATE t');
      expect((await c.client.query('SELECT count(*)::int AS n FROM t')).rows[0].n).toBe(0);
      await c.client.query('ROLLBACK');
      await gw2
        .waitForLog((l) => l.kind === 'alert' && l.sql === 'TRUNCATE t', 5000)
        .then((l) => expect(l.alerts).toEqual([expect.objectContaining({ rule: 'admin_override' })]));
    } finally {
      await c.end();
    }
    const n = await withDirect(DB, (d) => d.query('SELECT count(*)::int AS n FROM t'));
    expect(n.rows[0].n).toBe(10);
  });
});
