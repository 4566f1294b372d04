/**
 * Cancels towards a TLS upstream travel over TLS: pgward opens the cancel connection with an
 * SSLRequest and sends the CancelRequest inside the handshake's session, as it does for its
 * sessions (PostgreSQL reads a CancelRequest after SSLRequest like a StartupMessage). A relay
 * between pgward and the server records the first bytes of every connection.
 * https://www.postgresql.org/docs/current/protocol-flow.html#PROTOCOL-FLOW-CANCELING-REQUESTS
 */
import net from 'node:net';
import { Client } from 'pg';
import { testCertFiles } from '../helpers/certs';
import { CLUSTER_DB, type Cluster, startCluster, stopAllClusters } from '../helpers/cluster';
import { startGateway, stopAllGateways, type RunningGateway } from '../helpers/gateway';
import { sendCancelRequest } from '../proxy/proxy-helpers';

jest.setTimeout(120_000);

const SSL_REQUEST = Buffer.from([0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f]);

let cluster: Cluster;
let gw: RunningGateway;
let relay: net.Server;
/** The first 8 bytes pgward sent on each connection, in connection order. */
const firstBytes: Buffer[] = [];

beforeAll(async () => {
  cluster = await startCluster({ tls: true });
  relay = net.createServer((from) => {
    const to = net.connect({ host: cluster.host, port: cluster.port });
    const slot = firstBytes.push(Buffer.alloc(0)) - 1;
    from.on('data', (c: Buffer) => {
      const seen = firstBytes[slot] as Buffer;
      if (seen.length < 8) firstBytes[slot] = Buffer.concat([seen, c]).subarray(0, 8);
    });
    from.pipe(to).pipe(from);
    from.on('error', () => to.destroy());
    to.on('error', () => from.destroy());
  });
  await new Promise<void>((r) => relay.listen(0, '127.0.0.1', r));
  const port = (relay.address() as net.AddressInfo).port;
  const f = testCertFiles(cluster.certsDir as string);
  gw = await startGateway({
    upstream: `127.0.0.1:${port}`,
    args: ['--workers', '2'],
    config: { audit: { sink: 'none' }, upstream: { tls: { mode: 'verify-ca', ca_file: f.caCert } } },
  });
}, 180_000);

afterAll(async () => {
  await stopAllGateways();
  relay?.close();
  await stopAllClusters();
});

test('the cancel connection negotiates TLS first and the query ends', async () => {
  const c = new Client({ host: gw.host, port: gw.port, user: 'trust_user', database: CLUSTER_DB });
  c.on('error', () => undefined);
  await c.connect();
  try {
    const k = c as unknown as { processID: number; secretKey: number };
    const done = c.query('SELECT pg_sleep(30)').then(
      () => null,
      (err: { code?: string }) => err.code ?? 'error',
    );
    // Wait until the server runs it (asked through the gateway: a second session sees it active).
    const probe = new Client({ host: gw.host, port: gw.port, user: 'trust_user', database: CLUSTER_DB });
    await probe.connect();
    try {
      const until = Date.now() + 15_000;
      const active = async (): Promise<boolean> =>
        (
          await probe.query(
            "SELECT 1 FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(30)' AND state = 'active'",
          )
        ).rowCount === 1;
      while (!(await active())) {
        if (Date.now() > until) throw new Error('the query never ran');
        await new Promise((r) => setTimeout(r, 20));
      }
    } finally {
      await probe.end();
    }
    const before = firstBytes.length;
    const t0 = Date.now();
    await sendCancelRequest(gw.host, gw.port, k.processID, k.secretKey);
    expect(await done).toBe('57014');
    expect(Date.now() - t0).toBeLessThan(1000);
    // One more upstream connection: the cancel, opened with SSLRequest like every other one.
    expect(firstBytes.length).toBe(before + 1);
    for (const b of firstBytes) expect(b.equals(SSL_REQUEST)).toBe(true);
  } finally {
    await c.end();
  }
});
