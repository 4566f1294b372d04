/**
 * Shared by the transparency tests in tests/proxy: per-file databases on the local PostgreSQL,
 * an admin-bundle gateway, process RSS sampling and a raw CancelRequest.
 */
import fs from 'node:fs';
import net from 'node:net';
import { Client } from 'pg';
import { LOCAL_PG } from '../helpers/cluster';
import { buildBundleWithData, startGateway, type RunningGateway } from '../helpers/gateway';

export const DIRECT = { host: LOCAL_PG.host, port: LOCAL_PG.port, user: LOCAL_PG.user } as const;

/**
 * A database name unique to this test process: developers run the integration project while
 * others run single files, and two runs of one file must not drop each other's database.
 */
export function uniqueDbName(base: string): string {
  return `${base}_${process.pid}`;
}

async function adminQuery(sql: string): Promise<void> {
  const c = new Client({ ...LOCAL_PG, database: 'postgres', application_name: 'pgward-proxy-setup' });
  c.on('error', () => undefined);
  await c.connect();
  try {
    await c.query(sql);
  } finally {
    await c.end();
  }
}

/** Drops (forcibly) and creates `name` on the local server, directly. Names are test-owned literals. */
export async function recreateDatabase(name: string): Promise<void> {
  if (!/^[a-z_][a-z0-9_]*$/.test(name)) throw new Error(`bad database name ${name}`);
  await adminQuery(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  await adminQuery(`CREATE DATABASE ${name}`);
}

export async function dropDatabase(name: string): Promise<void> {
  if (!/^[a-z_][a-z0-9_]*$/.test(name)) throw new Error(`bad database name ${name}`);
  await adminQuery(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
}

/** A gateway in front of the local server whose policy treats `postgres` as an admin (DDL, DO, ...). */
export async function startAdminGateway(config: Record<string, unknown> = {}): Promise<RunningGateway> {
  const bundle = await buildBundleWithData({ admins: ['postgres'] });
  return startGateway({ bundle, config: { audit: { sink: 'none' }, ...config } });
}

/** VmRSS of a process in KiB, from /proc/<pid>/status. */
export function rssKiB(pid: number): number {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const m = /^VmRSS:\s+(\d+)\s+kB$/m.exec(status);
  if (!m) throw new Error(`no VmRSS in /proc/${pid}/status`);
  return Number(m[1]);
}

/**
 * Sends a CancelRequest (protocol 3: length 16, code 80877102, pid, secret) for the key a client
 * received in BackendKeyData, and waits until the server side closes the connection.
 */
export function sendCancelRequest(
  host: string,
  port: number,
  processId: number,
  secretKey: number,
): Promise<void> {
  return new Promise((resolve, reject) => {
    const b = Buffer.alloc(16);
    b.writeInt32BE(16, 0);
    b.writeInt32BE(80877102, 4);
    b.writeInt32BE(processId, 8);
    b.writeInt32BE(secretKey, 12);
    const s = net.connect({ host, port }, () => s.write(b));
    s.setTimeout(5000, () => s.destroy(new Error('CancelRequest connection timed out')));
    s.on('data', () => undefined);
    s.once('error', reject);
    s.once('close', () => resolve());
  });
}

export function errCode(err: unknown): string | undefined {
  return err && typeof err === 'object' && 'code' in err
    ? String((err as { code: unknown }).code)
    : undefined;
}
