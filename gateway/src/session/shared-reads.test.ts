import net from 'node:net';
import tls from 'node:tls';
import { once } from 'node:events';
import { randomBytes } from 'node:crypto';
import { useSharedReads } from './shared-reads';
import { closeSocketPairs, socketPair as pair } from './socket-pair.test-helper';

const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

afterEach(closeSocketPairs);

describe('shared reads', () => {
  test('every read of several sockets arrives whole, in order, and stays intact while kept', async () => {
    // The reads of all sockets go through one buffer: a chunk handed out must be a copy, or the
    // chunks kept here would be overwritten by the next read of any socket.
    const pairs = await Promise.all([pair(), pair(), pair()]);
    const sent: Buffer[][] = pairs.map(() => []);
    const got: Buffer[][] = pairs.map(() => []);
    const sides = pairs.flatMap((p, i) => [{ from: p.dialed, to: p.accepted, sent: sent[i]!, got: got[i]! }]);
    for (const s of sides) {
      expect(useSharedReads(s.to, (c) => s.got.push(c))).toBe('switched');
      s.to.on('data', () => {
        throw new Error('data event after the switch');
      });
    }
    for (let round = 0; round < 60; round++) {
      for (const s of sides) {
        // Sizes from a byte to more than the shared buffer holds.
        const b = randomBytes(round === 30 ? 200_000 : 1 + ((round * 7919) % 3000));
        s.sent.push(b);
        s.from.write(b);
      }
      await tick();
    }
    const total = (bs: Buffer[]): number => bs.reduce((n, b) => n + b.length, 0);
    const until = Date.now() + 10_000;
    while (sides.some((s) => total(s.got) < total(s.sent)) && Date.now() < until) await tick();
    for (const s of sides) {
      expect(s.got.every((c) => c.length > 0 && c.length <= 64 * 1024)).toBe(true);
      expect(Buffer.concat(s.got).equals(Buffer.concat(s.sent))).toBe(true);
    }
    await Promise.all(pairs.map((p) => p.close()));
  });

  test('a dialed socket switches too; pause stops the reads, resume brings them, end and close still come', async () => {
    const p = await pair();
    const got: Buffer[] = [];
    expect(useSharedReads(p.dialed, (c) => got.push(c))).toBe('switched');
    p.dialed.pause();
    p.accepted.write('while paused');
    for (let i = 0; i < 20; i++) await tick();
    expect(got).toEqual([]);
    p.dialed.resume();
    const until = Date.now() + 5000;
    while (got.length === 0 && Date.now() < until) await tick();
    expect(Buffer.concat(got).toString()).toBe('while paused');
    const ended = once(p.dialed, 'end');
    const closed = once(p.dialed, 'close');
    p.accepted.end();
    await ended;
    p.dialed.end();
    await closed;
    await p.close();
  });

  test('a paused socket or one holding read data is switched later; the data is not lost', async () => {
    const p = await pair();
    const got: Buffer[] = [];
    p.accepted.on('data', (c: Buffer) => got.push(c));
    p.accepted.pause();
    expect(useSharedReads(p.accepted, (c) => got.push(c))).toBe('later');
    p.dialed.write('first');
    for (let i = 0; i < 20; i++) await tick();
    // Paused: what arrived waits in the stream's buffer.
    expect(useSharedReads(p.accepted, (c) => got.push(c))).toBe('later');
    p.accepted.resume();
    let until = Date.now() + 5000;
    while (got.length === 0 && Date.now() < until) await tick();
    expect(useSharedReads(p.accepted, (c) => got.push(c))).toBe('switched');
    p.dialed.write('second');
    until = Date.now() + 5000;
    while (Buffer.concat(got).length < 11 && Date.now() < until) await tick();
    expect(Buffer.concat(got).toString()).toBe('firstsecond');
    await p.close();
  });

  test('what cannot switch says so and is left as it was', async () => {
    const p = await pair();
    expect(useSharedReads({}, () => {})).toBe('never');
    expect(useSharedReads(null, () => {})).toBe('never');
    // A TLS socket reads through its TLS layer.
    const t = new tls.TLSSocket(new net.Socket());
    expect(useSharedReads(t, () => {})).toBe('never');
    t.destroy();
    // Already switched: its reads stay where they go.
    expect(useSharedReads(p.accepted, () => {})).toBe('switched');
    expect(useSharedReads(p.accepted, () => {})).toBe('never');
    // Destroyed.
    p.dialed.destroy();
    expect(useSharedReads(p.dialed, () => {})).toBe('never');
    await p.close();
  });
});
