import net from 'node:net';
import tls from 'node:tls';
import { once } from 'node:events';
import { randomBytes } from 'node:crypto';
import { directWriter, type DirectWriter } from './direct-writes';
import { closeSocketPairs, socketPair as pair } from './socket-pair.test-helper';

afterEach(closeSocketPairs);

/** Everything `s` receives until `n` bytes have come. */
function receive(s: net.Socket, n: number): Promise<Buffer> {
  const got: Buffer[] = [];
  let have = 0;
  return new Promise((resolve, reject) => {
    s.on('error', reject);
    s.on('data', (c: Buffer) => {
      got.push(c);
      have += c.length;
      if (have >= n) resolve(Buffer.concat(got));
    });
  });
}

describe('direct writes', () => {
  test('a plain TCP socket gets one; a TLS socket and anything else do not', async () => {
    const { accepted } = await pair();
    expect(directWriter(accepted)).not.toBeNull();
    expect(directWriter({ write: () => true })).toBeNull();
    expect(directWriter(new tls.TLSSocket(new net.Socket()))).toBeNull();
  });

  test('writes arrive whole and in order, mixed with stream writes and corked ones', async () => {
    const { accepted, dialed } = await pair();
    const w = directWriter(accepted) as DirectWriter;
    const parts: Buffer[] = [];
    for (let i = 0; i < 300; i++) parts.push(randomBytes(1 + ((i * 7919) % 5000)));
    const total = parts.reduce((n, p) => n + p.length, 0);
    const got = receive(dialed, total);
    parts.forEach((p, i) => {
      if (i % 7 === 3) accepted.write(p);
      else if (i % 11 === 5) {
        // Bytes held by the stream (corked): the direct writer must go behind them.
        accepted.cork();
        accepted.write(p.subarray(0, 1));
        w.write(p.subarray(1));
        accepted.uncork();
      } else w.write(p);
    });
    expect((await got).equals(Buffer.concat(parts))).toBe(true);
  });

  test('a peer that does not read: writes are queued and said so, then drain once the peer reads, nothing lost', async () => {
    const { accepted, dialed } = await pair();
    const w = directWriter(accepted) as DirectWriter;
    dialed.pause();
    const parts: Buffer[] = [];
    let accepting = true;
    // Until the kernel's buffers are full and a write is queued in libuv.
    for (let i = 0; accepting && i < 10_000; i++) {
      const p = randomBytes(64 * 1024);
      parts.push(p);
      accepting = w.write(p);
    }
    expect(accepting).toBe(false);
    expect(w.pending).toBeGreaterThan(0);
    // A write after a queued one goes behind it (direct, or by the stream when it holds bytes).
    const tail = Buffer.from('tail');
    parts.push(tail);
    w.write(tail);
    const total = parts.reduce((n, p) => n + p.length, 0);
    const drained = once(accepted, 'drain');
    const got = receive(dialed, total);
    dialed.resume();
    await drained;
    expect(w.pending).toBe(0);
    expect((await got).equals(Buffer.concat(parts))).toBe(true);
  });

  test('a peer that is gone: the socket is destroyed with the write error, as by the stream', async () => {
    // Never reading (pauseOnConnect: the handle does not read): only a write can see the reset.
    const { accepted, dialed } = await pair(true);
    const w = directWriter(accepted) as DirectWriter;
    const failed = once(accepted, 'error');
    dialed.resetAndDestroy();
    await once(dialed, 'close');
    // Write until a write meets the reset (the first may still be taken by the kernel).
    for (let i = 0; i < 10_000 && !accepted.destroyed; i++) {
      w.write(Buffer.alloc(1024));
      await new Promise((r) => setImmediate(r));
    }
    const [err] = (await failed) as [NodeJS.ErrnoException];
    expect(err.syscall).toBe('write');
    expect(['EPIPE', 'ECONNRESET']).toContain(err.code);
    expect(accepted.destroyed).toBe(true);
  });

  test('after end() the writer takes the stream path (which refuses the write)', async () => {
    const { accepted } = await pair();
    const w = directWriter(accepted) as DirectWriter;
    accepted.end();
    const err = once(accepted, 'error');
    w.write(Buffer.from('late'));
    const [e] = (await err) as [NodeJS.ErrnoException];
    expect(e.code).toBe('ERR_STREAM_WRITE_AFTER_END');
  });
});
