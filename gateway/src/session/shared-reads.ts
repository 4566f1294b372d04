/**
 * Reads of a plain `node:net` socket without the stream machinery: the socket's handle reads into
 * one buffer shared by every socket of the process (net's `onread` user buffer), and each read is
 * copied at once into a Buffer of its own, which is what the session gets, as it got the `data`
 * event's chunk before.
 *
 * Why: a socket read through the Readable stream costs, besides the kernel's read, a 64 KiB
 * allocation cut down to the bytes read, a new ArrayBuffer, `push`, the `data` event, a
 * `process.nextTick` (maybeReadMore) and a `read(0)` after it. Measured on the two-core box
 * (docs/benchmarks.md, 2026-12-07): a proxy that reads this way spends 7–12 µs less user CPU per
 * pgbench transaction (two reads) than the same proxy with `pipe()`; and the cost of the stream
 * path moves between processes of the same code (V8 sometimes optimises maybeReadMore's inlined
 * nextTick with a generic property definition: +4 µs per transaction in that process).
 *
 * The copies are cut from slabs of 8 KiB (as Node's own Buffer pool does, so a chunk the session
 * keeps pins at most that), as views made with the ArrayBuffer in hand (protocol/view.ts) and filled
 * from a view of the shared buffer of the read's length, kept per length: Node's `buf.copy` and
 * `Buffer.allocUnsafe` read ArrayBuffers and offsets through C++ getters and build a temporary
 * view on every call (about 360 ns for a 120-byte read, against 130 ns this way; measured on the
 * two-core box, 2026-12-07). A read of 4 KiB or more gets a buffer of its own.
 *
 * Safety: the shared buffer is only ever written by a read and read by the copy right after it
 * (reads run one at a time on the event loop); no view of it leaves this module, so nothing the
 * session keeps (a held frame, a queued write) can be overwritten by the next read of any socket.
 *
 * `net.connect` documents `onread`; a server-accepted socket has no option for it, so the socket's
 * own (stable since Node.js 12, but internal) `kBuffer`/`kBufferCb` slots and its handle's
 * `useUserBuffer` are set the way the constructor's `onread` sets them. Anything missing (another
 * Node.js, Bun's node:net, a TLS socket, a socket that is paused or holds buffered data) leaves
 * the socket on the stream path: `useSharedReads` says `never` (or `later`: paused, or holding read
 * data) and changes nothing.
 */
import net from 'node:net';
import tls from 'node:tls';
import { bufferView } from '../protocol/view';

/** The one read buffer (the size of a stream read's allocation: a read never gets more). */
const SHARED_BYTES = 64 * 1024;
const SHARED = Buffer.allocUnsafeSlow(SHARED_BYTES);
const SHARED_AB = SHARED.buffer;
const SHARED_AT = SHARED.byteOffset;

/** Reads shorter than this are copied into the current slab; longer ones get their own buffer. */
const SLAB_READ_MAX = 4 * 1024;
const SLAB_BYTES = 8 * 1024;

/** Views of the first n bytes of the shared buffer, by n (for reads cut from slabs). */
const sources: Array<Uint8Array | undefined> = new Array<Uint8Array | undefined>(SLAB_READ_MAX).fill(
  undefined,
);

let slab = new ArrayBuffer(SLAB_BYTES);
let slabBytes = new Uint8Array(slab);
let slabUsed = 0;

/** The first `n` bytes of the shared buffer, copied into a Buffer of their own. */
export function copyRead(n: number): Buffer {
  if (n >= SLAB_READ_MAX) {
    const own = Buffer.allocUnsafeSlow(n);
    own.set(new Uint8Array(SHARED_AB, SHARED_AT, n));
    return own;
  }
  if (slabUsed + n > SLAB_BYTES) {
    slab = new ArrayBuffer(SLAB_BYTES);
    slabBytes = new Uint8Array(slab);
    slabUsed = 0;
  }
  const at = slabUsed;
  slabBytes.set((sources[n] ??= new Uint8Array(SHARED_AB, SHARED_AT, n)), at);
  // 8-byte aligned, as Node's pool aligns its slices.
  slabUsed = (at + n + 7) & ~7;
  return bufferView(slab, at, n);
}

interface SocketInternals {
  _handle?: { useUserBuffer?: (buf: Uint8Array) => void } | null;
  [k: symbol]: unknown;
}

/** The internal slots of a net.Socket, by description (null: this runtime has none). */
function slots(s: SocketInternals): { buffer: symbol; callback: symbol } | null {
  let buffer: symbol | null = null;
  let callback: symbol | null = null;
  for (const k of Object.getOwnPropertySymbols(s)) {
    if (k.description === 'kBuffer') buffer = k;
    else if (k.description === 'kBufferCb') callback = k;
  }
  return buffer !== null && callback !== null ? { buffer, callback } : null;
}

/**
 * What useSharedReads did: `switched`; `later` (the socket is paused or holds read data: try again
 * once it flows); `never` (not a plain node:net socket with the internals this needs: it keeps the
 * stream path).
 */
export type SharedReads = 'switched' | 'later' | 'never';

/**
 * From now on `socket`'s reads go to `onChunk`, each a Buffer of its own with the bytes read
 * (never empty), in order; the `data` event no longer fires. End of stream, errors, `close`,
 * pause/resume and backpressure work as before. Anything but `switched` changed nothing: keep
 * listening to `data`.
 */
export function useSharedReads(socket: unknown, onChunk: (chunk: Buffer) => void): SharedReads {
  if (!(socket instanceof net.Socket) || socket instanceof tls.TLSSocket) return 'never';
  const s = socket as unknown as SocketInternals;
  const k = slots(s);
  // A socket already reading into a buffer of its own (onread) keeps it.
  if (k === null || s[k.buffer] !== null || s[k.callback] !== null) return 'never';
  if (socket.destroyed) return 'never';
  if (typeof s._handle?.useUserBuffer !== 'function') return 'never';
  if (socket.isPaused() || socket.readableLength > 0) return 'later';
  // All three in one turn of the event loop: no read can fall between them.
  s[k.callback] = (n: number): void => {
    onChunk(copyRead(n));
  };
  s[k.buffer] = SHARED;
  s._handle.useUserBuffer(SHARED);
  return 'switched';
}
