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

/** The one read buffer (the size of a stream read's allocation: a read never gets more). */
const SHARED = Buffer.allocUnsafeSlow(64 * 1024);

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
    const chunk = Buffer.allocUnsafe(n);
    SHARED.copy(chunk, 0, 0, n);
    onChunk(chunk);
  };
  s[k.buffer] = SHARED;
  s._handle.useUserBuffer(SHARED);
  return 'switched';
}
