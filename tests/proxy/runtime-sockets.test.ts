/**
 * Which sockets carry the sessions (session/bun-socket.ts): under Bun, a plain-TCP listener and
 * plain-TCP upstream connections use Bun's own sockets; client TLS, upstream TLS and
 * PGWARD_BUN_SOCKETS=node keep node:net. Under Node.js everything is node:net. The suite runs under
 * both runtimes (make integration, make integration-bun), so the same scenarios check both socket
 * layers: ordering of a large pipelined burst in both directions, and a client that reads slowly.
 */
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import net from 'node:net';
import { Client } from 'pg';
import { testCertFiles, ensureTestCerts } from '../helpers/certs';
import { startGateway, stopAllGateways, type RunningGateway } from '../helpers/gateway';
import {
  dataRows,
  encodeQuery,
  encodeStartup,
  splitBackendMessages,
  readErrorFields,
  WireClient,
} from '../security/wire';

jest.setTimeout(60_000);

const underBun = (process.env.PGWARD_TEST_RUNTIME ?? '').trim().toLowerCase() === 'bun';
const own = underBun ? 'bun' : 'node';

function sockets(gw: RunningGateway): unknown {
  return gw.logs.find((l) => l.msg === 'pgward listening')?.sockets;
}

const admin = new Client({ host: '127.0.0.1', port: 5432, user: 'postgres', database: 'postgres' });
beforeAll(() => admin.connect());
afterAll(async () => {
  await admin.end();
  await stopAllGateways();
});

/** Until the backend of `app` waits to write to its client (polls pg_stat_activity every 10 ms). */
async function untilBackendWaitsOnClient(app: string, timeoutMs = 20_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const r = await admin.query(
      `SELECT 1 FROM pg_stat_activity WHERE application_name = $1 AND wait_event = 'ClientWrite'`,
      [app],
    );
    if (r.rowCount === 1) return;
    if (Date.now() > until) throw new Error(`the backend of ${app} never waited on its client`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

describe('socket layer chosen at start', () => {
  test(`plain TCP: clients and upstream on ${own} sockets`, async () => {
    const gw = await startGateway();
    expect(sockets(gw)).toEqual({ clients: own, upstream: own });
    await gw.stop();
  });

  test('PGWARD_BUN_SOCKETS=node: node:net on both sides', async () => {
    const gw = await startGateway({ env: { PGWARD_BUN_SOCKETS: 'node' } });
    expect(sockets(gw)).toEqual({ clients: 'node', upstream: 'node' });
    await gw.stop();
  });

  test('client TLS configured: the listener stays on node:net (TLS upgrade after SSLRequest)', async () => {
    const certs = testCertFiles(await ensureTestCerts());
    const gw = await startGateway({
      config: { tls: { cert_file: certs.gatewayCert, key_file: certs.gatewayKey } },
    });
    expect(sockets(gw)).toEqual({ clients: 'node', upstream: own });
    await gw.stop();
  });

  test('upstream TLS wanted: upstream connections stay on node:net/node:tls', async () => {
    const gw = await startGateway({ config: { upstream: { tls: { mode: 'prefer' } } } });
    expect(sockets(gw)).toEqual({ clients: own, upstream: 'node' });
    // prefer against a server without TLS: plain, and it works.
    const c = await WireClient.connect(gw.host, gw.port);
    try {
      await c.startup({ user: 'postgres', database: 'postgres' });
      expect(dataRows(await c.query('SELECT 41 + 1'))).toEqual([['42']]);
    } finally {
      c.destroy();
    }
    await gw.stop();
  });
});

describe('bytes and order through the socket layer', () => {
  let gw: RunningGateway;
  beforeAll(async () => {
    gw = await startGateway();
  });

  test('5,000 queries pipelined in one write: every answer, in order', async () => {
    const c = await WireClient.connect(gw.host, gw.port);
    try {
      await c.startup({ user: 'postgres', database: 'postgres', application_name: 'pgward-sockets-burst' });
      const n = 5000;
      // ~1.1 MB in one write: more than a socket buffer, so the gateway's writes upstream queue.
      const pad = 'x'.repeat(200);
      c.write(Buffer.concat(Array.from({ length: n }, (_, i) => encodeQuery(`SELECT ${i}, '${pad}'`))));
      const msgs = await c.readReady(n, 30_000);
      const rows = dataRows(msgs);
      expect(rows).toHaveLength(n);
      rows.forEach((r, i) => expect(r).toEqual([String(i), pad]));
    } finally {
      c.destroy();
    }
  });

  test('a 64 MB result to a client that reads in pauses arrives whole and in order', async () => {
    const c = await WireClient.connect(gw.host, gw.port);
    try {
      await c.startup({ user: 'postgres', database: 'postgres', application_name: 'pgward-sockets-slow' });
      const sql = `SELECT g, md5(g::text) || repeat('y', 60000) FROM generate_series(1, 1100) g`;
      const expected = createHash('sha256');
      for (let g = 1; g <= 1100; g++) {
        expected.update(`${g}|${createHash('md5').update(String(g)).digest('hex')}${'y'.repeat(60000)}\n`);
      }
      c.write(encodeQuery(sql));
      // Stop reading three times, each until the server itself waits on the client (wait_event
      // ClientWrite): every buffer on the way is full and the gateway's client writes queued.
      const paused = (async () => {
        for (let i = 0; i < 3; i++) {
          c.socket.pause();
          await untilBackendWaitsOnClient('pgward-sockets-slow');
          const more = once(c.socket, 'data');
          c.socket.resume();
          await more;
        }
      })();
      const msgs = await c.readReady(1, 30_000);
      await paused;
      const got = createHash('sha256');
      for (const [a, b] of dataRows(msgs)) got.update(`${a}|${b}\n`);
      expect(got.digest('hex')).toBe(expected.digest('hex'));
    } finally {
      c.destroy();
    }
  });

  test('a FATAL written while the client is still sending arrives, then a clean end (no reset)', async () => {
    // After authentication, a message header claiming more than limits.max_message_bytes and
    // part of its body: pgward answers FATAL 08P01 and ends the connection, and the client sends
    // more body bytes as the FATAL arrives. Closing a socket with unread input resets it; pgward
    // must half-close and read on, so the FATAL is not lost to a reset.
    const sock = net.connect(gw.port, gw.host);
    let received = Buffer.alloc(0);
    let error: string | null = null;
    let ended = false;
    let ready: () => void = () => undefined;
    const readyForQuery = new Promise<void>((r) => (ready = r));
    sock.on('data', (b: Buffer) => {
      received = Buffer.concat([received, b]);
      if (received.includes(Buffer.from('Z\0\0\0\x05'))) ready();
    });
    sock.on('error', (e) => (error = e.message));
    sock.on('end', () => (ended = true));
    await new Promise<void>((r) => sock.once('connect', () => r()));
    sock.write(
      encodeStartup({ user: 'postgres', database: 'postgres', application_name: 'pgward-sockets-fatal' }),
    );
    await readyForQuery;
    const header = Buffer.alloc(5);
    header.write('Q', 0, 'latin1');
    header.writeInt32BE(1024 * 1024 * 1024, 1);
    let rfq = received.length;
    sock.write(Buffer.concat([header, Buffer.alloc(64 * 1024, 0x41)]));
    // More body bytes the moment the FATAL arrives: they reach pgward after it has answered.
    sock.on('data', () => {
      if (rfq >= 0 && received.length > rfq && !sock.writableEnded) {
        rfq = -1;
        sock.write(Buffer.alloc(16 * 1024, 0x41));
      }
    });
    await new Promise<void>((r) => sock.once('close', () => r()));
    const fatal = splitBackendMessages(received)
      .messages.filter((m) => m.type === 'E')
      .map((m) => readErrorFields(m.body));
    expect(fatal).toHaveLength(1);
    expect(fatal[0]).toMatchObject({ severity: 'FATAL', code: '08P01' });
    expect(error).toBeNull();
    expect(ended).toBe(true);
  });
});
