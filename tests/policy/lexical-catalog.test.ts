/**
 * The generated tables pgward's lexical truth and SQL-from-string classification rely on, checked
 * against the running PostgreSQL (the reference): the encoding tables of
 * gateway/src/sql/encoding-tables.ts and the function list of gateway/src/sql/sql-text-functions.ts.
 * A failure here means the server differs from what the file says: re-run the generator script
 * named in the file and review the difference.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Client } from 'pg';
import { pgClient } from '../helpers/pg-clients';
import { DECODER_MISMATCHES, SINGLE_BYTE_HIGH } from '../../gateway/src/sql/encoding-tables';
import { BASELINE_SYMBOLS, SQL_TEXT_FUNCTIONS } from '../../gateway/src/sql/sql-text-functions';
import { DEFAULT_LEXICAL_STATE, readSqlText } from '../../gateway/src/sql/lexical';

let c: Client;
const REPO = path.join(__dirname, '..', '..');

beforeAll(async () => {
  c = await pgClient({ host: '127.0.0.1', port: 5432, user: 'postgres', database: 'postgres' });
  await c.query(
    `CREATE FUNCTION pg_temp.try_conv(b bytea, e name) RETURNS text LANGUAGE plpgsql AS $$ BEGIN RETURN convert_from(b, e); EXCEPTION WHEN others THEN RETURN NULL; END $$`,
  );
});

afterAll(async () => {
  await c?.end();
});

async function serverReads(encoding: string, seqs: Buffer[]): Promise<Array<string | null>> {
  const res = await c.query<{ t: string | null }>(
    `SELECT pg_temp.try_conv(decode(x, 'hex'), $1) AS t FROM unnest($2::text[]) WITH ORDINALITY u(x, i) ORDER BY i`,
    [encoding, seqs.map((s) => s.toString('hex'))],
  );
  return res.rows.map((r) => r.t);
}

const state = (clientEncoding: string) => ({ ...DEFAULT_LEXICAL_STATE, clientEncoding });

test('the server is UTF8, which the tables describe', async () => {
  expect((await c.query('SHOW server_encoding')).rows[0].server_encoding).toBe('UTF8');
});

test.each(Object.keys(SINGLE_BYTE_HIGH))(
  'single-byte %s: readSqlText reads every byte as the server does',
  async (encoding) => {
    const seqs: Buffer[] = [];
    for (let b = 0x80; b <= 0xff; b++) seqs.push(Buffer.from([0x27, b, 0x27]));
    const server = await serverReads(encoding, seqs);
    seqs.forEach((bytes, i) => {
      const ours = readSqlText(bytes, state(encoding));
      const theirs = server[i];
      if (theirs === null || theirs === undefined) expect(ours.ok).toBe(false);
      else expect(ours).toEqual({ ok: true, sql: theirs });
    });
  },
);

/**
 * Every two-byte sequence in each client-only multibyte encoding, between quotes: whatever the
 * server accepts, readSqlText either reads identically or refuses — never reads differently.
 */
test.each(['SJIS', 'BIG5', 'GBK', 'GB18030'])(
  '%s: every two-byte sequence is read as the server reads it, or refused',
  async (encoding) => {
    const seqs: Buffer[] = [];
    for (let a = 0x80; a <= 0xff; a++)
      for (let b = 0x01; b <= 0xff; b++) seqs.push(Buffer.from([0x27, a, b, 0x27]));
    const server = await serverReads(encoding, seqs);
    let same = 0;
    let refused = 0;
    seqs.forEach((bytes, i) => {
      const ours = readSqlText(bytes, state(encoding));
      const theirs = server[i];
      if (!ours.ok) {
        refused++;
        return;
      }
      // The server refused these bytes: it will refuse the whole message, whatever pgward read.
      if (theirs === null || theirs === undefined) return;
      expect({ bytes: bytes.toString('hex'), sql: ours.sql }).toEqual({
        bytes: bytes.toString('hex'),
        sql: theirs,
      });
      same++;
    });
    expect(same).toBeGreaterThan(10_000);
    // Refused but valid for the server: only the listed decoder mismatches (and their neighbours).
    expect(refused).toBeGreaterThanOrEqual((DECODER_MISMATCHES[encoding] ?? []).length);
  },
  120_000,
);

test('SJIS 0x95 0x5C: one character for the server and for readSqlText, no backslash', async () => {
  const [theirs] = await serverReads('SJIS', [Buffer.from([0x95, 0x5c])]);
  expect(theirs).toBe('表');
  expect(readSqlText(Buffer.from([0x95, 0x5c]), state('SJIS'))).toEqual({ ok: true, sql: '表' });
});

test('UHC is not decodable by Node: the server reads 0x81 0x41 as one character, euc-kr as two', async () => {
  const [theirs] = await serverReads('UHC', [Buffer.from([0x81, 0x41])]);
  expect([...(theirs ?? '')]).toHaveLength(1);
  expect([...new TextDecoder('euc-kr').decode(Buffer.from([0x81, 0x41]))]).toHaveLength(2);
});

test('encoding names resolve as on the server', async () => {
  const { canonicalEncoding } = await import('../../gateway/src/sql/lexical');
  const names = [
    'sjis',
    'Shift_JIS',
    'mskanji',
    'WIN932',
    'windows-932',
    'big5',
    'win950',
    'GBK',
    'cp936',
    'win936',
    'UHC',
    'windows949',
    'gb18030',
    'johab',
    'utf8',
    'UNICODE',
    'utf-8',
    'latin1',
    'ISO-8859-1',
    'iso_8859_5',
    'koi8',
    'win',
    'alt',
    'tcvn',
    'vscii',
    'abc',
    'euc_jp',
    'SQL_ASCII',
    'nonsense',
    'latin10',
    'shiftjis2004',
  ];
  const res = await c.query<{ n: string; e: string }>(
    `SELECT n, pg_encoding_to_char(pg_char_to_encoding(n)) AS e FROM unnest($1::text[]) n`,
    [names],
  );
  for (const { n, e } of res.rows) expect({ n, e: canonicalEncoding(n) ?? '' }).toEqual({ n, e });
});

/** Built-in C/internal functions with a string argument (scripts/gen-pg-proc-versions.js). */
const CANDIDATES = `
    SELECT DISTINCT p.prosrc, p.proname
    FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang
    WHERE l.lanname IN ('internal', 'c') AND p.oid < 16384
      AND EXISTS (SELECT 1 FROM unnest(p.proargtypes::oid[]) t
                  WHERE t IN ('text'::regtype, 'varchar'::regtype, 'bpchar'::regtype, 'name'::regtype,
                              'cstring'::regtype, 'refcursor'::regtype))`;

test('every built-in C/internal function with a string argument is either listed as running SQL or in the baseline', async () => {
  const res = await c.query<{ prosrc: string; proname: string }>(CANDIDATES);
  const listed = new Set(Object.values(SQL_TEXT_FUNCTIONS).flatMap((forms) => forms.map((f) => f.symbol)));
  const baseline = new Set(BASELINE_SYMBOLS);
  const unknown = res.rows.filter((r) => !listed.has(r.prosrc) && !baseline.has(r.prosrc));
  expect(unknown).toEqual([]);
  // ts_stat, ts_rewrite(tsquery, text), query_to_xml*, set_config exist with those symbols.
  const present = new Set(res.rows.map((r) => `${r.proname}:${r.prosrc}`));
  for (const [name, forms] of Object.entries(SQL_TEXT_FUNCTIONS)) {
    if (name.startsWith('dblink')) continue; // an extension, not installed in the test server
    for (const f of forms) expect(present.has(`${name}:${f.symbol}`)).toBe(true);
  }
});

test('the stored pg_proc extract of the server’s major version is what the server has', async () => {
  // gateway/src/sql/pg-proc/pg<major>.json, from which the lists are generated for 15 through 18
  // (checked per version by gateway/src/sql/pg-proc.test.ts); here the extract meets a real server.
  const num = Number((await c.query(`SELECT current_setting('server_version_num') AS v`)).rows[0].v);
  const file = path.join(REPO, 'gateway', 'src', 'sql', 'pg-proc', `pg${Math.floor(num / 10000)}.json`);
  const stored = JSON.parse(fs.readFileSync(file, 'utf8')) as { candidates: Array<[string, string]> };
  const res = await c.query<{ prosrc: string; proname: string }>(`${CANDIDATES} ORDER BY 1, 2`);
  expect(res.rows.map((r) => [r.prosrc, r.proname])).toEqual(stored.candidates);
});

test('no SQL-language built-in calls a function that runs SQL from a string', async () => {
  const names = Object.keys(SQL_TEXT_FUNCTIONS);
  const res = await c.query<{ proname: string }>(
    `SELECT p.proname FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang
     WHERE l.lanname = 'sql' AND p.oid < 16384 AND p.prosrc ~* ('\\m(' || array_to_string($1::text[], '|') || ')\\M')`,
    [names],
  );
  expect(res.rows).toEqual([]);
});

test('ts_stat really runs set_config from its string (the attack the classification covers)', async () => {
  await c.query('BEGIN');
  try {
    await c.query(
      `SELECT * FROM ts_stat('SELECT set_config(''application_name'',''from_ts_stat'',true)::tsvector')`,
    );
    expect((await c.query('SHOW application_name')).rows[0].application_name).toBe('from_ts_stat');
  } finally {
    await c.query('ROLLBACK');
  }
});
