/**
 * Shared by the policy integration tests: roles and a per-file database on the local PostgreSQL,
 * direct (gateway-free) connections to check what really happened, pg clients that remember the
 * last ReadyForQuery status, and assertions for the policy error.
 */
import type { EventEmitter } from 'node:events';
import { Client, type ClientConfig } from 'pg';
import { LOCAL_PG } from '../helpers/cluster';
import { startGateway, type GatewayOptions, type RunningGateway } from '../helpers/gateway';
import { pgClient } from '../helpers/pg-clients';

/** Login roles the shipped data.json names (readonly, analyst, mallory, auditor) plus an ordinary app user. */
export const ROLES = ['readonly', 'analyst', 'mallory', 'auditor', 'app'] as const;

function directConfig(database: string): ClientConfig {
  return { ...LOCAL_PG, database, application_name: 'pgward-policy-direct', connectionTimeoutMillis: 10_000 };
}

/** A connection straight to the local server as the superuser, bypassing pgward. */
export async function direct(database = 'postgres'): Promise<Client> {
  const c = new Client(directConfig(database));
  c.on('error', () => undefined);
  await c.connect();
  return c;
}

export async function withDirect<T>(database: string, fn: (c: Client) => Promise<T>): Promise<T> {
  const c = await direct(database);
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

function codeOf(err: unknown): string | undefined {
  return err && typeof err === 'object' && 'code' in err
    ? String((err as { code: unknown }).code)
    : undefined;
}

/** Creates the login roles if missing; safe when several test files race. */
export async function ensureRoles(): Promise<void> {
  await withDirect('postgres', async (c) => {
    for (const r of ROLES) {
      const found = await c.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [r]);
      if (found.rowCount !== 0) continue;
      try {
        await c.query(`CREATE ROLE ${r} LOGIN`);
      } catch (err) {
        // 42710 duplicate_object, 23505 when a concurrent CREATE ROLE won the race on pg_authid.
        if (codeOf(err) !== '42710' && codeOf(err) !== '23505') throw err;
      }
    }
  });
}

/** public.t(id, v) holding ids 1..10, owned by app, readable and writable by the read-only principals. */
const T_TABLE = `
  CREATE TABLE public.t (id int PRIMARY KEY, v int);
  INSERT INTO public.t SELECT g, g FROM generate_series(1, 10) g;
  ALTER TABLE public.t OWNER TO app;
  GRANT SELECT, INSERT, UPDATE, DELETE ON public.t TO readonly, analyst;`;

/** Puts public.t of `database` back as recreateDatabase made it (a case that failed may have dropped it). */
export async function resetT(database: string): Promise<void> {
  await withDirect(database, (c) => c.query(`DROP TABLE IF EXISTS public.t; ${T_TABLE}`));
}

/**
 * (Re)creates `name` with: t(id, v) holding ids 1..10 (owned by app), the sensitive tables
 * public.credit_cards and public.users, sequence s, and public.sneaky() whose body writes to t.
 * Read-only principals are GRANTed writes on t on purpose: the server's privileges are not what
 * stops them, pgward is (policy, then default_transaction_read_only).
 */
export async function recreateDatabase(name: string): Promise<void> {
  if (!/^pgward_policy_[a-z0-9_]+$/.test(name)) throw new Error(`bad database name ${name}`);
  await ensureRoles();
  await withDirect('postgres', async (c) => {
    await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    await c.query(`CREATE DATABASE ${name}`);
  });
  await withDirect(name, async (c) => {
    await c.query(`
      GRANT CREATE, USAGE ON SCHEMA public TO app;
      ${T_TABLE}
      CREATE TABLE public.credit_cards (id int PRIMARY KEY, number text);
      INSERT INTO public.credit_cards VALUES (1, '4111-1111-1111-1111'), (2, '5500-0000-0000-0004');
      CREATE TABLE public.users (id int PRIMARY KEY, name text);
      INSERT INTO public.users VALUES (1, 'alice'), (2, 'bob');
      CREATE SEQUENCE public.s;
      ALTER TABLE public.credit_cards OWNER TO app;
      ALTER TABLE public.users OWNER TO app;
      ALTER SEQUENCE public.s OWNER TO app;
      GRANT SELECT ON ALL TABLES IN SCHEMA public TO readonly, analyst;
      GRANT USAGE, SELECT ON SEQUENCE public.s TO readonly, analyst;
      CREATE FUNCTION public.sneaky() RETURNS void LANGUAGE sql AS 'INSERT INTO public.t VALUES (1000 + (SELECT count(*) FROM public.t)::int, 0)';
      GRANT EXECUTE ON FUNCTION public.sneaky() TO readonly, analyst, app;
    `);
  });
}

export async function dropDatabase(name: string): Promise<void> {
  await withDirect('postgres', (c) => c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`));
}

export interface PolicySuite {
  /** The suite's gateway, started before its first test. */
  readonly gw: RunningGateway;
}

export interface PolicySuiteOptions {
  /** startGateway's options; false: the suite starts its own gateways. */
  gateway?: GatewayOptions | false;
  /** After the database is made, before the gateway starts. */
  before?: () => Promise<void>;
  /** First thing after the suite, before the gateway stops and the database is dropped. */
  after?: () => Promise<void>;
}

/**
 * The setup every policy suite shares, registered as its beforeAll/afterAll: `database`
 * recreated with the fixture (recreateDatabase), then a gateway with the shipped bundle in front
 * of the local server; after the suite, the gateway stopped and the database dropped.
 */
export function policySuite(database: string, opts: PolicySuiteOptions = {}): PolicySuite {
  let gw: RunningGateway | undefined;
  beforeAll(async () => {
    await recreateDatabase(database);
    await opts.before?.();
    if (opts.gateway !== false) gw = await startGateway(opts.gateway ?? {});
  }, 60_000);
  afterAll(async () => {
    await opts.after?.();
    await gw?.stop();
    await dropDatabase(database);
  });
  return {
    get gw(): RunningGateway {
      if (gw === undefined) throw new Error(`policySuite(${database}): no gateway (yet)`);
      return gw;
    },
  };
}

/**
 * What a test must find unchanged after a denial, read directly: tables and their row counts
 * (t's content hashed), functions, rules, triggers, extensions, large objects, settings in
 * postgresql.auto.conf that the tests could have written.
 */
export async function snapshot(database: string): Promise<Record<string, unknown>> {
  return withDirect(database, async (c) => {
    const tables = await c.query<{ relname: string; kind: string }>(
      `SELECT n.nspname || '.' || c.relname AS relname, c.relkind AS kind FROM pg_class c
         JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast') AND c.relkind IN ('r', 'v', 'm', 'S')
        ORDER BY 1`,
    );
    const counts: Record<string, number> = {};
    for (const r of tables.rows) {
      if (r.kind === 'r')
        counts[r.relname] = Number((await c.query(`SELECT count(*) AS n FROM ${r.relname}`)).rows[0].n);
    }
    const q = async (sql: string): Promise<unknown[]> => (await c.query(sql)).rows;
    return {
      tables: tables.rows.map((r) => r.relname),
      counts,
      t: await q(
        `SELECT md5(string_agg(id || ':' || coalesce(v::text, 'null'), ',' ORDER BY id)) AS h FROM public.t`,
      ),
      columns: await q(
        `SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = 'public' ORDER BY 1, 2`,
      ),
      functions: await q(
        `SELECT p.proname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = 'public' ORDER BY 1`,
      ),
      rules: await q(`SELECT rulename FROM pg_rules WHERE schemaname = 'public' ORDER BY 1`),
      triggers: await q(`SELECT tgname FROM pg_trigger WHERE NOT tgisinternal ORDER BY 1`),
      extensions: await q(`SELECT extname FROM pg_extension ORDER BY 1`),
      large_objects: await q(`SELECT count(*)::int AS n FROM pg_largeobject_metadata`),
      auto_conf: await q(
        `SELECT name, setting FROM pg_file_settings WHERE sourcefile LIKE '%postgresql.auto.conf' ORDER BY 1`,
      ),
    };
  });
}

/** A pg client whose `status()` is the transaction status of the last ReadyForQuery. */
export interface TrackedClient {
  client: Client;
  /**
   * Waits for the ReadyForQuery that ends the current request (pg rejects a query on its
   * ErrorResponse, which may arrive in an earlier TCP chunk than the ReadyForQuery), then returns its status.
   */
  status(): Promise<string>;
  end(): Promise<void>;
}

export async function connectAs(
  gw: Pick<RunningGateway, 'host' | 'port'>,
  user: string,
  database: string,
  config: ClientConfig = {},
): Promise<TrackedClient> {
  const client = await pgClient({ host: gw.host, port: gw.port, user, database, config });
  let last = 'I';
  (client as unknown as { connection: EventEmitter }).connection.on(
    'readyForQuery',
    (m: { status: string }) => {
      last = m.status;
    },
  );
  const status = async (): Promise<string> => {
    const deadline = Date.now() + 5000;
    while (!(client as unknown as { readyForQuery: boolean }).readyForQuery && Date.now() < deadline)
      await sleep(2);
    return last;
  };
  return { client, status, end: () => client.end().catch(() => undefined) };
}

export interface PgErrorLike {
  code?: string;
  message: string;
  detail?: string;
  severity?: string;
}

/** Awaits a promise that must reject; returns the error. */
export async function rejection(p: Promise<unknown>): Promise<PgErrorLike> {
  try {
    await p;
  } catch (err) {
    return err as PgErrorLike;
  }
  throw new Error('expected the query to fail, it succeeded');
}

/** The error pgward sends for a denied statement: code, `permission denied by policy: <first reason>`, decision id in detail. */
export function expectPolicyError(err: PgErrorLike, reason: string, code = '42501'): void {
  expect({ code: err.code, message: err.message }).toEqual({
    code,
    message: expect.stringContaining(`permission denied by policy: `) as unknown as string,
  });
  expect(err.message.slice('permission denied by policy: '.length)).toContain(reason);
  expect(err.detail ?? '').toMatch(/Decision [^ ]+\.$/);
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** One connection per user through a gateway, opened on first use and shared by the tests of a file. */
export class ClientPool {
  private readonly clients = new Map<string, TrackedClient>();

  constructor(
    private readonly gateway: () => Pick<RunningGateway, 'host' | 'port'>,
    private readonly database: string,
  ) {}

  async as(user: string): Promise<TrackedClient> {
    let c = this.clients.get(user);
    if (!c) {
      c = await connectAs(this.gateway(), user, this.database);
      this.clients.set(user, c);
    }
    return c;
  }

  /** A failed assertion must not leave a shared client inside a transaction for the next case. */
  async rollbackOpen(): Promise<void> {
    for (const c of this.clients.values())
      if ((await c.status()) !== 'I') await c.client.query('ROLLBACK').catch(() => undefined);
  }

  async endAll(): Promise<void> {
    for (const c of this.clients.values()) await c.end();
    this.clients.clear();
  }
}
