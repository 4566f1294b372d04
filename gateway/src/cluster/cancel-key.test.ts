import { randomBytes } from 'node:crypto';
import { CancelRegistry } from '../session/cancel-registry';
import { bitsFor, CancelKeyLayout, type CancelRoute } from './cancel-key';

describe('cancel key layout', () => {
  test('bitsFor', () => {
    expect([1, 2, 3, 4, 5, 8, 9, 256].map(bitsFor)).toEqual([0, 1, 2, 2, 3, 3, 4, 8]);
  });

  test('every peer and worker round-trips, for 3.0 and 3.2 key lengths', () => {
    for (const peerBits of [0, 1, 4, 8]) {
      for (const workers of [1, 2, 3, 16, 256]) {
        for (const bytes of [4, 32, 256]) {
          for (let peerId = 0; peerId < 1 << peerBits; peerId += Math.max(1, (1 << peerBits) >> 2)) {
            for (const workerIndex of [0, workers - 1]) {
              const l = new CancelKeyLayout({ peerBits, peerId, workers, workerIndex });
              const key = l.issue(bytes);
              expect(key.length).toBe(bytes);
              expect(l.route(key)).toEqual({ peer: peerId, worker: workerIndex });
            }
          }
        }
      }
    }
  });

  test('entropy: 3.0 keeps ≥ 16 random bits, 3.2 ≥ 128; the random part really varies', () => {
    const worst = new CancelKeyLayout({ peerBits: 8, peerId: 255, workers: 256, workerIndex: 255 });
    expect(worst.randomBits(4)).toBe(16);
    expect(worst.randomBits(32)).toBeGreaterThanOrEqual(128);
    const typical = new CancelKeyLayout({ peerBits: 0, peerId: 0, workers: 2, workerIndex: 1 });
    expect(typical.randomBits(4)).toBe(31);
    // Every non-route bit takes both values over a few hundred keys.
    const seen0 = new Uint8Array(32);
    const seen1 = new Uint8Array(32);
    for (let i = 0; i < 400; i++) {
      const v = worst.issue(4).readUInt32BE(0);
      for (let b = 0; b < 32; b++) ((v >>> (31 - b)) & 1 ? seen1 : seen0)[b] = 1;
    }
    for (let b = 16; b < 32; b++) expect([b, seen0[b], seen1[b]]).toEqual([b, 1, 1]);
    for (let b = 0; b < 16; b++) expect([b, seen0[b], seen1[b]]).toEqual([b, 0, 1]);
  });

  test('rejects layouts that do not fit', () => {
    expect(() => new CancelKeyLayout({ peerBits: 9, peerId: 0, workers: 1, workerIndex: 0 })).toThrow();
    expect(() => new CancelKeyLayout({ peerBits: 2, peerId: 4, workers: 1, workerIndex: 0 })).toThrow();
    expect(() => new CancelKeyLayout({ peerBits: 0, peerId: 0, workers: 257, workerIndex: 0 })).toThrow();
    expect(() => new CancelKeyLayout({ peerBits: 0, peerId: 0, workers: 2, workerIndex: 2 })).toThrow();
  });
});

describe('cancel registry with routing', () => {
  const target = { cancelUpstream: () => true };

  function registry(peerId: number, workerIndex: number) {
    const forwarded: Array<{ route: CancelRoute; pid: number; key: Buffer }> = [];
    const layout = new CancelKeyLayout({ peerBits: 2, peerId, workers: 4, workerIndex });
    const r = new CancelRegistry(layout, (route, pid, key) => {
      forwarded.push({ route, pid, key });
      return Promise.resolve(true);
    });
    return { r, forwarded };
  }

  test('own key: the session; a key of another worker or peer: a forwarder to exactly that process', async () => {
    const a = registry(1, 2);
    const key = a.r.issue(target, 4242, 4);
    expect(a.r.lookup(4242, key)).toBe(target);
    const b = registry(1, 3);
    const fwd = b.r.lookup(4242, key);
    expect(fwd).toBeDefined();
    expect(fwd).not.toBe(target);
    await fwd?.cancelUpstream();
    expect(b.forwarded).toEqual([{ route: { peer: 1, worker: 2 }, pid: 4242, key }]);
    // What the other process does on arrival: only its own sessions count.
    expect(b.r.lookupLocal(4242, key)).toBeUndefined();
    expect(a.r.lookupLocal(4242, key)).toBe(target);
  });

  test('a forged key with the right route bits cancels nothing where it lands', () => {
    const a = registry(0, 1);
    const key = a.r.issue(target, 7, 4);
    for (let i = 0; i < 2000; i++) {
      const forged = randomBytes(4);
      forged[0] = key[0] as number; // same route bits (and 4 more)
      if (forged.equals(key)) continue;
      expect(a.r.lookup(7, forged)).toBeUndefined();
    }
    // The right key with the wrong pid, a truncated or an extended key: nothing.
    expect(a.r.lookup(8, key)).toBeUndefined();
    expect(a.r.lookup(7, key.subarray(0, 3))).toBeUndefined();
    expect(a.r.lookup(7, Buffer.concat([key, Buffer.alloc(28)]))).toBeUndefined();
    a.r.release(7, target);
    expect(a.r.lookup(7, key)).toBeUndefined();
  });

  test('without peer bits, a key of this process that no session holds goes to onMiss', async () => {
    const layout = new CancelKeyLayout({ peerBits: 0, peerId: 0, workers: 1, workerIndex: 0 });
    const missed: number[] = [];
    const r = new CancelRegistry(layout, null, (_route, pid) => {
      missed.push(pid);
      return Promise.resolve(true);
    });
    const key = r.issue(target, 11, 4);
    expect(r.lookup(11, key)).toBe(target);
    await r.lookup(12, key)?.cancelUpstream();
    expect(missed).toEqual([12]);
  });
});
