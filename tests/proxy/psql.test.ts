/**
 * psql through pgward is indistinguishable from psql against PostgreSQL: the same script, run once
 * directly and once through the gateway (each time against a freshly created database), prints the
 * same stdout and stderr and leaves the same \copy files behind.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startGateway, stopAllGateways, type RunningGateway } from '../helpers/gateway';
import { runPsql, type ProcessResult } from '../helpers/psql';
import { DIRECT, dropDatabase, recreateDatabase, startAdminGateway, uniqueDbName } from './proxy-helpers';

const DB = uniqueDbName('pgward_proxy_psql');

jest.setTimeout(60_000);

let gw: RunningGateway;
let dir = '';

beforeAll(async () => {
  gw = await startAdminGateway();
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pgward-psql-'));
});

afterAll(async () => {
  await stopAllGateways();
  await dropDatabase(DB);
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

/** \copy takes its argument verbatim (no variable interpolation), so the file path is written in. */
function script(csv: string, bigCsv: string): string {
  return String.raw`\set QUIET off
\pset pager off
DROP TABLE IF EXISTS nonexistent_psql_table;
DROP INDEX IF EXISTS nonexistent_psql_index;
CREATE TABLE items (
  id int PRIMARY KEY,
  name text NOT NULL,
  price numeric(10,2) CHECK (price >= 0),
  tags text[],
  payload jsonb,
  created date DEFAULT '2024-01-01'
);
CREATE INDEX items_name_idx ON items (name);
COMMENT ON TABLE items IS 'items seen through the proxy';
COMMENT ON COLUMN items.name IS 'the name';
INSERT INTO items (id, name, price, tags, payload) VALUES
  (1, 'apple', 1.25, '{red,fruit}', '{"a": 1}'),
  (2, 'banana', 0.50, '{yellow}', NULL),
  (3, 'cherry, "quoted"', 3, NULL, '{"nested": {"x": [1, 2, 3]}}');
SELECT * FROM items ORDER BY id;
UPDATE items SET price = price * 2 WHERE id = 2;
SELECT id, price FROM items WHERE id = 2;
SELECT 1/0 AS boom;
INSERT INTO items (id, name) VALUES (1, 'duplicate');
INSERT INTO items (id, name, price) VALUES (9, 'negative', -1);
SELECT * FROM no_such_table;
SELECT no_such_column FROM items;
BEGIN;
INSERT INTO items (id, name) VALUES (4, 'date');
SELECT no_such_column FROM items;
SELECT 'after the error, inside the failed transaction';
ROLLBACK;
SELECT count(*) AS after_rollback FROM items;
SELECT 1 AS first \; SELECT 1/0 AS second \; SELECT 3 AS third;
DO $$
BEGIN
  RAISE NOTICE 'notice from DO: % rows', (SELECT count(*) FROM items);
  RAISE WARNING 'warning from DO';
  RAISE INFO 'info from DO';
END
$$;
DO $$ BEGIN RAISE EXCEPTION 'exception from DO' USING ERRCODE = 'P0001', DETAIL = 'some detail', HINT = 'a hint'; END $$;
SELECT 'still running' AS status;
\copy items TO '${csv}' WITH (FORMAT csv, HEADER)
CREATE TABLE items_copy (LIKE items INCLUDING ALL);
\copy items_copy FROM '${csv}' WITH (FORMAT csv, HEADER)
SELECT count(*) AS differing FROM ((TABLE items EXCEPT TABLE items_copy) UNION ALL (TABLE items_copy EXCEPT TABLE items)) d;
COPY items_copy (id, name) FROM STDIN;
10	ten
11	eleven with a tab\there
\.
\copy (SELECT id, name FROM items_copy ORDER BY id) TO STDOUT
COPY (SELECT id, name, tags FROM items ORDER BY id) TO STDOUT WITH (FORMAT csv, HEADER);
\copy items_copy FROM STDIN
12	twelve	1.00	\N	\N	2024-02-02
not-a-number	bad row	\N	\N	\N	\N
\.
SELECT count(*) FROM items_copy;
CREATE TABLE big AS SELECT g AS id, md5(g::text) AS h, repeat('x', g % 97) AS pad FROM generate_series(1, 20000) g;
\copy big TO '${bigCsv}'
CREATE TABLE big2 (LIKE big);
\copy big2 FROM '${bigCsv}'
SELECT count(*), md5(string_agg(h || pad, ',' ORDER BY id)) FROM big2;
CREATE VIEW cheap AS SELECT id, name FROM items WHERE price < 2;
CREATE SEQUENCE item_seq START 100;
SELECT nextval('item_seq'), nextval('item_seq');
\d items
\dt
\d+ items
\d+ items_copy
\di
\dv
\ds
\dn
\d cheap
\d no_such_relation
PREPARE q(int) AS SELECT name FROM items WHERE id = $1;
EXECUTE q(1);
EXECUTE q(42);
DEALLOCATE q;
SELECT repeat('long line ', 50) AS wide \gx
\echo end of script
`;
}

interface Run {
  result: ProcessResult;
  csv: string;
  bigCsv: string;
}

async function runScript(port: number): Promise<Run> {
  await recreateDatabase(DB);
  const csv = path.join(dir, 'items.csv');
  const bigCsv = path.join(dir, 'big.tsv');
  fs.rmSync(csv, { force: true });
  fs.rmSync(bigCsv, { force: true });
  const result = await runPsql({
    host: DIRECT.host,
    port,
    user: DIRECT.user,
    db: DB,
    input: script(csv, bigCsv),
    timeoutMs: 60_000,
  });
  return { result, csv: fs.readFileSync(csv, 'utf8'), bigCsv: fs.readFileSync(bigCsv, 'utf8') };
}

test('the same psql script prints the same stdout and stderr directly and through pgward', async () => {
  const direct = await runScript(DIRECT.port);
  const proxied = await runScript(gw.port);

  // Sanity: the script really exercised what it is meant to (else identical output proves little).
  expect(direct.result.code).toBe(0);
  expect(direct.result.stderr).toContain('NOTICE:  table "nonexistent_psql_table" does not exist, skipping');
  expect(direct.result.stderr).toContain('NOTICE:  notice from DO: 3 rows');
  expect(direct.result.stderr).toContain('WARNING:  warning from DO');
  expect(direct.result.stderr).toContain('ERROR:  division by zero');
  expect(direct.result.stderr).toContain('ERROR:  current transaction is aborted');
  expect(direct.result.stderr).toContain('ERROR:  exception from DO');
  expect(direct.result.stderr).toContain('ERROR:  invalid input syntax for type integer: "not-a-number"');
  expect(direct.result.stderr).toContain('Did not find any relation named "no_such_relation"');
  expect(direct.result.stdout).toContain('Table "public.items"');
  expect(direct.result.stdout).toContain('items_name_idx');
  expect(direct.result.stdout).toContain('20000 | ');
  expect(direct.result.stdout).toContain('end of script');
  expect(direct.csv.split('\n')[0]).toBe('id,name,price,tags,payload,created');
  expect(direct.bigCsv.split('\n')).toHaveLength(20001);

  expect(proxied.result.code).toBe(direct.result.code);
  expect(proxied.result.stdout).toBe(direct.result.stdout);
  expect(proxied.result.stderr).toBe(direct.result.stderr);
  expect(proxied.csv).toBe(direct.csv);
  expect(proxied.bigCsv).toBe(direct.bigCsv);
});

test('psql -c, -l and a connection failure look the same through pgward', async () => {
  const args = (port: number, extra: string[], db = DB) =>
    runPsql({ host: DIRECT.host, port, user: DIRECT.user, db, args: extra });
  await recreateDatabase(DB);
  for (const extra of [
    ['-Atc', "SELECT current_database(), current_user, current_setting('server_version_num')"],
    ['-c', 'SELECT 1 AS a; SELECT 2 AS b'],
    ['-c', 'SELECT pg_catalog.set_config($$search_path$$, $$$$, false)', '-c', 'SHOW search_path'],
    ['-v', 'ON_ERROR_STOP=1', '-c', 'SELECT 1/0', '-c', 'SELECT 2'],
  ]) {
    const d = await args(DIRECT.port, extra);
    const p = await args(gw.port, extra);
    expect({ extra, code: p.code, stdout: p.stdout, stderr: p.stderr }).toEqual({
      extra,
      code: d.code,
      stdout: d.stdout,
      stderr: d.stderr,
    });
  }
  // A database that does not exist: the server's FATAL reaches psql unchanged (only the port differs).
  const d = await args(DIRECT.port, ['-c', 'SELECT 1'], 'pgward_proxy_no_such_db');
  const p = await args(gw.port, ['-c', 'SELECT 1'], 'pgward_proxy_no_such_db');
  expect(d.code).toBe(2);
  expect(p.code).toBe(2);
  const norm = (s: string) =>
    s.replaceAll(`port ${gw.port}`, 'port N').replaceAll(`port ${DIRECT.port}`, 'port N');
  expect(norm(p.stderr)).toBe(norm(d.stderr));
});

test('with the shipped policy, denied statements fail in position and the rest of the script runs', async () => {
  const shipped = await startGateway();
  await recreateDatabase(DB);
  const input = [
    'CREATE TABLE t (id int);',
    'INSERT INTO t VALUES (1), (2);',
    'DELETE FROM t;',
    'SELEC 1;',
    'EXECUTE never_prepared;',
    "SELECT count(*) AS kept, 'after the denials' AS status FROM t;",
    'DELETE FROM t WHERE id = 1;',
    'SELECT count(*) AS left_over FROM t;',
    '',
  ].join('\n');
  const r = await runPsql({
    host: DIRECT.host,
    port: shipped.port,
    user: DIRECT.user,
    db: DB,
    args: ['-At'],
    input,
  });
  await shipped.stop();
  expect(r.code).toBe(0);
  expect(r.stdout).toBe('2|after the denials\n1\n');
  const lines = r.stderr.split('\n').filter((l) => l.startsWith('ERROR:'));
  expect(lines).toEqual([
    expect.stringMatching(/^ERROR:  permission denied by policy: DELETE without WHERE on (public\.)?t$/),
    expect.stringMatching(
      /^ERROR:  permission denied by policy: SQL could not be parsed: syntax error at or near "SELEC"/,
    ),
    'ERROR:  permission denied by policy: EXECUTE never_prepared: prepared statement unknown to pgward',
  ]);
});

/** Runs `input` directly and through the admin gateway against fresh databases; returns both results. */
async function both(input: string): Promise<{ direct: ProcessResult; proxied: ProcessResult }> {
  await recreateDatabase(DB);
  const d = await runPsql({ host: DIRECT.host, port: DIRECT.port, user: DIRECT.user, db: DB, input });
  await recreateDatabase(DB);
  const p = await runPsql({ host: DIRECT.host, port: gw.port, user: DIRECT.user, db: DB, input });
  return { direct: d, proxied: p };
}

test('an error message larger than 1 MiB is shown and the script goes on', async () => {
  const { direct, proxied } = await both("SELECT repeat('x', 1200000)::int;\nSELECT 'next' AS n;\n");
  expect(direct.stdout).toContain('next');
  expect(direct.stderr.length).toBeGreaterThan(1024 * 1024);
  expect({ code: proxied.code, stdout: proxied.stdout, stderr: proxied.stderr.slice(0, 300) }).toEqual({
    code: direct.code,
    stdout: direct.stdout,
    stderr: direct.stderr.slice(0, 300),
  });
  expect(proxied.stderr).toBe(direct.stderr);
});

test('a statement longer than 64 KiB (a bulk INSERT ... VALUES) runs as it does directly', async () => {
  const values = Array.from(
    { length: 3000 },
    (_, i) => `(${i}, 'row number ${i} with some padding text')`,
  ).join(',\n');
  const input = `CREATE TABLE bulk (id int, t text);\nINSERT INTO bulk VALUES\n${values};\nSELECT count(*), sum(id) FROM bulk;\n`;
  expect(input.length).toBeGreaterThan(64 * 1024);
  const { direct, proxied } = await both(input);
  expect(direct.stdout).toContain(' 3000 | 4498500');
  expect({ code: proxied.code, stdout: proxied.stdout, stderr: proxied.stderr }).toEqual({
    code: direct.code,
    stdout: direct.stdout,
    stderr: direct.stderr,
  });
});
