/**
 * BunSocket's write queue and close bookkeeping, over a scripted stand-in for Bun's socket (the
 * kernel taking so many bytes per write). The real sockets are exercised by the integration suite
 * under Bun (tests/proxy/runtime-sockets.test.ts and every other gateway test, make integration-bun).
 */
import { BunSocket, nativeSocketsAvailable } from './bun-socket';

class Kernel {
  data: BunSocket | undefined;
  readonly remoteAddress = '127.0.0.1';
  readonly remotePort = 5555;
  /** Bytes the next writes may take (Infinity: all). */
  room = Infinity;
  sent: Buffer[] = [];
  writes = 0;
  ended = 0;
  terminated = 0;
  paused = false;
  write(b: Uint8Array): number {
    this.writes++;
    const n = Math.min(b.length, this.room);
    this.room -= n;
    if (n > 0) this.sent.push(Buffer.from(b.subarray(0, n)));
    return n;
  }
  end(): void {
    this.ended++;
  }
  terminate(): void {
    this.terminated++;
  }
  pause(): void {
    this.paused = true;
  }
  resume(): void {
    this.paused = false;
  }
  setNoDelay(): boolean {
    return true;
  }
  get bytes(): string {
    return Buffer.concat(this.sent).toString('latin1');
  }
}

function make(): { k: Kernel; s: BunSocket; events: string[] } {
  const k = new Kernel();
  const s = new BunSocket(k);
  const events: string[] = [];
  s.on('drain', () => events.push('drain'));
  s.on('close', (hadError: boolean) => events.push(`close:${hadError}`));
  s.on('error', (e: Error) => events.push(`error:${e.message}`));
  return { k, s, events };
}

test('everything taken at once: write returns true, nothing queued', () => {
  const { k, s } = make();
  expect(k.data).toBe(s);
  expect(s.write(Buffer.from('abc'))).toBe(true);
  expect(s.write('de')).toBe(true);
  expect(k.bytes).toBe('abcde');
  expect(s.remoteAddress).toBe('127.0.0.1');
  expect(s.remotePort).toBe(5555);
});

test('a partial write queues the rest; later writes queue behind it, in order; drain once flushed', () => {
  const { k, s, events } = make();
  k.room = 2;
  expect(s.write(Buffer.from('abcd'))).toBe(false);
  expect(s.write(Buffer.from('ef'))).toBe(false);
  expect(k.writes).toBe(1); // the second write did not jump the queue
  expect(k.bytes).toBe('ab');
  k.room = 3;
  s.flushQueue(); // Bun's drain: room for 3 more
  expect(k.bytes).toBe('abcde');
  expect(events).toEqual([]);
  k.room = Infinity;
  s.flushQueue();
  expect(k.bytes).toBe('abcdef');
  expect(events).toEqual(['drain']);
  expect(s.write(Buffer.from('g'))).toBe(true);
  expect(k.bytes).toBe('abcdefg');
});

test('a kernel that takes nothing: the whole buffer waits', () => {
  const { k, s } = make();
  k.room = 0;
  expect(s.write(Buffer.from('xyz'))).toBe(false);
  k.room = Infinity;
  s.flushQueue();
  expect(k.bytes).toBe('xyz');
});

test('cork collects writes into one kernel write at uncork', () => {
  const { k, s } = make();
  s.cork();
  s.write(Buffer.from('a'));
  s.write(Buffer.from('bc'));
  s.write(Buffer.from('d'));
  expect(k.writes).toBe(0);
  s.uncork();
  expect(k.writes).toBe(1);
  expect(k.bytes).toBe('abcd');
});

test('end with bytes queued: the kernel end waits until they are out, and no drain is emitted', () => {
  const { k, s, events } = make();
  k.room = 1;
  s.write(Buffer.from('ab'));
  s.end(Buffer.from('c'));
  expect(s.writableEnded).toBe(true);
  expect(k.ended).toBe(0);
  expect(s.write(Buffer.from('late'))).toBe(false); // refused after end
  k.room = Infinity;
  s.flushQueue();
  expect(k.bytes).toBe('abc');
  expect(k.ended).toBe(1);
  expect(events).toEqual([]);
});

test('end with nothing queued ends at once', () => {
  const { k, s } = make();
  s.end();
  expect(k.ended).toBe(1);
  s.end();
  expect(k.ended).toBe(1);
});

test('destroy: terminates, drops the queue, close exactly once (Bun closing afterwards adds nothing)', () => {
  const { k, s, events } = make();
  k.room = 0;
  s.write(Buffer.from('lost'));
  s.destroy();
  s.destroy();
  s.closed();
  expect(k.terminated).toBe(1);
  expect(s.destroyed).toBe(true);
  expect(events).toEqual(['close:false']);
  k.room = Infinity;
  expect(s.write(Buffer.from('x'))).toBe(false);
  expect(k.bytes).toBe('');
});

test('Bun closing with an error: error then close(true); pause/resume reach the socket until destroyed', () => {
  const { k, s, events } = make();
  s.pause();
  expect(k.paused).toBe(true);
  s.resume();
  expect(k.paused).toBe(false);
  s.closed(new Error('ECONNRESET'));
  expect(events).toEqual(['error:ECONNRESET', 'close:true']);
  s.pause();
  expect(k.paused).toBe(false);
});

test('a negative write (socket gone) destroys', () => {
  const { k, s, events } = make();
  k.write = () => -1;
  expect(s.write(Buffer.from('x'))).toBe(false);
  expect(s.destroyed).toBe(true);
  expect(events).toEqual(['close:false']);
});

test('native sockets only under Bun, and PGWARD_BUN_SOCKETS=node turns them off', () => {
  expect(nativeSocketsAvailable({})).toBe(false); // jest runs on Node.js
  const g = globalThis as { Bun?: unknown };
  g.Bun = {};
  try {
    expect(nativeSocketsAvailable({})).toBe(true);
    expect(nativeSocketsAvailable({ PGWARD_BUN_SOCKETS: 'node' })).toBe(false);
  } finally {
    delete g.Bun;
  }
});
