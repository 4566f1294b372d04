import { execFile } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { ensureTestCerts, REPO_DIR, testCertFiles, tlsClientOptions } from './helpers/certs';
import {
  CLUSTER_DB,
  CLUSTER_PASSWORDS,
  type Cluster,
  ensureLocalTestDb,
  LOCAL_PG,
  LOCAL_TEST_DB,
  startCluster,
  stopAllClusters,
} from './helpers/cluster';
import { pgClient, postgresJs } from './helpers/pg-clients';
import { freePort } from './helpers/ports';
import { runPgbench, runPsql } from './helpers/psql';

const execFileAsync = promisify(execFile);

function canConnect(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

describe('throwaway PostgreSQL cluster with TLS', () => {
  let cluster: Cluster;
  let certsDir: string;

  beforeAll(async () => {
    cluster = await startCluster({ tls: true });
    if (cluster.certsDir === null) throw new Error('TLS cluster without certs_dir');
    certsDir = cluster.certsDir;
  });

  afterAll(async () => {
    await stopAllClusters();
  });

  const psql = (user: string, password: string | undefined, sql: string, extra: { sslmode?: string } = {}) =>
    runPsql({
      host: cluster.host,
      port: cluster.port,
      user,
      db: CLUSTER_DB,
      ...(password !== undefined ? { password } : {}),
      sslmode: extra.sslmode ?? 'disable',
      args: ['-At', '-c', sql],
    });

  test('trust_user logs in without a password', async () => {
    const r = await psql('trust_user', undefined, 'SELECT current_user, current_database()');
    expect(r.stderr).toBe('');
    expect(r.stdout.trim()).toBe('trust_user|pgward_test');
    expect(r.code).toBe(0);
  });

  test('md5_user: stored as md5, right password accepted, wrong one refused by the server', async () => {
    const stored = await runPsql({
      host: cluster.host,
      port: cluster.port,
      user: 'postgres',
      db: 'postgres',
      sslmode: 'disable',
      args: ['-At', '-c', "SELECT left(rolpassword, 3) FROM pg_authid WHERE rolname = 'md5_user'"],
    });
    expect(stored.stdout.trim()).toBe('md5');

    const ok = await psql('md5_user', CLUSTER_PASSWORDS.md5_user, 'SELECT current_user');
    expect(ok.stdout.trim()).toBe('md5_user');
    expect(ok.code).toBe(0);

    const bad = await psql('md5_user', 'wrong', 'SELECT 1');
    expect(bad.code).toBe(2);
    expect(bad.stdout).toBe('');
    expect(bad.stderr).toContain('password authentication failed for user "md5_user"');
  });

  test('scram_user: right password accepted, wrong one refused', async () => {
    const ok = await psql('scram_user', CLUSTER_PASSWORDS.scram_user, 'SELECT current_user');
    expect(ok.stdout.trim()).toBe('scram_user');
    const bad = await psql('scram_user', 'md5pass', 'SELECT 1');
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('password authentication failed for user "scram_user"');
  });

  test('TLS with sslmode=verify-full against the test CA', async () => {
    const r = await runPsql({
      host: cluster.host,
      port: cluster.port,
      user: 'scram_user',
      db: CLUSTER_DB,
      password: CLUSTER_PASSWORDS.scram_user,
      sslmode: 'verify-full',
      sslrootcert: testCertFiles(certsDir).caCert,
      input: 'SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid();\n',
      args: ['-At'],
    });
    expect(r.stderr).toBe('');
    expect(r.stdout.trim()).toBe('t');
  });

  test('verify-full fails with a root that did not sign the server certificate', async () => {
    const r = await runPsql({
      host: cluster.host,
      port: cluster.port,
      user: 'trust_user',
      db: CLUSTER_DB,
      sslmode: 'verify-full',
      sslrootcert: testCertFiles(certsDir).gatewayCert,
      args: ['-At', '-c', 'SELECT 1'],
    });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('certificate verify failed');
  });

  test('ssl_only_user is refused without TLS and accepted with it, client certificate CN=alice', async () => {
    const plain = await psql('ssl_only_user', CLUSTER_PASSWORDS.ssl_only_user, 'SELECT 1');
    expect(plain.code).toBe(2);
    expect(plain.stderr).toContain('no encryption');

    const files = testCertFiles(certsDir);
    const secure = await runPsql({
      host: cluster.host,
      port: cluster.port,
      user: 'ssl_only_user',
      db: CLUSTER_DB,
      password: CLUSTER_PASSWORDS.ssl_only_user,
      sslmode: 'verify-full',
      sslrootcert: files.caCert,
      sslcert: files.clientCert,
      sslkey: files.clientKey,
      args: ['-At', '-c', 'SELECT current_user, client_dn FROM pg_stat_ssl WHERE pid = pg_backend_pid()'],
    });
    expect(secure.stderr).toBe('');
    expect(secure.stdout.trim()).toBe('ssl_only_user|/O=pgward tests/CN=alice');
  });

  test('node-postgres and postgres.js verify the server certificate through the helpers', async () => {
    const ssl = tlsClientOptions(certsDir);
    const client = await pgClient({
      host: cluster.host,
      port: cluster.port,
      user: 'readonly',
      database: CLUSTER_DB,
      password: CLUSTER_PASSWORDS.readonly,
      ssl,
    });
    try {
      const r = await client.query<{ u: string; ssl: boolean }>(
        'SELECT current_user AS u, ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()',
      );
      expect(r.rows).toEqual([{ u: 'readonly', ssl: true }]);
    } finally {
      await client.end();
    }

    const sql = postgresJs({
      host: cluster.host,
      port: cluster.port,
      user: 'scram_user',
      database: CLUSTER_DB,
      password: CLUSTER_PASSWORDS.scram_user,
      ssl,
    });
    try {
      const rows = await sql<{ u: string; ssl: boolean }[]>`
        SELECT current_user AS u, ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()`;
      expect([...rows]).toEqual([{ u: 'scram_user', ssl: true }]);
    } finally {
      await sql.end({ timeout: 5 });
    }

    await expect(
      pgClient({
        host: cluster.host,
        port: cluster.port,
        user: 'trust_user',
        database: CLUSTER_DB,
        ssl: { ...ssl, servername: 'not-localhost.invalid' },
      }),
    ).rejects.toThrow(/not-localhost\.invalid/);
  });

  test('the test roles may create tables in pgward_test', async () => {
    const r = await psql(
      'scram_user',
      CLUSTER_PASSWORDS.scram_user,
      'CREATE TABLE scram_t (id int); INSERT INTO scram_t VALUES (1); SELECT count(*) FROM scram_t',
    );
    expect(r.stderr).toBe('');
    expect(r.stdout.trim()).toBe('1');
  });

  test('pgbench runs a custom script through the helper', async () => {
    const script = path.join(os.tmpdir(), `pgward-pgbench-${process.pid}.sql`);
    await writeFile(script, 'SELECT 1;\n');
    try {
      const r = await runPgbench([
        '-n',
        '-h',
        cluster.host,
        '-p',
        String(cluster.port),
        '-U',
        'trust_user',
        '-c',
        '2',
        '-t',
        '20',
        '-f',
        script,
        CLUSTER_DB,
      ]);
      expect(r.stderr).not.toMatch(/error/i);
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(/number of transactions actually processed: 40\/40/);
    } finally {
      await rm(script, { force: true });
    }
  });
});

describe('cluster lifecycle and script failures', () => {
  afterAll(async () => {
    await stopAllClusters();
  });

  test('a plain cluster on a requested port; stop closes the port and removes the directory', async () => {
    const port = await freePort();
    const cluster = await startCluster({ port });
    expect(cluster.port).toBe(port);
    expect(cluster.tls).toBe(false);
    expect(cluster.certsDir).toBeNull();
    expect(existsSync(path.join(cluster.socketDir, `.s.PGSQL.${port}`))).toBe(true);
    const r = await runPsql({
      host: cluster.host,
      port,
      user: 'trust_user',
      db: CLUSTER_DB,
      sslmode: 'require',
      args: ['-At', '-c', 'SELECT 1'],
    });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('server does not support SSL');

    await cluster.stop();
    await cluster.stop();
    expect(existsSync(cluster.dir)).toBe(false);
    expect(await canConnect(cluster.host, port)).toBe(false);
  });

  test('starting on a port in use fails loudly and leaves nothing behind', async () => {
    await expect(startCluster({ port: LOCAL_PG.port })).rejects.toThrow(
      /pg-cluster\.sh start .* failed[\s\S]*could not bind[\s\S]*postgres did not start/,
    );
  });

  test('stop refuses a directory that is not a test cluster', async () => {
    await expect(
      execFileAsync('bash', [path.join(REPO_DIR, 'scripts', 'pg-cluster.sh'), 'stop', os.tmpdir()]),
    ).rejects.toMatchObject({
      code: 1,
      stderr: expect.stringContaining('is not a pgward test cluster') as unknown,
    });
  });

  test('test certificates: every file present, keys 0600, idempotent', async () => {
    const dir = await ensureTestCerts();
    const files = testCertFiles(dir);
    const before = statSync(files.caCert).mtimeMs;
    expect(await ensureTestCerts()).toBe(dir);
    expect(statSync(files.caCert).mtimeMs).toBe(before);
    for (const key of [files.caKey, files.serverKey, files.gatewayKey, files.clientKey]) {
      expect(statSync(key).mode & 0o777).toBe(0o600);
    }
    const { stdout } = await execFileAsync('openssl', [
      'x509',
      '-in',
      files.gatewayCert,
      '-noout',
      '-ext',
      'subjectAltName',
    ]);
    expect(stdout).toContain('DNS:localhost');
    expect(stdout).toContain('IP Address:127.0.0.1');
  });
});

describe('local PostgreSQL at 127.0.0.1:5432', () => {
  test('database postgres is reachable and pgward_it exists after ensureLocalTestDb()', async () => {
    const direct = await runPsql({
      ...LOCAL_PG,
      db: 'postgres',
      sslmode: 'disable',
      args: ['-At', '-c', 'SELECT current_database()'],
    });
    expect(direct.stdout.trim()).toBe('postgres');

    const db = await ensureLocalTestDb();
    expect(db).toEqual({ ...LOCAL_PG, database: LOCAL_TEST_DB });
    await ensureLocalTestDb();
    const client = await pgClient(db);
    try {
      const r = await client.query<{ db: string }>('SELECT current_database() AS db');
      expect(r.rows[0]?.db).toBe(LOCAL_TEST_DB);
    } finally {
      await client.end();
    }
  });
});
