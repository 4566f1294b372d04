/**
 * Authentication passes through pgward untouched, with TLS terminated at pgward and negotiated
 * again, independently, towards PostgreSQL: every auth method × client↔pgward TLS × pgward↔server
 * TLS, the server's own error texts, TLS-required listeners, and SCRAM channel binding (which a
 * TLS-terminating gateway cannot honour and must refuse clearly, never downgrade).
 */
import { testCertFiles, tlsClientOptions } from '../helpers/certs';
import {
  CLUSTER_DB,
  CLUSTER_PASSWORDS,
  type Cluster,
  startCluster,
  stopAllClusters,
} from '../helpers/cluster';
import { type RunningGateway, startGateway, stopAllGateways } from '../helpers/gateway';
import { pgClient } from '../helpers/pg-clients';
import { type ProcessResult, runPsql } from '../helpers/psql';

jest.setTimeout(60_000);

let cluster: Cluster;
let certsDir: string;
/** client TLS offered; upstream plaintext */
let gwPlainUp: RunningGateway;
/** client TLS offered; upstream verify-full against the test CA */
let gwTlsUp: RunningGateway;
/** client TLS required; upstream plaintext */
let gwRequire: RunningGateway;

beforeAll(async () => {
  cluster = await startCluster({ tls: true });
  if (cluster.certsDir === null) throw new Error('TLS cluster without certs_dir');
  certsDir = cluster.certsDir;
  const f = testCertFiles(certsDir);
  const upstream = `${cluster.host}:${cluster.port}`;
  const clientTls = { cert_file: f.gatewayCert, key_file: f.gatewayKey };
  [gwPlainUp, gwTlsUp, gwRequire] = await Promise.all([
    startGateway({ upstream, config: { tls: clientTls, upstream: { tls: { mode: 'disable' } } } }),
    startGateway({
      upstream,
      config: { tls: clientTls, upstream: { tls: { mode: 'verify-full', ca_file: f.caCert } } },
    }),
    startGateway({ upstream, config: { tls: { ...clientTls, require: true } } }),
  ]);
}, 120_000);

afterAll(async () => {
  await stopAllGateways();
  await stopAllClusters();
});

type User = 'trust_user' | 'md5_user' | 'scram_user' | 'ssl_only_user';

function password(user: User): string | undefined {
  return user === 'trust_user' ? undefined : CLUSTER_PASSWORDS[user];
}

interface Via {
  gw: RunningGateway;
  clientTls: boolean;
  user: User;
  password?: string | undefined;
  channelBinding?: 'disable' | 'prefer' | 'require';
  input?: string;
  timeoutMs?: number;
}

/** psql through a gateway: sslmode=verify-full with the test CA, or disable. */
function psqlVia(v: Via): Promise<ProcessResult> {
  const pw = 'password' in v ? v.password : password(v.user);
  return runPsql({
    host: v.gw.host,
    port: v.gw.port,
    user: v.user,
    db: CLUSTER_DB,
    ...(pw !== undefined ? { password: pw } : {}),
    ...(v.clientTls
      ? { sslmode: 'verify-full', sslrootcert: testCertFiles(certsDir).caCert }
      : { sslmode: 'disable' }),
    env: v.channelBinding ? { PGCHANNELBINDING: v.channelBinding } : {},
    input: v.input ?? 'SELECT current_user, ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid();\n\\conninfo\n',
    args: ['-At'],
    timeoutMs: v.timeoutMs ?? 20_000,
  });
}

describe('every auth method × client TLS × upstream TLS', () => {
  const cases: Array<[User, boolean, boolean]> = [];
  for (const user of ['trust_user', 'md5_user', 'scram_user'] as const) {
    for (const clientTls of [false, true])
      for (const upTls of [false, true]) cases.push([user, clientTls, upTls]);
  }

  test.each(cases)(
    '%s, client TLS %s, upstream TLS %s: logs in, select current_user',
    async (user, clientTls, upTls) => {
      // libpq's default channel_binding=prefer fails by design when both legs are TLS (tested below).
      const both = user === 'scram_user' && clientTls && upTls;
      const r = await psqlVia({
        gw: upTls ? gwTlsUp : gwPlainUp,
        clientTls,
        user,
        ...(both ? { channelBinding: 'disable' as const } : {}),
      });
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      const row = r.stdout.split('\n')[0];
      // The upstream sees pgward's own connection: TLS exactly when upstream.tls.mode asks for it.
      expect(row).toBe(`${user}|${upTls ? 't' : 'f'}`);
      if (clientTls) expect(r.stdout).toMatch(/SSL connection \(protocol: TLSv1\.[23]/);
      else expect(r.stdout).not.toContain('SSL connection');
    },
  );

  test('node-postgres, scram_user, TLS on both legs (verify-full of the gateway cert)', async () => {
    const client = await pgClient({
      host: gwTlsUp.host,
      port: gwTlsUp.port,
      user: 'scram_user',
      database: CLUSTER_DB,
      password: CLUSTER_PASSWORDS.scram_user,
      ssl: tlsClientOptions(certsDir),
    });
    try {
      const r = await client.query<{ u: string; ssl: boolean }>(
        'SELECT current_user AS u, ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()',
      );
      expect(r.rows).toEqual([{ u: 'scram_user', ssl: true }]);
    } finally {
      await client.end();
    }
  });
});

describe('errors and refusals', () => {
  test('a wrong md5 password gets the server’s own error text', async () => {
    for (const [gw, clientTls] of [
      [gwPlainUp, false],
      [gwTlsUp, true],
    ] as const) {
      const r = await psqlVia({ gw, clientTls, user: 'md5_user', password: 'wrong' });
      expect(r.code).toBe(2);
      expect(r.stdout).toBe('');
      expect(r.stderr).toContain('password authentication failed for user "md5_user"');
    }
  });

  test('a wrong SCRAM password gets the server’s own error text', async () => {
    const r = await psqlVia({ gw: gwTlsUp, clientTls: false, user: 'scram_user', password: 'md5pass' });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('password authentication failed for user "scram_user"');
  });

  test('sslmode=verify-full against pgward’s gateway certificate; a wrong root is refused', async () => {
    const ok = await psqlVia({ gw: gwPlainUp, clientTls: true, user: 'trust_user', input: '\\conninfo\n' });
    expect(ok.stderr).toBe('');
    expect(ok.stdout).toMatch(/SSL connection/);

    const bad = await runPsql({
      host: gwPlainUp.host,
      port: gwPlainUp.port,
      user: 'trust_user',
      db: CLUSTER_DB,
      sslmode: 'verify-full',
      sslrootcert: testCertFiles(certsDir).clientCert,
      args: ['-Atc', 'SELECT 1'],
      timeoutMs: 20_000,
    });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('certificate verify failed');
  });

  test('ssl_only_user works only when pgward↔server is TLS (whatever the client leg)', async () => {
    for (const clientTls of [false, true]) {
      const refused = await psqlVia({ gw: gwPlainUp, clientTls, user: 'ssl_only_user' });
      expect(refused.code).toBe(2);
      expect(refused.stderr).toContain('no encryption');

      const ok = await psqlVia({ gw: gwTlsUp, clientTls, user: 'ssl_only_user', channelBinding: 'disable' });
      expect(ok.stderr).toBe('');
      expect(ok.stdout.split('\n')[0]).toBe('ssl_only_user|t');
    }
  });

  test('tls.require: a plaintext client gets a FATAL; a TLS client gets in', async () => {
    const plain = await psqlVia({ gw: gwRequire, clientTls: false, user: 'trust_user' });
    expect(plain.code).toBe(2);
    expect(plain.stdout).toBe('');
    expect(plain.stderr).toMatch(/FATAL: {2}pgward: TLS is required/);

    const secure = await psqlVia({ gw: gwRequire, clientTls: true, user: 'md5_user' });
    expect(secure.stderr).toBe('');
    expect(secure.stdout.split('\n')[0]).toBe('md5_user|f');
  });
});

describe('SCRAM channel binding through a TLS-terminating gateway', () => {
  test('libpq default channel_binding=prefer, TLS on both legs: a clear FATAL from pgward', async () => {
    const r = await psqlVia({ gw: gwTlsUp, clientTls: true, user: 'scram_user', channelBinding: 'prefer' });
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain(
      'FATAL:  pgward: SCRAM channel binding cannot pass through a TLS-terminating gateway',
    );
    // Without the environment variable at all (libpq's own default) the same.
    const dflt = await psqlVia({ gw: gwTlsUp, clientTls: true, user: 'scram_user' });
    expect(dflt.stderr).toContain('SCRAM channel binding cannot pass through a TLS-terminating gateway');
  });

  test('channel_binding=disable works', async () => {
    const r = await psqlVia({ gw: gwTlsUp, clientTls: true, user: 'scram_user', channelBinding: 'disable' });
    expect(r.stderr).toBe('');
    expect(r.stdout.split('\n')[0]).toBe('scram_user|t');
  });

  test('channel_binding=require: a clear client-side error, never a hang', async () => {
    const t0 = Date.now();
    // runPsql rejects (fails the test) if psql is still running after 10 s.
    const r = await psqlVia({
      gw: gwTlsUp,
      clientTls: true,
      user: 'scram_user',
      channelBinding: 'require',
      timeoutMs: 10_000,
    });
    expect(Date.now() - t0).toBeLessThan(10_000);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/channel binding is required/);
  });

  test('node-postgres with enableChannelBinding over TLS: the same clear FATAL, no downgrade', async () => {
    await expect(
      pgClient({
        host: gwTlsUp.host,
        port: gwTlsUp.port,
        user: 'scram_user',
        database: CLUSTER_DB,
        password: CLUSTER_PASSWORDS.scram_user,
        ssl: tlsClientOptions(certsDir),
        config: { enableChannelBinding: true },
      }),
    ).rejects.toMatchObject({
      code: '28000',
      message: 'pgward: SCRAM channel binding cannot pass through a TLS-terminating gateway',
    });
  });
});

describe('SCRAM channel binding when pgward presents the server certificate', () => {
  // tls-server-end-point binds to a hash of the server certificate: with the database server's
  // own certificate and key on pgward, the binding holds end to end and SCRAM-SHA-256-PLUS passes.
  let gwSameCert: RunningGateway;
  beforeAll(async () => {
    const f = testCertFiles(certsDir);
    gwSameCert = await startGateway({
      upstream: `${cluster.host}:${cluster.port}`,
      config: {
        tls: { cert_file: f.serverCert, key_file: f.serverKey },
        upstream: { tls: { mode: 'verify-full', ca_file: f.caCert } },
      },
    });
  }, 60_000);

  test.each([['prefer'], ['require']] as const)(
    'channel_binding=%s logs in with channel binding',
    async (cb) => {
      const r = await psqlVia({ gw: gwSameCert, clientTls: true, user: 'scram_user', channelBinding: cb });
      expect(r.stderr).toBe('');
      expect(r.stdout.split('\n')[0]).toBe('scram_user|t');
    },
  );

  test('a wrong password is still the server’s own error', async () => {
    const r = await psqlVia({ gw: gwSameCert, clientTls: true, user: 'scram_user', password: 'wrong' });
    expect(r.stderr).toContain('password authentication failed for user "scram_user"');
  });
});
