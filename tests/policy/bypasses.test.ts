/**
 * Every SQL-level bypass of THREATS.md ("SQL-level bypasses"), each in its own test, against the
 * shipped policies through the real gateway. Superuser-only tricks are tried as `postgres` — a
 * superuser on the server but not an admin in the shipped data — so the server would really run
 * them: only pgward stands in the way. Every test checks through a direct connection that the
 * database (and the file system, and the victim backend) did not change.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Client } from 'pg';
import {
  encodeBind,
  encodeClose,
  encodeExecute,
  encodeFunctionCall,
  encodeParse,
  encodeQuery,
  encodeSync,
} from '../../gateway/src/protocol';
import {
  direct,
  expectPolicyError,
  rejection,
  snapshot,
  withDirect,
  type TrackedClient,
  ClientPool,
  policySuite,
} from './policy-helpers';
import { RawClient, errorOf, statusOf, type BackendMsg } from './raw-client';

const DB = 'pgward_policy_bypass';
const TMP = fs.mkdtempSync(path.join(os.tmpdir(), 'pgward-policy-bypass-'));
let victim: Client;
let victimPid: number;
let seq = 0;

const pool = new ClientPool(() => suite.gw, DB);
const as = (user: string): Promise<TrackedClient> => pool.as(user);

const suite = policySuite(DB, {
  before: async () => {
    fs.chmodSync(TMP, 0o777);
    await withDirect(DB, (c) =>
      c.query(`
      CREATE EXTENSION dblink;
      CREATE FUNCTION public.trg() RETURNS trigger LANGUAGE plpgsql AS 'BEGIN RETURN NEW; END';
      GRANT EXECUTE ON FUNCTION public.trg() TO app;
    `),
    );
    victim = await direct(DB);
    victimPid = (await victim.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
  },
  after: async () => {
    await pool.endAll();
    await victim?.end().catch(() => undefined);
    await withDirect('postgres', (c) => c.query('ALTER SYSTEM RESET pgward.bypass_marker')).catch(
      () => undefined,
    );
    fs.rmSync(TMP, { recursive: true, force: true });
  },
});

afterEach(async () => {
  await pool.rollbackOpen();
  // A bypass that got through must not change what the next test starts from.
  await withDirect(DB, (c) =>
    c.query('DELETE FROM t; INSERT INTO t SELECT g, g FROM generate_series(1, 10) g'),
  );
});

async function victimAlive(): Promise<void> {
  expect((await victim.query('SELECT 1 AS ok')).rows).toEqual([{ ok: 1 }]);
}

/**
 * `sql` is denied for `user` in the simple protocol and — unless it holds several statements —
 * as a named prepared statement; the session stays usable; the database is unchanged.
 */
async function expectDenied(
  user: string,
  sql: string,
  reason: string,
  opts: { code?: string; extended?: boolean } = {},
): Promise<void> {
  const before = await snapshot(DB);
  const c = await as(user);
  expectPolicyError(await rejection(c.client.query(sql)), reason, opts.code);
  if (opts.extended !== false) {
    expectPolicyError(
      await rejection(c.client.query({ name: `bypass_${++seq}`, text: sql })),
      reason,
      opts.code,
    );
  }
  expect((await c.client.query('SELECT current_user AS u')).rows).toEqual([{ u: user }]);
  expect(await c.status()).toBe('I');
  expect(await snapshot(DB)).toEqual(before);
}

const types = (ms: BackendMsg[]): string => ms.map((m) => m.type).join('');

async function raw(user: string): Promise<RawClient> {
  const { client, startup } = await RawClient.connect(suite.gw.host, suite.gw.port, { user, database: DB });
  expect(startup.at(-1)?.type).toBe('Z');
  return client;
}

describe('several statements in one Query', () => {
  test('SELECT 1; DROP TABLE t is judged whole', async () => {
    await expectDenied('app', 'SELECT 1; DROP TABLE t', 'DROP TABLE t is reserved for admins', {
      extended: false,
    });
  });
  test('an allowed write before a denied statement in one Query does not happen either', async () => {
    await expectDenied('app', 'INSERT INTO t VALUES (900, 9); DELETE FROM t', 'DELETE without WHERE on t', {
      extended: false,
    });
  });
});

describe('writes disguised as reads', () => {
  test('data-modifying CTE, read-only user', async () => {
    await expectDenied(
      'readonly',
      'WITH d AS (DELETE FROM t WHERE id = 1 RETURNING *) SELECT * FROM d',
      'read-only user readonly cannot write to t',
    );
  });
  test('data-modifying CTE without WHERE, ordinary user', async () => {
    await expectDenied(
      'app',
      'WITH d AS (DELETE FROM t RETURNING *) SELECT count(*) FROM d',
      'without WHERE on t',
    );
  });
  test('SELECT … INTO, read-only user', async () => {
    await expectDenied(
      'readonly',
      'SELECT * INTO t_copy FROM t',
      'read-only user readonly cannot run SELECT INTO on t_copy',
    );
  });
  test('EXPLAIN ANALYZE DELETE FROM t (no WHERE), ordinary user', async () => {
    await expectDenied('app', 'EXPLAIN ANALYZE DELETE FROM t', 'without WHERE on t');
  });
  test('EXPLAIN ANALYZE DELETE, read-only user', async () => {
    await expectDenied(
      'readonly',
      'EXPLAIN ANALYZE DELETE FROM t WHERE id = 1',
      'read-only user readonly cannot write to t',
    );
  });
  test('COPY (DELETE FROM t RETURNING *) TO STDOUT, ordinary user', async () => {
    await expectDenied('app', 'COPY (DELETE FROM t RETURNING *) TO STDOUT', 'without WHERE on t');
  });
  test('COPY (DELETE … RETURNING) TO STDOUT, read-only user', async () => {
    await expectDenied(
      'readonly',
      'COPY (DELETE FROM t WHERE id = 1 RETURNING *) TO STDOUT',
      'read-only user readonly cannot write to t',
    );
  });
  test('CREATE TABLE AS, read-only user', async () => {
    await expectDenied(
      'readonly',
      'CREATE TABLE t3 AS SELECT * FROM t',
      'read-only user readonly cannot run CREATE TABLE AS on t3',
    );
  });
  test('MERGE and INSERT … ON CONFLICT, read-only user', async () => {
    await expectDenied(
      'readonly',
      'MERGE INTO t USING (SELECT 1 AS id) s ON t.id = s.id WHEN MATCHED THEN DELETE',
      'read-only user readonly cannot write to t',
    );
    await expectDenied(
      'readonly',
      'INSERT INTO t VALUES (1, 1) ON CONFLICT (id) DO UPDATE SET v = 0',
      'read-only user readonly cannot write to t',
    );
  });
});

describe('side effects inside expressions', () => {
  test('pg_terminate_backend (superuser, not admin): the victim backend survives', async () => {
    await expectDenied(
      'postgres',
      `SELECT pg_terminate_backend(${victimPid})`,
      'function pg_terminate_backend() is reserved for admins',
    );
    const c = await as('postgres');
    expectPolicyError(
      await rejection(
        c.client.query({
          text: 'SELECT 1 FROM t WHERE pg_terminate_backend($1) LIMIT 1',
          values: [victimPid],
        }),
      ),
      'function pg_terminate_backend() is reserved for admins',
    );
    await victimAlive();
  });
  test('lo_import: no large object created', async () => {
    await expectDenied(
      'postgres',
      "SELECT lo_import('/etc/hostname')",
      'function lo_import() is reserved for admins',
    );
  });
  test('pg_read_file, plain', async () => {
    await expectDenied(
      'postgres',
      "SELECT pg_read_file('/etc/hostname')",
      'function pg_read_file() is reserved for admins',
    );
  });
  test('pg_read_file, schema-qualified', async () => {
    await expectDenied(
      'postgres',
      "SELECT pg_catalog.pg_read_file('/etc/hostname')",
      'function pg_catalog.pg_read_file() is reserved for admins',
    );
  });
  test('pg_read_file, quoted', async () => {
    await expectDenied(
      'postgres',
      `SELECT "pg_read_file"('/etc/hostname')`,
      'pg_read_file() is reserved for admins',
    );
  });
  test('pg_read_file, U& identifier', async () => {
    await expectDenied(
      'postgres',
      `SELECT U&"pg\\005fread_file"('/etc/hostname')`,
      'pg_read_file() is reserved for admins',
    );
  });
  test('pg_read_file in FROM, quoted upper-case schema', async () => {
    await expectDenied(
      'postgres',
      `SELECT * FROM "pg_catalog".pg_read_file('/etc/hostname')`,
      'pg_read_file() is reserved for admins',
    );
  });
  test('dblink_exec running a DELETE through a second connection', async () => {
    await expectDenied(
      'postgres',
      `SELECT dblink_exec('host=127.0.0.1 port=5432 user=postgres dbname=${DB}', 'DELETE FROM t')`,
      'function dblink_exec() is reserved for admins',
    );
  });
  test('query_to_xml running SQL hidden in a string', async () => {
    await expectDenied(
      'app',
      `SELECT query_to_xml('WITH d AS (DELETE FROM t RETURNING 1) SELECT * FROM d', true, true, '')`,
      'function query_to_xml() is reserved for admins',
    );
  });
  test("set_config('role', …)", async () => {
    await expectDenied('app', "SELECT set_config('role', 'postgres', false)", 'role change');
    await expectDenied('app', "SELECT pg_catalog.set_config('role', 'postgres', false)", 'role change');
  });
});

describe('role changes', () => {
  test('SET ROLE', async () => {
    await expectDenied('app', 'SET ROLE postgres', 'role change (SET ROLE) is reserved for admins');
  });
  test('SET SESSION AUTHORIZATION (superuser, not admin)', async () => {
    await expectDenied(
      'postgres',
      'SET SESSION AUTHORIZATION app',
      'role change (SET SESSION AUTHORIZATION) is reserved for admins',
    );
  });
  test('RESET ROLE', async () => {
    await expectDenied('app', 'RESET ROLE', 'role change (RESET ROLE) is reserved for admins');
  });
  test('read-only user: SET ROLE', async () => {
    await expectDenied('readonly', 'SET ROLE app', 'read-only user readonly cannot change role');
  });
});

describe('prepared statements', () => {
  test('PREPARE p AS DELETE FROM t, then EXECUTE p', async () => {
    const before = await snapshot(DB);
    const c = await as('app');
    expectPolicyError(
      await rejection(c.client.query('PREPARE pdel AS DELETE FROM t')),
      'DELETE without WHERE on t',
    );
    const err = await rejection(c.client.query('EXECUTE pdel'));
    expect(err.message).toMatch(/^permission denied by policy: |prepared statement "pdel" does not exist/);
    expect(await snapshot(DB)).toEqual(before);
  });

  test('PREPARE p AS SELECT, DEALLOCATE p, PREPARE p AS DELETE (denied), EXECUTE p runs nothing', async () => {
    const before = await snapshot(DB);
    const c = await as('app');
    await c.client.query('PREPARE p2 AS SELECT 1 AS one');
    await c.client.query('DEALLOCATE p2');
    expectPolicyError(
      await rejection(c.client.query('PREPARE p2 AS DELETE FROM t')),
      'DELETE without WHERE on t',
    );
    const err = await rejection(c.client.query('EXECUTE p2'));
    expect(err.message).toMatch(/^permission denied by policy: |prepared statement "p2" does not exist/);
    expect(await snapshot(DB)).toEqual(before);
  });

  test('PREPARE p AS SELECT, PREPARE p AS DELETE (denied): EXECUTE p still runs the SELECT', async () => {
    const before = await snapshot(DB);
    const c = await as('app');
    await c.client.query('PREPARE p3 AS SELECT 1 AS one');
    expectPolicyError(
      await rejection(c.client.query('PREPARE p3 AS DELETE FROM t')),
      'DELETE without WHERE on t',
    );
    expect((await c.client.query('EXECUTE p3')).rows).toEqual([{ one: 1 }]);
    await c.client.query('DEALLOCATE p3');
    expect(await snapshot(DB)).toEqual(before);
  });

  test('PREPARE of a denied statement, then Bind of that name in the extended protocol', async () => {
    const c = await raw('app');
    try {
      c.send(encodeQuery('PREPARE q1 AS DELETE FROM t'));
      const ms = await c.readUntilReady();
      expect(types(ms)).toBe('EZ');
      c.send(encodeBind('', 'q1', []), encodeExecute(''), encodeSync());
      const b = await c.readUntilReady();
      expect(types(b)).toBe('EZ');
      // The server has no q1 (the PREPARE never ran): the client gets PostgreSQL's own error.
      expect(errorOf(b[0]!)).toMatchObject({
        code: '26000',
        message: 'prepared statement "q1" does not exist',
      });
    } finally {
      c.close();
    }
    expect((await withDirect(DB, (d) => d.query('SELECT count(*)::int AS n FROM t'))).rows[0].n).toBe(10);
  });

  test('extended-protocol statement name reuse: Parse s1 SELECT, Close s1, Parse s1 DELETE (denied), Bind s1', async () => {
    const before = await snapshot(DB);
    const c = await raw('app');
    try {
      c.send(encodeParse('s1', 'SELECT 1'), encodeSync());
      expect(types(await c.readUntilReady())).toBe('1Z');
      c.send(encodeClose('S', 's1'), encodeSync());
      expect(types(await c.readUntilReady())).toBe('3Z');
      c.send(encodeParse('s1', 'DELETE FROM t'), encodeSync());
      const denied = await c.readUntilReady();
      expect(types(denied)).toBe('EZ');
      expect(errorOf(denied[0]!).message).toBe('permission denied by policy: DELETE without WHERE on t');
      c.send(encodeBind('', 's1', []), encodeExecute(''), encodeSync());
      const b = await c.readUntilReady();
      expect(types(b)).toBe('EZ');
      expect(['26000', '42501', '42601']).toContain(errorOf(b[0]!).code);
      // SQL-level EXECUTE of the protocol-level name (they share one namespace on the server).
      c.send(encodeQuery('EXECUTE s1'));
      const e = await c.readUntilReady();
      expect(types(e)).toBe('EZ');
    } finally {
      c.close();
    }
    expect(await snapshot(DB)).toEqual(before);
  });
});

describe('utilities reserved for admins', () => {
  test('DO block', async () => {
    await expectDenied('app', 'DO $$BEGIN DELETE FROM t; END$$', 'DO is reserved for admins');
  });
  test('CREATE FUNCTION', async () => {
    await expectDenied(
      'app',
      "CREATE FUNCTION public.evil() RETURNS void LANGUAGE sql AS 'DELETE FROM public.t'",
      'CREATE FUNCTION is reserved for admins',
    );
  });
  test('CREATE RULE (app owns t: the server would accept it)', async () => {
    await expectDenied(
      'app',
      'CREATE RULE r AS ON INSERT TO t DO INSTEAD DELETE FROM t WHERE id < 0',
      'CREATE RULE is reserved for admins',
    );
  });
  test('CREATE TRIGGER (app owns t: the server would accept it)', async () => {
    await expectDenied(
      'app',
      'CREATE TRIGGER tr BEFORE INSERT ON t FOR EACH ROW EXECUTE FUNCTION public.trg()',
      'CREATE TRIGGER is reserved for admins',
    );
  });
  test('ALTER SYSTEM (superuser, not admin): postgresql.auto.conf untouched', async () => {
    await expectDenied(
      'postgres',
      "ALTER SYSTEM SET pgward.bypass_marker = 'bypassed'",
      'ALTER SYSTEM is reserved for admins',
    );
  });
  test('LOAD', async () => {
    await expectDenied('postgres', "LOAD 'auto_explain'", 'LOAD is reserved for admins');
  });
  test('CREATE EXTENSION', async () => {
    await expectDenied('postgres', 'CREATE EXTENSION hstore', 'CREATE EXTENSION is reserved for admins');
  });
  test('COPY … TO PROGRAM: the program never runs', async () => {
    const marker = path.join(TMP, 'program-ran');
    await expectDenied(
      'postgres',
      `COPY t TO PROGRAM 'touch ${marker}'`,
      'COPY ... PROGRAM is reserved for admins',
    );
    await expectDenied(
      'postgres',
      `COPY t FROM PROGRAM 'touch ${marker}'`,
      'COPY ... PROGRAM is reserved for admins',
    );
    expect(fs.existsSync(marker)).toBe(false);
  });
  test("COPY … TO 'file': no file written", async () => {
    const out = path.join(TMP, 'copy-out.csv');
    await expectDenied(
      'postgres',
      `COPY t TO '${out}'`,
      'COPY with a server-side file is reserved for admins',
    );
    expect(fs.existsSync(out)).toBe(false);
  });
  test("COPY … FROM 'file': no row loaded", async () => {
    const input = path.join(TMP, 'copy-in.tsv');
    fs.writeFileSync(input, '3000\t0\n', { mode: 0o644 });
    await expectDenied(
      'postgres',
      `COPY t FROM '${input}'`,
      'COPY with a server-side file is reserved for admins',
    );
  });
});

describe('fastpath FunctionCall by OID', () => {
  test.each(['app', 'postgres'])(
    'pg_terminate_backend by OID as %s: ErrorResponse then ReadyForQuery, victim alive',
    async (user) => {
      // PostgreSQL 14+: pg_terminate_backend(pid integer, timeout bigint DEFAULT 0)
      const oid = (
        await withDirect(DB, (d) =>
          d.query("SELECT 'pg_terminate_backend(int, bigint)'::regprocedure::oid AS oid"),
        )
      ).rows[0].oid as number;
      const pid = Buffer.alloc(4);
      pid.writeInt32BE(victimPid);
      const c = await raw(user);
      try {
        c.send(
          encodeFunctionCall(
            Number(oid),
            [
              { format: 1, value: pid },
              { format: 1, value: Buffer.alloc(8) },
            ],
            1,
          ),
        );
        const ms = await c.readUntilReady();
        expect(types(ms)).toBe('EZ');
        expect(errorOf(ms[0]!)).toMatchObject({
          severity: 'ERROR',
          code: '42501',
          message: `permission denied by policy: fastpath FunctionCall (function OID ${oid}) is reserved for admins`,
        });
        expect(statusOf(ms[1]!)).toBe('I');
        c.send(encodeQuery('SELECT 1'));
        expect(types(await c.readUntilReady())).toBe('TDCZ');
      } finally {
        c.close();
      }
      await victimAlive();
    },
  );
});

describe('SQL that does not parse', () => {
  test('SELEC 1 is denied by policy (42601, the message says so)', async () => {
    await expectDenied('app', 'SELEC 1', 'SQL could not be parsed: syntax error at or near "SELEC"', {
      code: '42601',
    });
  });
  test('garbage after a valid statement', async () => {
    await expectDenied('app', 'SELECT 1; DELETE FROM t WHERE', 'SQL could not be parsed', {
      code: '42601',
      extended: false,
    });
  });
});

describe('NUL bytes inside SQL text', () => {
  test('a Parse whose query string holds a NUL: FATAL 08P01, closed, nothing ran', async () => {
    const before = await snapshot(DB);
    const c = await raw('app');
    // Parse: name "", query "SELECT 1\0DROP TABLE t", 0 parameter types — the NUL ends the query
    // string early, so what follows is not a valid Parse body.
    const body = Buffer.concat([Buffer.from('\0SELECT 1\0DROP TABLE t\0', 'latin1'), Buffer.from([0, 0])]);
    const frame = Buffer.alloc(5 + body.length);
    frame.write('P', 0, 'latin1');
    frame.writeInt32BE(4 + body.length, 1);
    body.copy(frame, 5);
    c.send(frame, encodeSync());
    const ms = await c.readToClose(5000);
    expect(c.closed).toBe(true);
    const fatal = ms.find((m) => m.type === 'E');
    expect(fatal && errorOf(fatal)).toMatchObject({ severity: 'FATAL', code: '08P01' });
    expect(ms.some((m) => m.type === '1')).toBe(false);
    expect(await snapshot(DB)).toEqual(before);
  });

  test('a Query whose text holds a NUL: FATAL 08P01, closed, nothing ran', async () => {
    const before = await snapshot(DB);
    const c = await raw('app');
    const body = Buffer.from('SELECT 1\0DROP TABLE t\0', 'latin1');
    const frame = Buffer.alloc(5 + body.length);
    frame.write('Q', 0, 'latin1');
    frame.writeInt32BE(4 + body.length, 1);
    body.copy(frame, 5);
    c.send(frame);
    const ms = await c.readToClose(5000);
    expect(c.closed).toBe(true);
    const fatal = ms.find((m) => m.type === 'E');
    expect(fatal && errorOf(fatal)).toMatchObject({ severity: 'FATAL', code: '08P01' });
    expect(await snapshot(DB)).toEqual(before);
  });
});
