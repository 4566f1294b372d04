/**
 * Realistic traffic for the replay corpus and the round-trip tests: an application with an
 * ORM-like mix (node-postgres named and unnamed prepared statements, transactions), a psql admin
 * session, pgbench -S, and attack attempts from THREATS.md. Each scenario runs against any
 * host:port (pgward or PostgreSQL directly) and tolerates the policy's denials.
 */
import { Client } from 'pg';
import { runPgbench, runPsql } from '../helpers/psql';
import { CLUSTER_PASSWORDS } from '../helpers/cluster';

export interface Target {
  host: string;
  port: number;
  database: string;
}

/** Run directly against the server (never through pgward): tables the scenarios use. */
export const SETUP_SQL = `
DROP TABLE IF EXISTS replay_orders, replay_customers, credit_cards;
CREATE TABLE replay_customers (id serial PRIMARY KEY, name text NOT NULL, email text);
CREATE TABLE replay_orders (id serial PRIMARY KEY, customer_id int REFERENCES replay_customers(id), amount numeric(10,2), status text DEFAULT 'new');
CREATE TABLE credit_cards (id serial PRIMARY KEY, customer_id int, number text);
INSERT INTO replay_customers (name, email) SELECT 'customer ' || g, 'c' || g || '@example.com' FROM generate_series(1, 20) g;
INSERT INTO replay_orders (customer_id, amount) SELECT 1 + g % 20, g * 1.5 FROM generate_series(1, 50) g;
INSERT INTO credit_cards (customer_id, number) VALUES (1, '4111111111111111');
GRANT ALL ON ALL TABLES IN SCHEMA public TO readonly;
GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO readonly;
`;

async function client(t: Target, user: string, app: string, password?: string): Promise<Client> {
  const c = new Client({
    host: t.host,
    port: t.port,
    user,
    database: t.database,
    application_name: app,
    ...(password !== undefined ? { password } : {}),
    connectionTimeoutMillis: 10_000,
  });
  c.on('error', () => undefined);
  await c.connect();
  return c;
}

/** Runs a query and swallows the error (a policy denial is an expected outcome). */
async function tryQuery(
  c: Client,
  q: string | { text: string; values?: unknown[]; name?: string },
): Promise<void> {
  try {
    await c.query(q as never);
  } catch {
    /* denied or failed: part of the traffic */
  }
}

export async function ormApp(t: Target): Promise<void> {
  const c = await client(t, 'postgres', 'orm-app');
  try {
    for (let i = 1; i <= 15; i++) {
      await tryQuery(c, {
        name: 'customer-by-id',
        text: 'SELECT id, name, email FROM replay_customers WHERE id = $1',
        values: [i],
      });
      await tryQuery(c, {
        text: 'SELECT id, amount, status FROM replay_orders WHERE customer_id = $1 ORDER BY id LIMIT $2',
        values: [i, 5],
      });
      await tryQuery(c, 'BEGIN');
      await tryQuery(c, {
        name: 'new-order',
        text: 'INSERT INTO replay_orders (customer_id, amount) VALUES ($1, $2) RETURNING id',
        values: [i, `${i}.25`],
      });
      await tryQuery(c, {
        text: "UPDATE replay_orders SET status = 'paid' WHERE customer_id = $1 AND status = $2",
        values: [i, 'new'],
      });
      await tryQuery(c, i % 5 === 0 ? 'ROLLBACK' : 'COMMIT');
    }
    // An ORM that deletes without a WHERE, and reads a sensitive table through a prepared statement.
    await tryQuery(c, 'BEGIN');
    await tryQuery(c, { text: 'DELETE FROM replay_orders' });
    await tryQuery(c, 'ROLLBACK');
    await tryQuery(c, {
      name: 'cards',
      text: 'SELECT number FROM credit_cards WHERE customer_id = $1',
      values: [1],
    });
    await tryQuery(c, { text: 'SELECT count(*) FROM replay_orders WHERE amount > $1', values: [10.5] });
  } finally {
    await c.end();
  }
  // A read-only user (SCRAM authentication: the password frames must never be captured).
  const r = await client(t, 'readonly', 'orm-app-reports', CLUSTER_PASSWORDS.readonly);
  try {
    await tryQuery(r, { text: 'SELECT status, count(*) FROM replay_orders GROUP BY status ORDER BY status' });
    await tryQuery(r, { text: 'UPDATE replay_orders SET status = $1 WHERE id = $2', values: ['void', 1] });
    await tryQuery(r, 'SELECT 1');
  } finally {
    await r.end();
  }
}

export const PSQL_ADMIN_SCRIPT = String.raw`\pset pager off
\dt
\d replay_orders
SELECT count(*) FROM replay_orders;
EXPLAIN SELECT * FROM replay_orders WHERE id = 3;
SHOW server_version;
SET statement_timeout = '5s';
BEGIN;
UPDATE replay_orders SET amount = amount + 1 WHERE id = 1;
SELECT 1/0;
SELECT 1;
ROLLBACK;
CREATE INDEX replay_orders_status_idx ON replay_orders (status);
VACUUM replay_orders;
SELECT pg_size_pretty(pg_total_relation_size('replay_orders'));
`;

export async function psqlAdmin(t: Target): Promise<void> {
  const r = await runPsql({
    host: t.host,
    port: t.port,
    user: 'postgres',
    db: t.database,
    input: PSQL_ADMIN_SCRIPT,
    env: { PGAPPNAME: 'psql' },
  });
  if (r.code !== 0) throw new Error(`psql failed (${r.code}): ${r.stderr}`);
}

/** pgbench -S (select-only, simple protocol); its tables are created directly beforehand with pgbench -i. */
export async function pgbenchSelect(t: Target, transactions = 200): Promise<void> {
  const r = await runPgbench([
    '-n',
    '-S',
    '-c',
    '1',
    '-t',
    String(transactions),
    '-h',
    t.host,
    '-p',
    String(t.port),
    '-U',
    'postgres',
    t.database,
  ]);
  if (r.code !== 0) throw new Error(`pgbench failed (${r.code}): ${r.stderr}`);
}

export const ATTACKS: readonly string[] = [
  'SELECT 1; DROP TABLE replay_orders',
  'WITH d AS (DELETE FROM replay_orders RETURNING *) SELECT count(*) FROM d',
  'SELECT * INTO replay_copy FROM replay_orders',
  'EXPLAIN ANALYZE DELETE FROM replay_orders',
  'COPY (DELETE FROM replay_orders RETURNING *) TO STDOUT',
  'CREATE TABLE replay_ctas AS SELECT * FROM replay_orders',
  'SELECT pg_terminate_backend(pg_backend_pid() + 100000)',
  "SELECT lo_import('/etc/passwd')",
  "SELECT pg_read_file('/etc/passwd')",
  "SELECT set_config('role', 'postgres', false)",
  'SELECT "pg_catalog"."pg_terminate_backend"(1)',
  'SELECT U&"pg_terminate_backend"(1)',
  'SET ROLE readonly',
  'SET SESSION AUTHORIZATION readonly',
  'RESET ROLE',
  'PREPARE p AS DELETE FROM replay_orders',
  'EXECUTE p',
  'DO $$ BEGIN PERFORM 1; END $$',
  "CREATE FUNCTION replay_f() RETURNS int LANGUAGE sql AS 'SELECT 1'",
  "ALTER SYSTEM SET work_mem = '64MB'",
  "LOAD 'auto_explain'",
  'CREATE EXTENSION IF NOT EXISTS pgcrypto',
  "COPY replay_orders TO PROGRAM 'cat > /dev/null'",
  "COPY replay_orders FROM '/etc/passwd'",
  'SELECT number FROM credit_cards',
  'SELEC broken sql (',
  'TRUNCATE replay_orders',
];

export async function attacks(t: Target): Promise<void> {
  const c = await client(t, 'postgres', 'attacker');
  try {
    for (const sql of ATTACKS) await tryQuery(c, sql);
    // The same through the extended protocol (a Parse of each).
    for (const sql of ATTACKS.slice(0, 8)) await tryQuery(c, { text: sql, values: [] });
  } finally {
    await c.end();
  }
  // A blocked user: refused at startup (the upstream is never contacted).
  try {
    const m = await client(t, 'mallory', 'attacker');
    await m.end();
  } catch {
    /* refused */
  }
}

export const SCENARIOS = {
  'orm-app': ormApp,
  'psql-admin': psqlAdmin,
  pgbench: pgbenchSelect,
  attacks,
} as const;
export type ScenarioName = keyof typeof SCENARIOS;
