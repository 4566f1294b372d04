/**
 * Two pgward instances configured as peers (A with two workers, so its primary takes forwards; B
 * one process): a CancelRequest sent to the instance that did not issue the key is forwarded over
 * the HMAC-authenticated peer channel and ends the query, with peer ids in the keys (peer_bits 1)
 * and without (peer_bits 0: a key no session holds is sent to every peer). Forwards with a wrong
 * MAC, replays and forged keys cancel nothing.
 */
import net from 'node:net';
import { encodePeerCancel } from '../../gateway/src/cluster/peer-channel';
import { startGateway, stopAllGateways, type RunningGateway } from '../helpers/gateway';
import { freePort } from '../helpers/ports';
import { sendCancelRequest } from '../proxy/proxy-helpers';
import { startSleeper, waitForSleeping, type Sleeper } from './support';

jest.setTimeout(90_000);

const SECRET = 'pgward-peers-test-secret';
describe.each([1, 0])('peer_bits %i', (peerBits) => {
  let a: RunningGateway;
  let b: RunningGateway;
  let peerA = 0;
  let peerB = 0;

  beforeAll(async () => {
    peerA = await freePort();
    peerB = await freePort();
    const peering = (id: number, port: number) => ({
      audit: { sink: 'none' },
      cluster: {
        peer_bits: peerBits,
        peer_id: peerBits === 0 ? 0 : id,
        peer_listen: `127.0.0.1:${port}`,
        peers: [`127.0.0.1:${peerA}`, `localhost:${peerB}`],
        peer_secret: SECRET,
      },
    });
    a = await startGateway({ args: ['--workers', '2'], config: peering(0, peerA) });
    b = await startGateway({ config: peering(1, peerB) });
  });

  afterAll(async () => {
    await stopAllGateways();
  });

  async function sleepers(n: number, seconds: number): Promise<Sleeper[]> {
    const out: Sleeper[] = [];
    for (let i = 0; i < n; i++) {
      const gw = i % 2 === 0 ? a : b;
      out.push(await startSleeper(gw.host, gw.port, seconds));
    }
    await waitForSleeping(n);
    return out;
  }

  /** Sends raw bytes to a peer port and waits for the connection to close. */
  function sendRaw(port: number, bytes: Buffer): Promise<void> {
    return new Promise((resolve) => {
      const s = net.connect({ host: '127.0.0.1', port }, () => s.end(bytes));
      s.on('error', () => resolve());
      s.on('close', () => resolve());
      s.resume();
    });
  }

  test('a cancel sent to the other instance ends each of 20 pg_sleep(30) within 1 s', async () => {
    const all = await sleepers(20, 30);
    try {
      // The first key bit names the replica that issued it.
      if (peerBits === 1) expect(all.map((s) => s.secretKey >>> 31)).toEqual(all.map((_, i) => i % 2));
      const sentAt: number[] = [];
      for (const [i, s] of all.entries()) {
        const other = i % 2 === 0 ? b : a;
        sentAt.push(Date.now());
        await sendCancelRequest(other.host, other.port, s.processId, s.secretKey);
      }
      const results = await Promise.all(all.map((s) => s.done));
      for (const [i, r] of results.entries()) {
        expect(r.code).toBe('57014');
        expect(r.at - (sentAt[i] as number)).toBeLessThan(1000);
      }
    } finally {
      await Promise.all(all.map((s) => s.client.end().catch(() => undefined)));
    }
  });

  test('forged forwards and forged keys cancel nothing', async () => {
    const [sa, sb] = await sleepers(2, 3);
    if (!sa || !sb) throw new Error('no sleepers');
    try {
      const keyOf = (s: Sleeper): Buffer => {
        const k = Buffer.alloc(4);
        k.writeInt32BE(s.secretKey);
        return k;
      };
      // The right key under a wrong secret: refused (bad MAC) by both peer listeners.
      const wrongMac = encodePeerCancel(Buffer.from('not-the-secret'), {
        processId: sa.processId,
        secretKey: keyOf(sa),
      });
      await sendRaw(peerA, wrongMac);
      const wrongMacB = encodePeerCancel(Buffer.from('not-the-secret'), {
        processId: sb.processId,
        secretKey: keyOf(sb),
      });
      await sendRaw(peerB, wrongMacB);
      await a.waitForLog((l) => l.msg === 'forwarded cancel refused' && l.reason === 'bad MAC');
      await b.waitForLog((l) => l.msg === 'forwarded cancel refused' && l.reason === 'bad MAC');
      // A correctly signed forward of a forged key (one bit flipped past the routing bits).
      const forged = keyOf(sa);
      forged[3] = (forged[3] as number) ^ 1;
      await sendRaw(
        peerA,
        encodePeerCancel(Buffer.from(SECRET), { processId: sa.processId, secretKey: forged }),
      );
      // A forged key sent to the other instance's client port is forwarded and dropped there.
      const forgedB = keyOf(sb);
      forgedB[2] = (forgedB[2] as number) ^ 0x10;
      await sendCancelRequest(a.host, a.port, sb.processId, forgedB.readInt32BE(0));
      // Garbage on the peer port.
      await sendRaw(peerB, Buffer.from('hello'));
      await b.waitForLog((l) => l.msg === 'forwarded cancel refused' && l.reason === 'bad length');
      const results = await Promise.all([sa.done, sb.done]);
      expect(results.map((r) => r.code)).toEqual([null, null]);
    } finally {
      await Promise.all([sa.client.end(), sb.client.end()]);
    }
  });

  test('a replayed forward is refused', async () => {
    const [s] = await sleepers(1, 30);
    if (!s) throw new Error('no sleeper');
    try {
      const key = Buffer.alloc(4);
      key.writeInt32BE(s.secretKey);
      const msg = encodePeerCancel(Buffer.from(SECRET), { processId: s.processId, secretKey: key });
      await sendRaw(peerA, msg);
      expect((await s.done).code).toBe('57014');
      await sendRaw(peerA, msg);
      await a.waitForLog((l) => l.msg === 'forwarded cancel refused' && l.reason === 'replayed');
    } finally {
      await s.client.end();
    }
  });
});
