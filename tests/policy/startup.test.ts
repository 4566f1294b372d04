/**
 * Startup rules are decided before anything is sent upstream. The proof: the gateway's upstream
 * is a TCP listener of this test (fake-upstream.ts) that counts the sessions reaching it — a denied
 * startup never makes one, an admitted one does (the control).
 */
import { buildBundleWithData, startGateway, type RunningGateway } from '../helpers/gateway';
import { ensureTestCerts, testCertFiles, tlsClientOptions } from '../helpers/certs';
import { pgClient } from '../helpers/pg-clients';
import { runPsql } from '../helpers/psql';
import { rejection, sleep, withDirect, type PgErrorLike, policySuite } from './policy-helpers';
import { startFakeUpstream, type FakeUpstream } from './fake-upstream';
import { PROTOCOL_3_0, encodeStartupMessage } from '../../gateway/src/protocol';
import { RawClient, errorOf } from './raw-client';

const DB = 'pgward_policy_startup';

async function connectError(
  gw: RunningGateway,
  user: string,
  extra: Record<string, unknown> = {},
): Promise<PgErrorLike> {
  return rejection(
    pgClient({ host: gw.host, port: gw.port, user, database: DB, connectTimeoutMs: 5000, config: extra }),
  );
}

function expectStartupDenied(err: PgErrorLike, reason: string, code = '28000'): void {
  expect(err).toMatchObject({ severity: 'FATAL', code, message: `permission denied by policy: ${reason}` });
  expect(err.detail).toMatch(/Decision /);
}

policySuite(DB, { gateway: false });

describe('shipped policies, upstream = a listener of this test', () => {
  let fake: FakeUpstream;
  let gw: RunningGateway;
  beforeAll(async () => {
    fake = await startFakeUpstream();
    gw = await startGateway({ upstream: fake.address });
  });
  afterAll(async () => {
    await gw?.stop();
    await fake?.close();
  });

  test('blocked user mallory: FATAL 28000 with the policy message; the upstream never saw a connection', async () => {
    expectStartupDenied(await connectError(gw, 'mallory'), 'user mallory is blocked');
    const r = await runPsql({
      host: gw.host,
      port: gw.port,
      user: 'mallory',
      db: DB,
      args: ['-c', 'SELECT 1'],
    });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('FATAL:  permission denied by policy: user mallory is blocked');
    // Raw: exactly one ErrorResponse, then the gateway closes.
    const c = await RawClient.open(gw.host, gw.port);
    c.send(
      encodeStartupMessage(PROTOCOL_3_0, [
        ['user', 'mallory'],
        ['database', DB],
      ]),
    );
    const ms = await c.readToClose(5000);
    expect(ms.map((m) => m.type)).toEqual(['E']);
    expect(c.closed).toBe(true);
    expect(errorOf(ms[0]!)).toMatchObject({ severity: 'FATAL', code: '28000' });
    await sleep(100);
    expect(fake.connections()).toBe(0);
    expect(fake.sessions()).toBe(0);
    const line = await gw.waitForLog((l) => l.msg === 'startup denied' && l.user === 'mallory');
    expect(line.reasons).toEqual(['user mallory is blocked']);
  });

  test('control: an admitted user does reach the upstream', async () => {
    await rejection(
      pgClient({ host: gw.host, port: gw.port, user: 'app', database: DB, connectTimeoutMs: 5000 }),
    );
    await sleep(100);
    expect(fake.sessions()).toBe(1);
  });

  test('TLS-required user without TLS: FATAL 28000, nothing forwarded', async () => {
    const before = fake.sessions();
    expectStartupDenied(await connectError(gw, 'auditor'), 'user auditor must connect with TLS');
    await sleep(50);
    expect(fake.sessions()).toBe(before);
  });

  test('replication=database and -c role=… at startup: FATAL 28000, nothing forwarded', async () => {
    const before = fake.sessions();
    for (const [params, reason] of [
      [{ replication: 'database' }, 'replication connections are reserved for admins'],
      [{ options: '-c role=postgres' }, 'setting role at startup is reserved for admins'],
    ] as const) {
      const c = await RawClient.open(gw.host, gw.port);
      c.send(encodeStartupMessage(PROTOCOL_3_0, Object.entries({ user: 'app', database: DB, ...params })));
      const ms = await c.readToClose(5000);
      expect(ms.map((m) => m.type)).toEqual(['E']);
      expect(errorOf(ms[0]!)).toMatchObject({
        severity: 'FATAL',
        code: '28000',
        message: `permission denied by policy: ${reason}`,
      });
    }
    await sleep(50);
    expect(fake.sessions()).toBe(before);
  });
});

describe('allowed networks (bundle: analyst only from 10.0.0.0/8)', () => {
  let fake: FakeUpstream;
  let gw: RunningGateway;
  beforeAll(async () => {
    fake = await startFakeUpstream();
    gw = await startGateway({
      upstream: fake.address,
      bundle: await buildBundleWithData({ allowed_networks: { analyst: ['10.0.0.0/8'] } }),
    });
  }, 120_000);
  afterAll(async () => {
    await gw?.stop();
    await fake?.close();
  });

  test('analyst from 127.0.0.1 is refused before the upstream is contacted; app (no entry) is admitted', async () => {
    expectStartupDenied(
      await connectError(gw, 'analyst'),
      'client address 127.0.0.1 is not in the networks allowed for user analyst',
    );
    await sleep(50);
    expect(fake.sessions()).toBe(0);
    await rejection(
      pgClient({ host: gw.host, port: gw.port, user: 'app', database: DB, connectTimeoutMs: 5000 }),
    );
    await sleep(100);
    expect(fake.sessions()).toBe(1);
  });
});

describe('shipped policies in front of the real server', () => {
  let gw: RunningGateway;
  beforeAll(async () => {
    const files = testCertFiles(await ensureTestCerts());
    gw = await startGateway({
      config: { tls: { cert_file: files.gatewayCert, key_file: files.gatewayKey } },
    });
  }, 60_000);
  afterAll(async () => {
    await gw?.stop();
  });

  test('auditor over TLS is admitted; without TLS refused', async () => {
    const certs = await ensureTestCerts();
    const c = await pgClient({
      host: gw.host,
      port: gw.port,
      user: 'auditor',
      database: DB,
      ssl: tlsClientOptions(certs),
    });
    try {
      expect((await c.query('SELECT current_user AS u')).rows).toEqual([{ u: 'auditor' }]);
    } finally {
      await c.end();
    }
    expectStartupDenied(await connectError(gw, 'auditor'), 'user auditor must connect with TLS');
  });

  test('analyst from loopback is admitted by the shipped networks', async () => {
    const c = await pgClient({ host: gw.host, port: gw.port, user: 'analyst', database: DB });
    try {
      expect((await c.query('SELECT current_user AS u')).rows).toEqual([{ u: 'analyst' }]);
    } finally {
      await c.end();
    }
  });

  test("the server's own session counter: a direct mallory login counts, five through pgward do not", async () => {
    // pg_stat_database.sessions (PostgreSQL 14+) counts every session ever established in a database.
    const sessions = async (): Promise<number> =>
      withDirect('postgres', async (c) =>
        Number(
          (await c.query('SELECT sessions FROM pg_stat_database WHERE datname = $1', [DB])).rows[0].sessions,
        ),
      );
    const s0 = await sessions();
    const d = await pgClient({ host: '127.0.0.1', port: 5432, user: 'mallory', database: DB });
    await d.end();
    let s1 = s0;
    for (let i = 0; i < 60 && s1 === s0; i++) {
      await sleep(50);
      s1 = await sessions();
    }
    expect(s1).toBe(s0 + 1); // the control: the counter sees a real login of mallory
    const attempts = await Promise.all(Array.from({ length: 5 }, () => connectError(gw, 'mallory')));
    for (const e of attempts) expectStartupDenied(e, 'user mallory is blocked');
    await sleep(1500);
    expect(await sessions()).toBe(s1);
  });
});

describe('no bundle loaded', () => {
  let fake: FakeUpstream;
  let gw: RunningGateway;
  beforeAll(async () => {
    fake = await startFakeUpstream();
    gw = await startGateway({ upstream: fake.address, bundle: '/nonexistent/pgward-bundle.tar.gz' });
  });
  afterAll(async () => {
    await gw?.stop();
    await fake?.close();
  });

  test('clients get FATAL 57P03 and nothing is forwarded; /readyz is 503; the load failure is logged with its code', async () => {
    const err = await connectError(gw, 'app');
    expect(err).toMatchObject({ severity: 'FATAL', code: '57P03' });
    expect(err.message).toMatch(/no policy bundle is loaded/);
    const r = await runPsql({
      host: gw.host,
      port: gw.port,
      user: 'postgres',
      db: DB,
      args: ['-c', 'SELECT 1'],
    });
    expect(r.stderr).toContain('no policy bundle is loaded');
    await sleep(100);
    expect(fake.sessions()).toBe(0);
    const ready = await gw.admin('/readyz');
    expect(ready.status).toBe(503);
    expect(await ready.json()).toMatchObject({ bundle: false, missing: ['bundle'] });
    expect(fake.sessions()).toBe(0);
    const line = await gw.waitForLog(
      (l) => typeof l.code === 'string' && String(l.code).startsWith('PGWARD_ERR_BUNDLE'),
    );
    expect(line.code).toBe('PGWARD_ERR_BUNDLE_LOAD');
    const metrics = await (await gw.admin('/metrics')).text();
    expect(metrics).toMatch(/pgward_errors_total\{code="PGWARD_ERR_BUNDLE_LOAD"\} [1-9]/);
    expect(metrics).toMatch(
      /pgward_decisions_total\{outcome="deny",phase="startup",code="PGWARD_ERR_POLICY_NO_BUNDLE",rule="pgward.policy_no_bundle"\} [1-9]/,
    );
  });
});
