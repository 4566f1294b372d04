import type tls from 'node:tls';
import { Client, type ClientConfig } from 'pg';
import postgres from 'postgres';

export interface ConnectOptions {
  host: string;
  port: number;
  user: string;
  database: string;
  password?: string;
  /** TLS options (e.g. from tlsClientOptions()); omitted or false: no TLS */
  ssl?: tls.ConnectionOptions | false;
  /** default 'pgward-test' */
  applicationName?: string;
  /** default 10 000 ms */
  connectTimeoutMs?: number;
}

const CONNECT_TIMEOUT_MS = 10_000;
const QUERY_TIMEOUT_MS = 30_000;

/**
 * A connected node-postgres Client. Client-side query timeout (default 30 s, nothing extra is sent in
 * the startup packet). An 'error' listener is attached so a connection dropped by the server (or the
 * gateway) fails the pending query instead of crashing the test worker; `config` is merged last.
 */
export async function pgClient(
  opts: ConnectOptions & { queryTimeoutMs?: number; config?: ClientConfig },
): Promise<Client> {
  const config: ClientConfig = {
    host: opts.host,
    port: opts.port,
    user: opts.user,
    database: opts.database,
    application_name: opts.applicationName ?? 'pgward-test',
    connectionTimeoutMillis: opts.connectTimeoutMs ?? CONNECT_TIMEOUT_MS,
    query_timeout: opts.queryTimeoutMs ?? QUERY_TIMEOUT_MS,
    ssl: opts.ssl ?? false,
    ...(opts.password !== undefined ? { password: opts.password } : {}),
    ...opts.config,
  };
  const client = new Client(config);
  client.on('error', () => undefined);
  try {
    await client.connect();
  } catch (err) {
    await client.end().catch(() => undefined);
    throw err;
  }
  return client;
}

/**
 * A postgres.js `sql` instance (lazy: it connects on the first query). Defaults: `max: 1`,
 * connect_timeout 10 s, idle_timeout 5 s, notices ignored; `max` and any `options` pass through and win.
 * Call `await sql.end()` when done.
 */
export function postgresJs(
  opts: ConnectOptions & { max?: number; options?: postgres.Options<Record<string, never>> },
): postgres.Sql {
  const options: postgres.Options<Record<string, never>> = {
    host: opts.host,
    port: opts.port,
    user: opts.user,
    database: opts.database,
    ssl: opts.ssl ?? false,
    max: opts.max ?? 1,
    connect_timeout: Math.ceil((opts.connectTimeoutMs ?? CONNECT_TIMEOUT_MS) / 1000),
    idle_timeout: 5,
    onnotice: () => undefined,
    connection: { application_name: opts.applicationName ?? 'pgward-test' },
    ...(opts.password !== undefined ? { password: opts.password } : {}),
    ...opts.options,
  };
  return postgres(options);
}
