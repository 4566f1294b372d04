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
  /** Bun's end(): the socket closed, and its close handler run at once, inside the call. */
  ended = 0;
  shut = 0;
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
    this.data?.closed();
  }
  shutdown(): void {
    this.shut++;
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

const tick = (): Promise<void> => new Promise((r) => process.nextTick(r));

test('corked writes report backpressure through writableNeedDrain after uncork', () => {
  const { k, s } = make();
  k.room = 3;
  s.cork();
  expect(s.write(Buffer.from('abcd'))).toBe(true);
  expect(s.write(Buffer.from('ef'))).toBe(true);
  s.uncork();
  expect(s.writableNeedDrain).toBe(true);
  // While bytes wait, a corked write says so at once.
  s.cork();
  expect(s.write(Buffer.from('g'))).toBe(false);
  s.uncork();
  k.room = Infinity;
  s.flushQueue();
  expect(s.writableNeedDrain).toBe(false);
  expect(k.bytes).toBe('abcdefg');
});

test('end with bytes queued: they go first, then a half-close (shutdown), never a close; no drain', async () => {
  const { k, s, events } = make();
  k.room = 1;
  s.write(Buffer.from('ab'));
  s.end(Buffer.from('c'));
  expect(s.writableEnded).toBe(true);
  expect(k.shut).toBe(0);
  expect(s.write(Buffer.from('late'))).toBe(false); // refused after end
  k.room = Infinity;
  s.flushQueue();
  s.flushQueue(); // a second drain from Bun changes nothing
  expect(k.bytes).toBe('abc');
  expect(k.shut).toBe(1);
  expect(k.ended).toBe(0);
  await tick();
  expect(events).toEqual([]);
  // The peer's FIN then closes the socket.
  s.peerEnd();
  expect(k.ended).toBe(1);
  await tick();
  expect(events).toEqual(['close:false']);
});

test('end with nothing queued half-closes at once, and reading goes on until the FIN', () => {
  const { k, s } = make();
  s.pause();
  s.end();
  expect(k.shut).toBe(1);
  expect(k.paused).toBe(false);
  expect(k.ended).toBe(0);
  s.end();
  expect(k.shut).toBe(1);
});

test("the peer's FIN first: what is queued is sent, then the socket closes (allowHalfOpen false)", async () => {
  const { k, s, events } = make();
  k.room = 2;
  s.write(Buffer.from('abcd'));
  s.peerEnd();
  expect(s.writableEnded).toBe(true);
  expect(k.ended).toBe(0);
  k.room = Infinity;
  s.flushQueue();
  expect(k.bytes).toBe('abcd');
  expect(k.shut).toBe(0);
  expect(k.ended).toBe(1);
  await tick();
  expect(events).toEqual(['close:false']);
});

test('destroy: drops the queue, closes gracefully (no reset), close once on the next tick', async () => {
  const { k, s, events } = make();
  k.room = 0;
  s.write(Buffer.from('lost'));
  s.destroy();
  s.destroy();
  s.closed();
  expect(k.ended).toBe(1);
  expect(s.destroyed).toBe(true);
  expect(events).toEqual([]); // not inside the caller's stack
  await tick();
  expect(events).toEqual(['close:false']);
  k.room = Infinity;
  expect(s.write(Buffer.from('x'))).toBe(false);
  expect(k.bytes).toBe('');
});

test('Bun closing with an error: error then close(true); pause/resume reach the socket until destroyed', async () => {
  const { k, s, events } = make();
  s.pause();
  expect(k.paused).toBe(true);
  s.resume();
  expect(k.paused).toBe(false);
  s.closed(new Error('ECONNRESET'));
  await tick();
  expect(events).toEqual(['error:ECONNRESET', 'close:true']);
  s.pause();
  expect(k.paused).toBe(false);
});

test('a failed write (socket gone) destroys with an error', async () => {
  const { k, s, events } = make();
  k.write = () => -1;
  expect(s.write(Buffer.from('x'))).toBe(false);
  expect(s.destroyed).toBe(true);
  await tick();
  expect(events).toEqual(['error:write EPIPE', 'close:true']);
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
