/**
 * The function lists against pg_proc of every supported major version (15 through 18), as stored
 * in gateway/src/sql/pg-proc/pg<major>.json by scripts/gen-pg-proc-versions.js. The live server's
 * pg_proc is checked by tests/policy/lexical-catalog.test.ts.
 */
import fs from 'node:fs';
import path from 'node:path';
import { classify, initSqlParser } from './classify';
import { hasSideEffects } from './side-effect-functions';
import { BASELINE_SYMBOLS, SQL_TEXT_FUNCTIONS } from './sql-text-functions';

interface PgProcExtract {
  server_version_num: string;
  version: string;
  source: string;
  candidates: Array<[string, string]>;
  sql_bodies: Array<[string, string]>;
  builtin_names: string[];
}

const DIR = path.join(__dirname, 'pg-proc');
const versions: PgProcExtract[] = [15, 16, 17, 18].map(
  (major) => JSON.parse(fs.readFileSync(path.join(DIR, `pg${major}.json`), 'utf8')) as PgProcExtract,
);
const byMajor = versions.map((v) => [String(Math.floor(Number(v.server_version_num) / 10000)), v] as const);
const executing = new Set(Object.values(SQL_TEXT_FUNCTIONS).flatMap((forms) => forms.map((f) => f.symbol)));

beforeAll(async () => {
  await initSqlParser();
});

test('one extract per supported major version, each from that version’s catalog', () => {
  expect(byMajor.map(([m]) => m)).toEqual(['15', '16', '17', '18']);
  for (const [major, v] of byMajor) {
    expect(v.version).toMatch(new RegExp(`^PostgreSQL ${major}\\.`));
    expect(v.candidates.length).toBeGreaterThan(600);
    expect(v.builtin_names.length).toBeGreaterThan(2500);
  }
});

describe.each(byMajor)('PostgreSQL %s', (_major, v) => {
  it('every C/internal built-in with a string argument is either listed as running SQL or in the baseline', () => {
    const baseline = new Set(BASELINE_SYMBOLS);
    const unknown = v.candidates.filter(([symbol]) => !executing.has(symbol) && !baseline.has(symbol));
    expect(unknown).toEqual([]);
  });

  it('ts_stat, ts_rewrite(tsquery, text), query_to_xml* and set_config exist with the listed symbols', () => {
    const present = new Set(v.candidates.map(([symbol, name]) => `${name}:${symbol}`));
    for (const [name, forms] of Object.entries(SQL_TEXT_FUNCTIONS)) {
      if (name.startsWith('dblink')) continue; // an extension
      for (const f of forms) expect(present.has(`${name}:${f.symbol}`)).toBe(true);
    }
  });

  it('no SQL-language built-in calls a function that runs SQL from a string', () => {
    const call = new RegExp(`\\b(${Object.keys(SQL_TEXT_FUNCTIONS).join('|')})\\b`, 'i');
    expect(v.sql_bodies.filter(([, body]) => call.test(body)).map(([name]) => name)).toEqual([]);
  });

  it('every built-in function name is in rego/pgward_builtins/data.json', () => {
    const data = JSON.parse(
      fs.readFileSync(path.join(__dirname, '..', '..', '..', 'rego', 'pgward_builtins', 'data.json'), 'utf8'),
    ) as { functions: Record<string, boolean>; server_versions: string[] };
    expect(v.builtin_names.filter((n) => data.functions[n] !== true)).toEqual([]);
    expect(data.server_versions).toContain(v.server_version_num);
  });
});

test.each([
  'pg_log_standby_snapshot', // 16
  'pg_sync_replication_slots', // 17
  'pg_restore_relation_stats', // 18: writes planner statistics even in a read-only transaction
  'pg_restore_attribute_stats',
  'pg_clear_relation_stats',
  'pg_clear_attribute_stats',
])('%s (new since 15) is a side effect: a statement calling it is not read-only', (name) => {
  expect(byMajor.some(([, v]) => v.builtin_names.includes(name))).toBe(true);
  expect(hasSideEffects(name)).toBe(true);
  const c = classify(`SELECT ${name}('public', 't')`);
  expect(c.statements[0]!.read_only).toBe(false);
});
