/**
 * Issue 9: limits in the startup phase, as PostgreSQL applies them.
 * - A full server answers a TLS client after the TLS negotiation, inside TLS: libpq (sslmode=require)
 *   prints "sorry, too many clients already" (53300). Measured directly on a throwaway TLS cluster
 *   with max_connections = 4, then through pgward (TLS on, limits.max_clients: 1).
 * - limits.login_timeout_ms runs from connect to AuthenticationOk (docs/configuration.md): a backend
 *   slow to send its first ReadyForQuery after authenticating does not get the client cut off, and
 *   such a client no longer counts against limits.max_unauthenticated. The slow start is a relay
 *   (hold-relay.ts) that holds the server's first ReadyForQuery until the test lets it through.
 */
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import type { Client } from 'pg';
import { CLUSTER_DB, LOCAL_PG } from '../helpers/cluster';
import { ensureTestCerts, testCertFiles, tlsClientOptions } from '../helpers/certs';
import { REPO, startGateway, stopAllGateways, type RunningGateway } from '../helpers/gateway';
import { pgClient } from '../helpers/pg-clients';
import { runPsql } from '../helpers/psql';
import { WireClient, encodeStartup, errorsOf } from '../security/wire';
import { startHoldRelay, type HoldRelay } from './hold-relay';

const execFileP = promisify(execFile);
const CLUSTER_SCRIPT = path.join(REPO, 'scripts', 'pg-cluster.sh');

let cluster: { host: string; port: number; dir: string } | undefined;
let certs: string;

beforeAll(async () => {
  certs = await ensureTestCerts();
  // A TLS cluster with four connection slots (three reserved for superusers): the fifth postgres
  // login is refused. The size goes in the script's environment (tests/helpers/cluster.ts has no
  // option for it, and a jest test's process.env does not reach child processes).
  const { stdout } = await execFileP(
    'bash',
    [CLUSTER_SCRIPT, 'start', '--tls', '--certs-dir', certs, '--owner-pid', String(process.pid)],
    { env: { ...process.env, PGWARD_CLUSTER_MAX_CONNECTIONS: '4' }, timeout: 90_000 },
  );
  const info = JSON.parse(stdout.trim().split('\n').pop() ?? '{}') as {
    host: string;
    port: number;
    dir: string;
  };
  cluster = info;
}, 180_000);

afterAll(async () => {
  await stopAllGateways();
  if (cluster) await execFileP('bash', [CLUSTER_SCRIPT, 'stop', cluster.dir], { timeout: 60_000 });
});

/** What libpq reports after "connection to server at …, port N failed:" (the port differs). */
function libpqFailure(stderr: string): string {
  const m = /failed: (.*)$/m.exec(stderr);
  return (m?.[1] ?? stderr).trim();
}

describe('a full server and a TLS client (sslmode=require)', () => {
  test('libpq reads "sorry, too many clients already" directly and through pgward', async () => {
    const srv = cluster!;
    const held: Client[] = [];
    let direct: string;
    try {
      for (let i = 0; i < 4; i++) {
        held.push(await pgClient({ host: srv.host, port: srv.port, user: 'postgres', database: CLUSTER_DB }));
      }
      const r = await runPsql({
        host: srv.host,
        port: srv.port,
        user: 'postgres',
        db: CLUSTER_DB,
        sslmode: 'require',
        args: ['-Atc', 'SELECT 1'],
      });
      expect(r.code).toBe(2);
      direct = libpqFailure(r.stderr);
      expect(direct).toBe('FATAL:  sorry, too many clients already');
    } finally {
      await Promise.all(held.map((c) => c.end()));
    }

    const files = testCertFiles(certs);
    const gw: RunningGateway = await startGateway({
      upstream: `${srv.host}:${srv.port}`,
      config: {
        audit: { sink: 'none' },
        tls: { cert_file: files.gatewayCert, key_file: files.gatewayKey },
        limits: { max_clients: 1 },
      },
    });
    const first = await pgClient({
      host: gw.host,
      port: gw.port,
      user: 'trust_user',
      database: CLUSTER_DB,
      ssl: tlsClientOptions(certs),
    });
    try {
      const r = await runPsql({
        host: gw.host,
        port: gw.port,
        user: 'trust_user',
        db: CLUSTER_DB,
        sslmode: 'require',
        args: ['-Atc', 'SELECT 1'],
      });
      expect(r.code).toBe(2);
      expect(libpqFailure(r.stderr)).toBe(direct);
    } finally {
      await first.end();
      await gw.stop();
    }
  });
});

describe('login_timeout_ms ends at AuthenticationOk', () => {
  let relay: HoldRelay;
  let gw: RunningGateway;

  beforeAll(async () => {
    relay = await startHoldRelay({ host: LOCAL_PG.host, port: LOCAL_PG.port });
    gw = await startGateway({
      upstream: `${relay.host}:${relay.port}`,
      config: { audit: { sink: 'none' }, limits: { login_timeout_ms: 1000, max_unauthenticated: 1 } },
    });
  }, 60_000);

  afterAll(async () => {
    await gw?.stop();
    await relay?.close();
  });

  test('an authenticated client whose backend is slow to be ready is not cut off, and does not count as unauthenticated', async () => {
    const a = await WireClient.connect(gw.host, gw.port);
    let b: WireClient | null = null;
    try {
      a.write(
        encodeStartup({ user: 'postgres', database: 'postgres', application_name: 'pgward-session-slow' }),
      );
      const session = await relay.nextHeld(); // the server authenticated A; its ReadyForQuery is held
      expect(session.passed[0]).toBe('R');
      expect(session.passed).toContain('K');

      // B: a silent socket opened after A. With max_unauthenticated: 1 it is admitted only if A no
      // longer counts; then it is ended by the login timeout — which, B being later, also proves A's
      // own login_timeout_ms has run out by then.
      b = await WireClient.connect(gw.host, gw.port);
      const bMsgs = await b.readToClose(10_000);
      expect(b.isClosed).toBe(true);
      expect(errorsOf(bMsgs)).toEqual([
        expect.objectContaining({ severity: 'FATAL', message: 'pgward: authentication timed out' }),
      ]);

      // A is still there: let its ReadyForQuery through; it logs in and works.
      expect(a.isClosed).toBe(false);
      session.release();
      const startup = await a.readUntil((m) => m.type === 'Z' || m.type === 'E', 10_000);
      expect(errorsOf(startup)).toEqual([]);
      expect(startup.at(-1)?.type).toBe('Z');
      const rows = await a.query('SELECT 1');
      expect(errorsOf(rows)).toEqual([]);
    } finally {
      b?.destroy();
      a.destroy();
    }
  }, 30_000);
});
