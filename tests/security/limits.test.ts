/**
 * Resource limits and connection lifecycle through the real gateway: client caps, unauthenticated
 * caps, the login timeout, bounded memory under a client that stops reading, losing either peer,
 * and graceful shutdown.
 */
import { readFileSync } from 'node:fs';
import type { Client } from 'pg';
import { CLUSTER_DB, type Cluster, startCluster, stopAllClusters } from '../helpers/cluster';
import { type RunningGateway, startGateway, stopAllGateways } from '../helpers/gateway';
import { pgClient } from '../helpers/pg-clients';
import { encodeBind, encodeExecute, encodeParse, encodeSync } from '../../gateway/src/protocol';
import {
  type BackendMessage,
  WireClient,
  dataRows,
  encodeCopyData,
  encodeCopyDone,
  encodeQuery,
  encodeStartup,
  errorsOf,
  exchange,
  readErrorFields,
} from './wire';

jest.setTimeout(60_000);

let cluster: Cluster;
let admin: Client;
let gwMain: RunningGateway;
let gwClients: RunningGateway;
let gwUnauth: RunningGateway;
let gwLogin: RunningGateway;

beforeAll(async () => {
  cluster = await startCluster();
  admin = await pgClient({
    host: cluster.host,
    port: cluster.port,
    user: 'postgres',
    database: CLUSTER_DB,
    applicationName: 'pgward-limits-admin',
  });
  const upstream = `${cluster.host}:${cluster.port}`;
  [gwMain, gwClients, gwUnauth, gwLogin] = await Promise.all([
    startGateway({ upstream }),
    startGateway({ upstream, config: { limits: { max_clients: 3 } } }),
    startGateway({ upstream, config: { limits: { max_unauthenticated: 2 } } }),
    startGateway({ upstream, config: { limits: { login_timeout_ms: 500 } } }),
  ]);
}, 120_000);

afterAll(async () => {
  await admin?.end();
  await stopAllGateways();
  await stopAllClusters();
});

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function loggedIn(gw: RunningGateway, app: string): Promise<WireClient> {
  const c = await WireClient.connect(gw.host, gw.port);
  await c.startup({ user: 'trust_user', database: CLUSTER_DB, application_name: app });
  return c;
}

async function backendPid(c: WireClient): Promise<number> {
  return Number(dataRows(await c.query('SELECT pg_backend_pid()'))[0]?.[0]);
}

async function backendAlive(pid: number): Promise<boolean> {
  const r = await admin.query('SELECT 1 FROM pg_stat_activity WHERE pid = $1', [pid]);
  return r.rowCount === 1;
}

async function waitFor(what: string, pred: () => Promise<boolean>, timeoutMs: number): Promise<number> {
  const t0 = Date.now();
  while (Date.now() - t0 < timeoutMs) {
    if (await pred()) return Date.now() - t0;
    await sleep(50);
  }
  throw new Error(`${what}: not within ${timeoutMs} ms`);
}

async function waitUntilSleeping(pid: number): Promise<void> {
  await waitFor(
    `backend ${pid} running pg_sleep`,
    async () =>
      (
        await admin.query(
          `SELECT 1 FROM pg_stat_activity WHERE pid = $1 AND state = 'active' AND query LIKE '%pg_sleep%'`,
          [pid],
        )
      ).rowCount === 1,
    5000,
  );
}

function rssBytes(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m) throw new Error(`no VmRSS for ${pid}`);
  return Number(m[1]) * 1024;
}

function fatal(msgs: BackendMessage[]): { code: string; message: string } | undefined {
  const e = msgs.filter((m) => m.type === 'E').map((m) => readErrorFields(m.body));
  return e.find((f) => f.severity === 'FATAL');
}

describe('connection caps', () => {
  test('limits.max_clients: 3 → the 4th client gets FATAL 53300 "too many clients"; a freed slot is reusable', async () => {
    const opts = { host: gwClients.host, port: gwClients.port, user: 'trust_user', database: CLUSTER_DB };
    const clients = [await pgClient(opts), await pgClient(opts), await pgClient(opts)];
    try {
      await expect(pgClient(opts)).rejects.toMatchObject({
        code: '53300',
        message: 'sorry, too many clients already',
      });
      await (clients.pop() as Client).end();
      await waitFor(
        'a slot frees up',
        async () => {
          try {
            const c = await pgClient(opts);
            clients.push(c);
            return true;
          } catch {
            return false;
          }
        },
        3000,
      );
      expect((await (clients[2] as Client).query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
    } finally {
      await Promise.all(clients.map((c) => c.end()));
    }
  });

  test('limits.max_unauthenticated: 2 → with two silent sockets, a third gets FATAL 53300 after its StartupMessage', async () => {
    const silent = [
      await WireClient.connect(gwUnauth.host, gwUnauth.port),
      await WireClient.connect(gwUnauth.host, gwUnauth.port),
    ];
    try {
      await sleep(200);
      // As PostgreSQL: the refusal comes once SSL/GSS negotiation is over, after the StartupMessage.
      const r = await exchange(
        gwUnauth.host,
        gwUnauth.port,
        encodeStartup({ user: 'trust_user', database: CLUSTER_DB }),
        3000,
      );
      expect(r.closed).toBe(true);
      expect(r.messages.map((m) => m.type)).toEqual(['E']);
      expect(errorsOf(r.messages)[0]).toMatchObject({
        severity: 'FATAL',
        code: '53300',
        message: 'sorry, too many clients already',
      });
      // Authenticated sessions do not count: once the silent ones go, logins work again.
    } finally {
      for (const s of silent) s.destroy();
    }
    await waitFor(
      'a login after the silent sockets left',
      async () => {
        try {
          (await loggedIn(gwUnauth, 'pgward-limits-unauth')).destroy();
          return true;
        } catch {
          return false;
        }
      },
      3000,
    );
  });
});

describe('login timeout (limits.login_timeout_ms: 500)', () => {
  test('a socket that never finishes its startup packet is closed with FATAL after ~0.5 s', async () => {
    const partial = encodeStartup({ user: 'trust_user', database: CLUSTER_DB }).subarray(0, 6);
    const r = await exchange(gwLogin.host, gwLogin.port, partial, 5000);
    expect(r.closed).toBe(true);
    expect(r.elapsedMs).toBeGreaterThanOrEqual(450);
    expect(r.elapsedMs).toBeLessThan(2000);
    expect(r.messages.map((m) => m.type)).toEqual(['E']);
    expect(errorsOf(r.messages)[0]).toMatchObject({
      severity: 'FATAL',
      message: 'pgward: authentication timed out',
    });
  });

  test('a client that never answers the password request: FATAL after ~0.5 s, the upstream connection goes too', async () => {
    const app = 'pgward-limits-login-md5';
    const c = await WireClient.connect(gwLogin.host, gwLogin.port);
    const t0 = Date.now();
    try {
      c.write(encodeStartup({ user: 'md5_user', database: CLUSTER_DB, application_name: app }));
      expect((await c.next())?.type).toBe('R');
      const rest = await c.readToClose(5000);
      expect(Date.now() - t0).toBeLessThan(2000);
      expect(fatal(rest)).toMatchObject({ message: 'pgward: authentication timed out' });
    } finally {
      c.destroy();
    }
    await waitFor(
      'the upstream connection of the timed-out login is gone',
      async () =>
        (await admin.query('SELECT 1 FROM pg_stat_activity WHERE application_name = $1', [app])).rowCount ===
        0,
      3000,
    );
  });
});

test('before authentication a client message above 64 KiB is refused from its header, unbuffered', async () => {
  const c = await WireClient.connect(gwMain.host, gwMain.port);
  try {
    c.write(
      encodeStartup({ user: 'md5_user', database: CLUSTER_DB, application_name: 'pgward-limits-auth-size' }),
    );
    expect((await c.next())?.type).toBe('R');
    // A PasswordMessage header claiming 1 MiB, and no body: the limit after login is 256 MiB.
    const header = Buffer.alloc(5);
    header[0] = 0x70;
    header.writeInt32BE(1024 * 1024, 1);
    c.write(header);
    const rest = await c.readToClose(5000);
    expect(fatal(rest)).toMatchObject({ code: '08P01' });
    expect(String(fatal(rest)?.message)).toContain('exceeds the limit of 65539');
  } finally {
    c.destroy();
  }
});

describe('backpressure', () => {
  test('a client that stops reading a 500 MB result: gateway RSS stays bounded, the server waits on ClientWrite', async () => {
    const c = await loggedIn(gwMain, 'pgward-limits-slow');
    const pid = await backendPid(c);
    const gwPid = gwMain.proc.pid as number;
    const before = rssBytes(gwPid);
    c.socket.pause();
    c.write(encodeQuery(`SELECT repeat('x', 1000000) FROM generate_series(1, 500)`));
    try {
      // The server produces far faster than this; give it time to fill every buffer on the way.
      await waitFor(
        'the backend blocks on ClientWrite',
        async () =>
          (
            await admin.query(
              `SELECT 1 FROM pg_stat_activity WHERE pid = $1 AND wait_event = 'ClientWrite'`,
              [pid],
            )
          ).rowCount === 1,
        10_000,
      );
      let peak = before;
      for (let i = 0; i < 10; i++) {
        peak = Math.max(peak, rssBytes(gwPid));
        await sleep(200);
      }
      expect(peak - before).toBeLessThan(200 * 1024 * 1024);

      // Reading again resumes the flow: the result really was streaming.
      c.socket.removeAllListeners('data');
      let received = 0;
      await new Promise<void>((resolve) => {
        c.socket.on('data', (chunk: Buffer) => {
          received += chunk.length;
          if (received > 50 * 1024 * 1024) {
            c.socket.pause();
            resolve();
          }
        });
        c.socket.resume();
      });
      expect(received).toBeGreaterThan(50 * 1024 * 1024);
    } finally {
      c.destroy();
    }
    await waitFor('the backend of the slow client is gone', () => backendAlive(pid).then((a) => !a), 5000);
  });
});

describe('losing a peer', () => {
  test.each([
    ['idle', false],
    ['busy', true],
  ])(
    'upstream loss (%s): pg_terminate_backend → the client gets the error and the connection closes',
    async (_n, busy) => {
      const c = await loggedIn(gwMain, 'pgward-limits-uploss');
      try {
        const pid = await backendPid(c);
        if (busy) {
          c.write(encodeQuery('SELECT pg_sleep(30)'));
          await waitUntilSleeping(pid);
        }
        await admin.query('SELECT pg_terminate_backend($1)', [pid]);
        const msgs = await c.readToClose(3000);
        expect(c.isClosed).toBe(true);
        expect(fatal(msgs)).toMatchObject({
          code: '57P01',
          message: 'terminating connection due to administrator command',
        });
      } finally {
        c.destroy();
      }
    },
  );

  test('client loss while idle: the upstream backend disappears within 2 s', async () => {
    const c = await loggedIn(gwMain, 'pgward-limits-cliloss-idle');
    const pid = await backendPid(c);
    c.destroy();
    await waitFor('the idle backend is gone', () => backendAlive(pid).then((a) => !a), 2000);
  });

  test('client loss mid-query (pg_sleep(30)): the upstream backend disappears within 2 s', async () => {
    const c = await loggedIn(gwMain, 'pgward-limits-cliloss-busy');
    const pid = await backendPid(c);
    c.write(encodeQuery('SELECT pg_sleep(30)'));
    await waitUntilSleeping(pid);
    c.destroy();
    try {
      await waitFor('the busy backend is gone', () => backendAlive(pid).then((a) => !a), 2000);
    } finally {
      await admin.query('SELECT pg_terminate_backend($1)', [pid]);
    }
  });
});

describe('graceful shutdown', () => {
  test('SIGTERM after a COPY FROM STDIN run through the extended protocol (Sync pipelined, as libpq does): idle at once', async () => {
    const gw = await startGateway({
      upstream: `${cluster.host}:${cluster.port}`,
      // No endpoint-propagation delay: these cases are about the drain that follows it (tests/ops/drain).
      config: { limits: { shutdown_delay_ms: 0, shutdown_timeout_ms: 10_000 } },
    });
    const c = await loggedIn(gw, 'pgward-limits-shutdown-copy');
    try {
      c.write(encodeQuery('CREATE TEMP TABLE copy_sync (a int)'));
      await c.readReady();
      // Parse/Bind/Execute/Sync in one write: the server reaches the Sync in copy mode and ignores it.
      c.write(
        Buffer.concat([
          encodeParse('', 'COPY copy_sync FROM STDIN', []),
          encodeBind('', '', []),
          encodeExecute(''),
          encodeSync(),
        ]),
      );
      await c.readUntil((m) => m.type === 'G');
      c.write(Buffer.concat([encodeCopyData('1\n2\n'), encodeCopyDone(), encodeSync()]));
      const done = await c.readReady();
      expect(done.map((m) => m.type)).toEqual(['C', 'Z']);
      const t0 = Date.now();
      const exited = gw.stop(15_000);
      const msgs = await c.readToClose(5000);
      // Far below the 10 s shutdown timeout (a session wrongly counted busy waits all of it); loose
      // enough for two shared cores under load.
      expect(Date.now() - t0).toBeLessThan(3000);
      expect(fatal(msgs)).toMatchObject({ code: '57P01' });
      expect(await exited).toBe(0);
    } finally {
      c.destroy();
    }
  });

  test('SIGTERM: the idle client gets FATAL 57P01 at once, the busy one finishes its query first; exit 0', async () => {
    const gw = await startGateway({
      upstream: `${cluster.host}:${cluster.port}`,
      // No endpoint-propagation delay: these cases are about the drain that follows it (tests/ops/drain).
      config: { limits: { shutdown_delay_ms: 0, shutdown_timeout_ms: 10_000 } },
    });
    const idle = await loggedIn(gw, 'pgward-limits-shutdown-idle');
    const busy = await loggedIn(gw, 'pgward-limits-shutdown-busy');
    try {
      const busyPid = await backendPid(busy);
      busy.write(encodeQuery(`SELECT pg_sleep(1), 'done' AS r`));
      await waitUntilSleeping(busyPid);
      const t0 = Date.now();
      const exited = gw.stop(15_000);

      const first = await idle.next(5000);
      // Far below the 10 s shutdown timeout (a session wrongly counted busy waits all of it); loose
      // enough for two shared cores under load.
      expect(Date.now() - t0).toBeLessThan(3000);
      const idleMsgs = [first as BackendMessage, ...(await idle.readToClose(5000))];
      expect(idleMsgs.map((m) => m.type)).toEqual(['E']);
      expect(fatal(idleMsgs)).toMatchObject({ code: '57P01' });

      const busyMsgs = await busy.readToClose(5000);
      expect(busyMsgs.map((m) => m.type)).toEqual(['T', 'D', 'C', 'Z', 'E']);
      expect(dataRows(busyMsgs)).toEqual([['', 'done']]);
      expect(fatal(busyMsgs)).toMatchObject({ code: '57P01' });

      expect(await exited).toBe(0);
    } finally {
      idle.destroy();
      busy.destroy();
    }
  });
});
