#!/usr/bin/env node
/**
 * Writes gateway/src/sql/pg-proc/pg<major>.json: what scripts/gen-sql-text-functions.js needs
 * from pg_proc of one PostgreSQL major version, read from a running catalog:
 *   - candidates: [C symbol (prosrc), function name] of every built-in (oid < 16384) C/internal
 *     function with an argument of type text, varchar, bpchar, name, cstring or refcursor — the
 *     only functions that can hand an argument to the executor or to set_config_by_name (see
 *     gen-sql-text-functions.js for the criterion);
 *   - sql_bodies: [name, prosrc] of every built-in SQL-language function, so that the test can
 *     check none of them calls a function that runs SQL from a string;
 *   - builtin_names: the names of the functions in pg_catalog (rego/pgward_builtins/data.json).
 *
 * Sources (any number, one file each):
 *   --pg                  the server PGHOST/PGPORT/PGUSER/PGDATABASE (default 127.0.0.1:5432, postgres)
 *   --pglite DIR          a PGlite package directory (npm @electric-sql/pglite: PostgreSQL compiled
 *                         to wasm with its release's own catalog; 0.2.x is 16, 0.3.x 17, 0.5.x 18).
 *                         Install it outside the repository, e.g.
 *                         npm install --prefix /tmp/pgl pg16@npm:@electric-sql/pglite@0.2.17
 *                         then --pglite /tmp/pgl/node_modules/pg16
 *
 * Usage: node scripts/gen-pg-proc-versions.js --pg --pglite DIR16 --pglite DIR17 --pglite DIR18
 * Then run scripts/gen-sql-text-functions.js, which reads every pg<major>.json.
 */
'use strict';
/* eslint-disable @typescript-eslint/no-require-imports -- plain CommonJS script */
const fs = require('node:fs');
const path = require('node:path');

const OUT_DIR = path.join(__dirname, '..', 'gateway', 'src', 'sql', 'pg-proc');

const STRING_ARG = `EXISTS (SELECT 1 FROM unnest(p.proargtypes::oid[]) t
  WHERE t IN ('text'::regtype, 'varchar'::regtype, 'bpchar'::regtype, 'name'::regtype,
              'cstring'::regtype, 'refcursor'::regtype))`;

const QUERIES = {
  version: `SELECT current_setting('server_version_num') AS v, version() AS s`,
  candidates: `SELECT DISTINCT p.prosrc, p.proname
    FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang
    WHERE l.lanname IN ('internal', 'c') AND p.oid < 16384 AND ${STRING_ARG}
    ORDER BY 1, 2`,
  sqlBodies: `SELECT p.proname, p.prosrc FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang
    WHERE l.lanname = 'sql' AND p.oid < 16384 ORDER BY 1, 2`,
  builtinNames: `SELECT DISTINCT proname FROM pg_proc
    WHERE pronamespace = 'pg_catalog'::regnamespace AND oid < 16384 ORDER BY 1`,
};

/** Runs every query with `query(sql) → rows`; returns the file's content. */
async function collect(query, source) {
  const [version] = await query(QUERIES.version);
  return {
    server_version_num: version.v,
    version: version.s,
    source,
    candidates: (await query(QUERIES.candidates)).map((r) => [r.prosrc, r.proname]),
    sql_bodies: (await query(QUERIES.sqlBodies)).map((r) => [r.proname, r.prosrc]),
    builtin_names: (await query(QUERIES.builtinNames)).map((r) => r.proname),
  };
}

async function fromServer() {
  const client = await require('./pg-env-client').connectFromEnv();
  try {
    return await collect(async (sql) => (await client.query(sql)).rows, 'pg_proc of a running server');
  } finally {
    await client.end();
  }
}

async function fromPglite(dir) {
  const pkg = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8'));
  const { PGlite } = await import(path.join(path.resolve(dir), 'dist', 'index.js'));
  const db = await PGlite.create();
  try {
    return await collect(async (sql) => (await db.query(sql)).rows, `pg_proc of ${pkg.name}@${pkg.version}`);
  } finally {
    await db.close();
  }
}

function write(data) {
  const major = String(Math.floor(Number(data.server_version_num) / 10000));
  fs.mkdirSync(OUT_DIR, { recursive: true });
  const file = path.join(OUT_DIR, `pg${major}.json`);
  // One entry per line: reviewable diffs when a version is regenerated.
  const lines = ['{'];
  const keys = Object.keys(data);
  keys.forEach((k, i) => {
    const v = data[k];
    const comma = i < keys.length - 1 ? ',' : '';
    if (!Array.isArray(v)) lines.push(`  ${JSON.stringify(k)}: ${JSON.stringify(v)}${comma}`);
    else
      lines.push(
        `  ${JSON.stringify(k)}: [`,
        v.map((e) => `    ${JSON.stringify(e)}`).join(',\n'),
        `  ]${comma}`,
      );
  });
  lines.push('}', '');
  fs.writeFileSync(file, lines.join('\n'));
  console.log(`wrote ${file}: ${data.version.split(' on ')[0]}, ${data.candidates.length} candidates`);
}

async function main() {
  const args = process.argv.slice(2);
  if (args.length === 0) throw new Error('usage: gen-pg-proc-versions.js [--pg] [--pglite DIR]...');
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '--pg') write(await fromServer());
    else if (args[i] === '--pglite' && args[i + 1] !== undefined) write(await fromPglite(args[++i]));
    else throw new Error(`unknown argument ${args[i]}`);
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
