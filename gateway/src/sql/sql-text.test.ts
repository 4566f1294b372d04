import { createClassifier } from './cache';
import { classify, initSqlParser } from './classify';
import type { StatementInfo } from './types';

beforeAll(async () => {
  await initSqlParser();
});

function one(sql: string): StatementInfo {
  const c = classify(sql);
  expect(c.parse_error).toBeNull();
  expect(c.statements).toHaveLength(1);
  return c.statements[0] as StatementInfo;
}

describe('SQL run from a string argument', () => {
  it('ts_stat with set_config inside: the setting and the read-only change are the caller’s', () => {
    const s = one(
      "SELECT ts_stat('SELECT set_config(''default_transaction_read_only'',''off'',false)::tsvector')",
    );
    expect(s).toMatchObject({
      read_only: false,
      functions: ['ts_stat', 'set_config'],
      settings: [{ name: 'default_transaction_read_only', value: 'off', local: false, via: 'set_config' }],
      transaction: { kind: 'SET_SESSION_CHARACTERISTICS', mode: 'read_write' },
      sql_text_calls: [{ function: 'ts_stat', classified: true }],
    });
  });

  it('ts_stat in FROM with set_config(role): a role change', () => {
    const s = one(
      "SELECT * FROM pg_catalog.ts_stat('SELECT set_config(''role'',''postgres'',false)::tsvector')",
    );
    expect(s).toMatchObject({
      role_change: true,
      read_only: false,
      sql_text_calls: [{ function: 'pg_catalog.ts_stat', classified: true }],
    });
  });

  it('ts_rewrite(tsquery, text) runs its second argument; the three-tsquery form does not', () => {
    expect(one("SELECT ts_rewrite('a'::tsquery, 'SELECT t, s FROM aliases')")).toMatchObject({
      read_only: true,
      relations: [{ schema: null, name: 'aliases', access: 'read' }],
      sql_text_calls: [{ function: 'ts_rewrite', classified: true }],
    });
    expect(one("SELECT ts_rewrite('a'::tsquery, 'a'::tsquery, 'b'::tsquery)").sql_text_calls).toBeUndefined();
  });

  it('a read-only inner query keeps the caller read-only', () => {
    expect(one("SELECT ts_stat('SELECT v FROM docs')")).toMatchObject({
      read_only: true,
      relations: [{ schema: null, name: 'docs', access: 'read' }],
    });
  });

  it.each([
    ['a parameter', 'SELECT ts_stat($1)'],
    ['a column', 'SELECT ts_stat(q) FROM queries'],
    ['a concatenation', "SELECT ts_stat('SELECT ' || 'x')"],
    ['text that does not parse', "SELECT ts_stat('SELEC x')"],
    ['a nested call', "SELECT ts_rewrite('a'::tsquery, 'SELECT ts_stat(q) FROM t')"],
  ])('%s: unclassified, never read-only', (_note, sql) => {
    const s = one(sql);
    expect(s.read_only).toBe(false);
    expect(s.sql_text_calls?.some((c) => !c.classified)).toBe(true);
  });

  it('writes and DDL inside are visible', () => {
    expect(
      one("SELECT ts_stat('WITH d AS (DELETE FROM t RETURNING 1) SELECT ''a''::tsvector')"),
    ).toMatchObject({
      read_only: false,
      has_where: false,
      relations: [{ schema: null, name: 't', access: 'write' }],
    });
    expect(one("SELECT ts_stat('DROP TABLE t')")).toMatchObject({ ddl: true, read_only: false });
  });

  it('query_to_xml and dblink stay judged by name (side-effect functions): marked, not merged', () => {
    expect(one("SELECT query_to_xml('DELETE FROM t', true, true, '')")).toMatchObject({
      read_only: false,
      relations: [],
      sql_text_calls: [{ function: 'query_to_xml', classified: false }],
    });
    expect(one("SELECT dblink_exec('dbname=x', 'DELETE FROM t')").sql_text_calls).toEqual([
      { function: 'dblink_exec', classified: false },
    ]);
  });

  it('statements without such calls have no sql_text_calls field', () => {
    expect('sql_text_calls' in one('SELECT lower(x) FROM t')).toBe(false);
  });
});

describe('SQL run from a string and the shape cache', () => {
  it('a text of the same shape never borrows the classification of another string constant', () => {
    const classifier = createClassifier({ maxEntries: 100 });
    const inner = "SELECT set_config(''role'',''postgres'',false)::tsvector";
    const harmless = `SELECT v FROM docs${' '.repeat(inner.length - 'SELECT v FROM docs'.length)}`;
    expect(harmless.length).toBe(inner.length);
    expect(classifier.classify(`SELECT ts_stat('${harmless}')`).statements[0]?.role_change).toBe(false);
    expect(classifier.classify(`SELECT ts_stat('${inner}')`).statements[0]?.role_change).toBe(true);
  });
});
