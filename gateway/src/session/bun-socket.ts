/**
 * Bun's own TCP sockets (`Bun.listen`, `Bun.connect`) behind the small part of the `net.Socket`
 * interface the socket adapter (session.ts) and the listener (main.ts) use. Under Bun, `node:net`
 * is a stream layer over these same sockets; skipping it cuts the CPU a proxied transaction costs
 * (docs/benchmarks.md, "A second runtime"). Plain TCP only: a listener with client TLS configured,
 * and upstream connections that negotiate TLS, keep `node:net`/`node:tls` (main.ts, upstream.ts).
 *
 * Semantics kept from `net.Socket`: 'data' (each chunk its own memory: Bun copies out of its
 * receive buffer), 'drain', 'error', 'close' exactly once; `write` returns false once bytes are
 * queued behind a full kernel buffer, and queued bytes keep their order; `end` sends what is queued
 * first; `pause`/`resume` stop and restart reading.
 */
import { EventEmitter } from 'node:events';
import { ErrorCodes, PgwardError } from '../errors';

/** The members of Bun's socket this file uses (Bun's types are not a dependency). */
interface BunTcp {
  data: BunSocket | undefined;
  readonly remoteAddress: string;
  readonly remotePort?: number;
  write(data: Uint8Array): number;
  /** Closes the socket (graceful: the kernel still sends what it holds). */
  end(): void;
  /** Shuts our sending side (a FIN); reading goes on. */
  shutdown(): void;
  pause(): void;
  resume(): void;
  setNoDelay(on: boolean): boolean;
}

interface BunHandlers {
  open?(s: BunTcp): void;
  data(s: BunTcp, chunk: Buffer): void;
  drain(s: BunTcp): void;
  close(s: BunTcp, err?: Error): void;
  error(s: BunTcp, err: Error): void;
  end?(s: BunTcp): void;
  connectError?(s: BunTcp, err: Error): void;
}

interface BunListener {
  readonly port: number;
  readonly hostname: string;
  stop(closeActive?: boolean): void;
}

interface BunRuntime {
  listen(o: { hostname: string; port: number; socket: BunHandlers }): BunListener;
  connect(o: { hostname: string; port: number; socket: BunHandlers }): Promise<BunTcp>;
}

function bun(): BunRuntime | null {
  return ((globalThis as { Bun?: BunRuntime }).Bun as BunRuntime | undefined) ?? null;
}

/**
 * True when this process runs under Bun and native sockets are not turned off
 * (`PGWARD_BUN_SOCKETS=node` keeps `node:net`, for comparison and as an escape hatch).
 */
export function nativeSocketsAvailable(env: NodeJS.ProcessEnv = process.env): boolean {
  return bun() !== null && env.PGWARD_BUN_SOCKETS !== 'node';
}

export class BunSocket extends EventEmitter {
  /** Bytes `write` could not hand to the kernel yet, in order. */
  private queue: Buffer[] = [];
  private corked: Buffer[] | null = null;
  /** end() was called with bytes still queued: the half-close waits for them. */
  private ending = false;
  /** The peer sent its FIN. */
  private peerEnded = false;
  private closedOnce = false;
  destroyed = false;
  writableEnded = false;
  readonly remoteAddress: string;
  readonly remotePort: number;

  constructor(private readonly s: BunTcp) {
    super();
    s.data = this;
    this.remoteAddress = s.remoteAddress;
    this.remotePort = s.remotePort ?? 0;
  }

  /** As net.Socket's: true once a write has queued bytes, until 'drain'. */
  get writableNeedDrain(): boolean {
    return this.queue.length > 0;
  }

  setNoDelay(on = true): this {
    this.s.setNoDelay(on);
    return this;
  }

  write(b: Buffer | string): boolean {
    if (this.destroyed || this.writableEnded) return false;
    const buf = typeof b === 'string' ? Buffer.from(b) : b;
    if (this.corked !== null) {
      this.corked.push(buf);
      // What the caller learns of the uncork's outcome: writableNeedDrain after uncork().
      return this.queue.length === 0;
    }
    return this.send(buf);
  }

  cork(): void {
    if (this.corked === null) this.corked = [];
  }

  uncork(): void {
    const c = this.corked;
    this.corked = null;
    if (c === null || c.length === 0) return;
    this.send(c.length === 1 ? (c[0] as Buffer) : Buffer.concat(c));
  }

  private send(buf: Buffer): boolean {
    if (buf.length === 0) return this.queue.length === 0;
    if (this.queue.length > 0) {
      this.queue.push(buf);
      return false;
    }
    const n = this.s.write(buf);
    if (n === buf.length) return true;
    if (n < 0) {
      this.destroy(new Error('write EPIPE'));
      return false;
    }
    // The kernel took part of it: the rest waits for `drain`, and later writes queue behind it.
    this.queue.push(n === 0 ? buf : buf.subarray(n));
    return false;
  }

  /** Bun's drain: the kernel buffer has room again. */
  flushQueue(): void {
    if (this.destroyed) return;
    while (this.queue.length > 0) {
      const buf = this.queue[0] as Buffer;
      const n = this.s.write(buf);
      if (n < 0) {
        this.destroy(new Error('write EPIPE'));
        return;
      }
      if (n < buf.length) {
        this.queue[0] = buf.subarray(Math.max(0, n));
        return;
      }
      this.queue.shift();
    }
    if (this.ending) {
      this.ending = false;
      this.finishEnd();
    } else if (!this.writableEnded) this.emit('drain');
  }

  /**
   * As net.Socket's: what is queued goes first, then our side is shut (a FIN, not a close: the
   * peer's unread bytes must not turn it into a reset that loses a FATAL on its way). The socket
   * closes when the peer's FIN arrives, or when the adapter's timer destroys it.
   */
  end(last?: Buffer | string): this {
    if (this.destroyed || this.writableEnded) return this;
    if (last !== undefined) this.write(last);
    if (this.corked !== null) this.uncork();
    if (this.destroyed) return this;
    this.writableEnded = true;
    if (this.queue.length > 0) this.ending = true;
    else this.finishEnd();
    return this;
  }

  private finishEnd(): void {
    if (this.peerEnded) {
      this.s.end(); // both sides done: close (Bun runs the close handler)
      return;
    }
    this.s.resume(); // read on, so the peer's FIN is seen
    this.s.shutdown();
  }

  /** Bun's end: the peer's FIN. Like net.Socket (allowHalfOpen false), end our side too. */
  peerEnd(): void {
    this.peerEnded = true;
    if (this.destroyed) return;
    if (!this.writableEnded) this.end();
    else if (!this.ending) this.s.end();
  }

  pause(): this {
    if (!this.destroyed) this.s.pause();
    return this;
  }

  resume(): this {
    if (!this.destroyed) this.s.resume();
    return this;
  }

  /**
   * As net.Socket's: queued bytes are dropped and the socket is closed (what the kernel already
   * holds is still delivered; Bun's terminate() would reset the connection and lose it).
   */
  destroy(err?: Error): this {
    if (this.destroyed) return this;
    this.destroyed = true;
    this.writableEnded = true;
    this.queue = [];
    this.corked = null;
    this.closed(err); // first: Bun's close handler, run inside end(), must not win without the error
    this.s.end();
    return this;
  }

  /**
   * Bun's close (or our destroy): 'error' if any, then 'close', once, on the next tick as
   * net.Socket emits them (Bun runs its close handler inside end(): never re-enter the caller).
   */
  closed(err?: Error): void {
    this.destroyed = true;
    this.writableEnded = true;
    if (this.closedOnce) return;
    this.closedOnce = true;
    process.nextTick(() => {
      if (err) this.emit('error', err);
      this.emit('close', err !== undefined);
    });
  }
}

function handlers(onOpen?: (s: BunTcp) => void): BunHandlers {
  return {
    ...(onOpen ? { open: onOpen } : {}),
    data(s, chunk) {
      s.data?.emit('data', chunk);
    },
    drain(s) {
      s.data?.flushQueue();
    },
    end(s) {
      s.data?.peerEnd();
    },
    close(s, err) {
      s.data?.closed(err);
    },
    error(s, err) {
      s.data?.destroy(err);
    },
  };
}

export interface NativeListener {
  readonly listening: boolean;
  address(): { address: string; port: number; family: string };
  close(): void;
}

/** A TCP listener on Bun's sockets; `onConnection` gets each accepted socket at once. */
export function listenNative(
  host: string,
  port: number,
  onConnection: (s: BunSocket) => void,
): NativeListener {
  const B = bun();
  if (B === null) throw new Error('listenNative: not running under Bun');
  let l: BunListener;
  try {
    l = B.listen({ hostname: host, port, socket: handlers((s) => onConnection(new BunSocket(s))) });
  } catch (err) {
    // Bun says "Failed to listen at HOST"; say what node:net says (code, address and port).
    const code = (err as { code?: string }).code ?? 'error';
    throw new Error(`listen ${code} ${host}:${port} (${String((err as Error).message)})`, { cause: err });
  }
  let listening = true;
  return {
    get listening() {
      return listening;
    },
    address: () => ({ address: l.hostname, port: l.port, family: host.includes(':') ? 'IPv6' : 'IPv4' }),
    close: () => {
      if (!listening) return;
      listening = false;
      // Stop accepting; sessions already open are drained by the caller.
      l.stop(false);
    },
  };
}

/**
 * Native connects given up at their timeout and not yet settled. Bun cannot cancel a pending
 * connect, so each holds a descriptor until the kernel gives up (about two minutes against a host
 * that drops SYNs); while any is pending, upstream.ts connects with node:net, which can.
 */
let abandoned = 0;

export function nativeConnectsAbandoned(): number {
  return abandoned;
}

/** A plain TCP connection on Bun's sockets, within `timeoutMs`. */
export function connectNative(host: string, port: number, timeoutMs: number): Promise<BunSocket> {
  const B = bun();
  if (B === null) return Promise.reject(new Error('connectNative: not running under Bun'));
  return new Promise((resolve, reject) => {
    let settled = false;
    let timedOut = false;
    const timer = setTimeout(() => {
      settled = true;
      timedOut = true;
      abandoned++;
      reject(new PgwardError(ErrorCodes.UPSTREAM_CONNECT, `connect to ${host}:${port} timed out`));
    }, timeoutMs);
    timer.unref();
    const late = (): void => {
      if (timedOut) {
        timedOut = false;
        abandoned--;
      }
    };
    // The wrapper is made in `open`, before any data can arrive.
    const h = handlers((s) => {
      const w = new BunSocket(s);
      if (settled) {
        late();
        w.destroy();
        return;
      }
      settled = true;
      clearTimeout(timer);
      w.setNoDelay(true);
      resolve(w);
    });
    const failed = (err: unknown): void => {
      late();
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      const msg = err instanceof Error ? err.message : String(err);
      reject(new PgwardError(ErrorCodes.UPSTREAM_CONNECT, `connect to ${host}:${port}: ${msg}`));
    };
    h.connectError = (_s, err) => failed(err);
    B.connect({ hostname: host, port, socket: h }).then(() => undefined, failed);
  });
}
