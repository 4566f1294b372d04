#!/usr/bin/env node
/**
 * Writes gateway/src/sql/sql-text-functions.ts and rego/pgward_builtins/data.json from the stored
 * pg_proc extracts of every supported major version, gateway/src/sql/pg-proc/pg<major>.json
 * (written by scripts/gen-pg-proc-versions.js from each version's own catalog).
 *
 * Criterion. A built-in function runs SQL from a string when its C implementation hands an
 * argument to the executor (SPI_execute / SPI_prepare / SPI_cursor_open) or to the settings
 * machinery (set_config_by_name). Only C and internal functions can do that with an argument
 * (SQL-language built-ins have fixed bodies), and only through an argument of a string type. So:
 *   1. every C/internal function with an argument of type text, varchar, bpchar, name, cstring or
 *      refcursor is a candidate (`candidates` of each version's file);
 *   2. EXECUTING below names, by C symbol (pg_proc.prosrc), the candidates whose source reviews
 *      found to execute such an argument, with the argument's position;
 *   3. every other candidate symbol of any supported version is written to BASELINE_SYMBOLS: none
 *      of them runs SQL from an argument (PostgreSQL's backend code that runs SQL text from an
 *      argument: ts_stat_sql, tsquery_rewrite_query, query_to_xml_internal and its siblings in
 *      xml.c; settings: set_config_by_name).
 * gateway/src/sql/pg-proc.test.ts fails when a stored version has a candidate in neither list,
 * and tests/policy/lexical-catalog.test.ts when pg_proc of the running server does (a new
 * version, an extension), so none is missed silently. Review every new symbol before adding it.
 *
 * Usage: node scripts/gen-sql-text-functions.js   (no database needed)
 */
'use strict';
/* eslint-disable @typescript-eslint/no-require-imports -- plain CommonJS script */
const fs = require('node:fs');
const path = require('node:path');

const OUT = path.join(__dirname, '..', 'gateway', 'src', 'sql', 'sql-text-functions.ts');

/**
 * Read in PostgreSQL's source (15–18): symbol → [function name, 0-based argument that is SQL
 * text or a setting name, number of arguments of that form, what it does].
 */
// Reviewed candidates new since 15 (none runs SQL from a string or changes a setting):
// 16: pg_input_is_valid / pg_input_error_info (parse a type name like to_regtype, then call that
//     type's input function: a domain's CHECK runs as it does for a cast), pg_read_*_missing,
//     generate_series / date_add / date_subtract (a time zone name), pg_split_walfile_name;
// 17: to_regtypemod (a type name), unicode_assigned, xmltext, binary_upgrade_* (binary-upgrade
//     mode only);
// 18: casefold, has_largeobject_privilege (a privilege name), pg_clear_relation_stats /
//     pg_clear_attribute_stats (names of a relation and column: they write planner statistics,
//     even in a read-only transaction, so sql/side-effect-functions.ts lists them).
const EXECUTING = {
  ts_stat1: ['ts_stat', 0, 1, 'sql'], // tsvector_op.c ts_stat_sql: SPI_prepare + SPI_cursor_open of the text
  ts_stat2: ['ts_stat', 0, 2, 'sql'],
  tsquery_rewrite_query: ['ts_rewrite', 1, 2, 'sql'], // tsquery_rewrite.c: SPI_prepare of the second argument
  query_to_xml: ['query_to_xml', 0, 4, 'sql'], // xml.c query_to_xml_internal: SPI_execute
  query_to_xmlschema: ['query_to_xmlschema', 0, 4, 'sql'], // xml.c: SPI_prepare + SPI_cursor_open
  query_to_xml_and_xmlschema: ['query_to_xml_and_xmlschema', 0, 4, 'sql'],
  set_config_by_name: ['set_config', 0, 3, 'setting'], // guc_funcs.c: set_config_option of the name
  // contrib/dblink (when installed): SQL text run by another session, possibly as another role;
  // arg -1: never classified here (it does not run in this session, and the policy treats dblink*
  // as dangerous functions).
  dblink_record: ['dblink', -1, 0, 'sql'],
  dblink_exec: ['dblink_exec', -1, 0, 'sql'],
  dblink_open: ['dblink_open', -1, 0, 'sql'],
  dblink_send_query: ['dblink_send_query', -1, 0, 'sql'],
};

const PG_PROC_DIR = path.join(__dirname, '..', 'gateway', 'src', 'sql', 'pg-proc');

/** The stored extracts, oldest version first. */
function readVersions() {
  return fs
    .readdirSync(PG_PROC_DIR)
    .filter((f) => /^pg\d+\.json$/.test(f))
    .map((f) => JSON.parse(fs.readFileSync(path.join(PG_PROC_DIR, f), 'utf8')))
    .sort((a, b) => Number(a.server_version_num) - Number(b.server_version_num));
}

async function main() {
  const versions = readVersions();
  if (versions.length === 0) throw new Error(`no pg<major>.json in ${PG_PROC_DIR}`);
  const releases = versions.map((v) => v.version.split(' ')[1]).join(', ');
  const union = (key, pick) => [...new Set(versions.flatMap((v) => v[key].map(pick)))].sort();
  const symbols = union('candidates', (c) => c[0]);
  // Names of the built-in functions in pg_catalog of any supported version, for the read-only
  // option that denies calls of user-defined functions (data.pgward_builtins.functions).
  const builtinNames = union('builtin_names', (n) => n);
  const baseline = symbols.filter((s) => !Object.prototype.hasOwnProperty.call(EXECUTING, s));
  const functions = {};
  for (const [symbol, [name, arg, nargs, kind]] of Object.entries(EXECUTING)) {
    (functions[name] ??= []).push({ symbol, arg, nargs, kind });
  }
  const text = [
    '/**',
    ` * GENERATED by scripts/gen-sql-text-functions.js from pg_proc of PostgreSQL ${releases}`,
    ' * (gateway/src/sql/pg-proc/*.json); do not edit.',
    ' * SQL_TEXT_FUNCTIONS: built-in functions that run SQL (or change a setting) named by a string',
    ' * argument: `arg` is its 0-based position (-1: runs elsewhere, never classified), `nargs` the call arity it',
    ' * applies to (0: any). BASELINE_SYMBOLS: the C symbols of every other built-in C/internal function',
    ' * with a string argument in any of those versions (none runs SQL from it; see the script for the criterion).',
    ' */',
    'export interface SqlTextForm {',
    '  symbol: string;',
    '  arg: number;',
    '  nargs: number;',
    "  kind: 'sql' | 'setting';",
    '}',
    '',
    `export const SQL_TEXT_FUNCTIONS: Readonly<Record<string, readonly SqlTextForm[]>> = ${JSON.stringify(functions)};`,
    '',
    `export const BASELINE_SYMBOLS: readonly string[] = ${JSON.stringify(baseline)};`,
    '',
  ].join('\n');
  const prettier = require('prettier');
  const options = (await prettier.resolveConfig(OUT)) ?? {};
  fs.writeFileSync(OUT, await prettier.format(text, { ...options, filepath: OUT }));
  console.log(
    `wrote ${OUT}: ${Object.keys(functions).length} functions, ${baseline.length} baseline symbols`,
  );
  const builtinsOut = path.join(__dirname, '..', 'rego', 'pgward_builtins', 'data.json');
  fs.mkdirSync(path.dirname(builtinsOut), { recursive: true });
  const builtins = {
    functions: Object.fromEntries(builtinNames.map((n) => [n, true])),
    server_versions: versions.map((v) => v.server_version_num),
  };
  fs.writeFileSync(builtinsOut, JSON.stringify(builtins, null, 1) + '\n');
  console.log(`wrote ${builtinsOut}: ${builtinNames.length} built-in function names`);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
