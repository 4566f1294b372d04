import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type tls from 'node:tls';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);

export const REPO_DIR = path.resolve(__dirname, '..', '..');
/** Stable location shared by all test runs (gitignored); pg-cluster.sh --tls uses the same directory. */
export const TEST_CERTS_DIR = path.join(REPO_DIR, 'tests', '.artifacts', 'certs');

/** Files written by scripts/make-test-certs.sh. Keys are EC P-256, mode 0600. */
export interface TestCertFiles {
  dir: string;
  /** test CA certificate (CN=pgward test CA) */
  caCert: string;
  caKey: string;
  /** PostgreSQL server: CN=localhost, SAN DNS:localhost, IP:127.0.0.1 */
  serverCert: string;
  serverKey: string;
  /** pgward gateway: CN=localhost, SAN DNS:localhost, IP:127.0.0.1, its own key */
  gatewayCert: string;
  gatewayKey: string;
  /** client certificate CN=alice */
  clientCert: string;
  clientKey: string;
}

export function testCertFiles(dir: string): TestCertFiles {
  const f = (name: string): string => path.join(dir, name);
  return {
    dir,
    caCert: f('ca.crt'),
    caKey: f('ca.key'),
    serverCert: f('server.crt'),
    serverKey: f('server.key'),
    gatewayCert: f('gateway.crt'),
    gatewayKey: f('gateway.key'),
    clientCert: f('client.crt'),
    clientKey: f('client.key'),
  };
}

/** Runs scripts/make-test-certs.sh into tests/.artifacts/certs (a no-op when complete); returns that path. */
export async function ensureTestCerts(): Promise<string> {
  const script = path.join(REPO_DIR, 'scripts', 'make-test-certs.sh');
  try {
    await execFileAsync('bash', [script, TEST_CERTS_DIR], { timeout: 60_000 });
  } catch (err) {
    const stderr = (err as { stderr?: string }).stderr ?? '';
    throw new Error(`make-test-certs.sh ${TEST_CERTS_DIR} failed: ${stderr.trim() || String(err)}`);
  }
  return TEST_CERTS_DIR;
}

/**
 * Node TLS client options that verify a server certificate from the test CA (hostname checked against
 * `servername`, default localhost); `clientCert: true` also presents client.crt (CN=alice).
 */
export function tlsClientOptions(
  certsDir: string,
  opts: { servername?: string; clientCert?: boolean } = {},
): tls.ConnectionOptions {
  const files = testCertFiles(certsDir);
  const options: tls.ConnectionOptions = {
    ca: readFileSync(files.caCert),
    servername: opts.servername ?? 'localhost',
    rejectUnauthorized: true,
  };
  if (opts.clientCert === true) {
    options.cert = readFileSync(files.clientCert);
    options.key = readFileSync(files.clientKey);
  }
  return options;
}
