/**
 * Writes to a plain `node:net` socket straight through its handle, without the Writable stream.
 *
 * Why: `socket.write(buf)` runs Writable.write, writeOrBuffer, Socket._writeGeneric, a new
 * WriteWrap, the write itself, and afterWriteDispatched's bookkeeping (and a nextTick when the
 * callback machinery needs it); the write is what a proxy needs. pgward writes once per read in
 * each direction, so this is paid twice per transaction. The handle's `writeBuffer` is what
 * `_writeGeneric` ends in: it tries the write at once (uv_try_write) and queues the rest in libuv,
 * in order with every other write of the handle, the stream's own included.
 *
 * How: the socket's handle (`_handle.writeBuffer`, stable since Node.js 10 but internal) with a
 * request object of `stream_wrap`'s WriteWrap class (`process.binding('stream_wrap')`, the binding
 * Node's own net module uses). A write the kernel took whole leaves the request unused, and the
 * next write reuses it. A write that had to be queued (the socket buffer is full) keeps its bytes
 * alive on the request until libuv reports it done, and says so (`write` returns false) so the
 * session stops reading the other side; when every queued write is done the socket emits 'drain',
 * the event the session waits for after a stream write that returned false. An error, now or
 * later, destroys the socket with the errno as Node's stream would, so 'error' and 'close' come
 * as before.
 *
 * Only while the stream itself holds nothing (no buffered or corked write, not ended, not
 * connecting): a direct write never overtakes a stream write; a stream write after a queued
 * direct one is queued behind it by libuv. Anything missing (another runtime, Bun's node:net, a
 * TLS socket, a binding that cannot be loaded) makes `directWriter` return null: keep `write()`.
 */
import net from 'node:net';
import tls from 'node:tls';
import { getSystemErrorName } from 'node:util';

interface WriteReq {
  handle: unknown;
  oncomplete: (status: number) => void;
  async: boolean;
  bytes: number;
  buffer: Buffer | null;
}

interface StreamWrap {
  WriteWrap: new () => WriteReq;
  streamBaseState: Int32Array;
  kLastWriteWasAsync: number;
}

interface Handle {
  writeBuffer(req: WriteReq, data: Buffer): number;
}

let binding: StreamWrap | null | undefined;

/** `stream_wrap` as Node's net module uses it, or null (loaded once, on first need). */
function streamWrap(): StreamWrap | null {
  if (binding !== undefined) return binding;
  binding = null;
  try {
    const b = (process as unknown as { binding(name: string): Partial<StreamWrap> }).binding('stream_wrap');
    if (
      typeof b.WriteWrap === 'function' &&
      // Not instanceof: the binding's arrays are of the main realm (a vm context, e.g. a test, has its own).
      ArrayBuffer.isView(b.streamBaseState) &&
      typeof b.kLastWriteWasAsync === 'number'
    )
      binding = b as StreamWrap;
  } catch {
    // No process.binding (a permission model, another runtime): the stream path.
  }
  return binding;
}

function writeError(status: number): Error {
  let name = `E${-status}`;
  try {
    name = getSystemErrorName(status);
  } catch {
    // Not an errno Node knows: keep the number.
  }
  return Object.assign(new Error(`write ${name}`), { code: name, errno: status, syscall: 'write' });
}

export class DirectWriter {
  /** A request the last write left unused (it completed at once). */
  private spare: WriteReq | null = null;
  /** Writes libuv has queued and not yet reported done. */
  private queued = 0;
  private readonly onQueuedDone: (status: number) => void;

  constructor(
    private readonly socket: net.Socket,
    private readonly handle: Handle,
    private readonly wrap: StreamWrap,
  ) {
    this.onQueuedDone = (status: number): void => {
      this.queued--;
      if (this.socket.destroyed) return;
      if (status < 0) {
        this.socket.destroy(writeError(status));
        return;
      }
      if (this.queued === 0) this.socket.emit('drain');
    };
  }

  /** Writes queued by libuv and not yet done (tests). */
  get pending(): number {
    return this.queued;
  }

  /**
   * Writes `buf` whole, in order after everything written before. False: the bytes are queued
   * (or the stream path was taken and asks for it): stop producing until 'drain'.
   */
  write(buf: Buffer): boolean {
    const s = this.socket;
    const h = (s as unknown as { _handle: Handle | null })._handle;
    if (
      h !== this.handle ||
      s.writableLength !== 0 ||
      s.writableCorked !== 0 ||
      s.writableEnded ||
      s.connecting
    )
      return s.write(buf);
    const wrap = this.wrap;
    let req = this.spare;
    if (req === null) {
      req = new wrap.WriteWrap();
      req.handle = h;
      req.oncomplete = this.onQueuedDone;
      req.async = false;
      req.bytes = 0;
      req.buffer = null;
    }
    const err = h.writeBuffer(req, buf);
    if (err !== 0) {
      this.spare = req;
      s.destroy(writeError(err));
      return false;
    }
    if (wrap.streamBaseState[wrap.kLastWriteWasAsync] === 0) {
      this.spare = req;
      return true;
    }
    // Queued: the request now belongs to libuv until onQueuedDone, with the bytes it points at.
    req.async = true;
    req.buffer = buf;
    this.spare = null;
    this.queued++;
    return false;
  }
}

/** A DirectWriter for `socket`, or null when it cannot have one (then use `socket.write`). */
export function directWriter(socket: unknown): DirectWriter | null {
  if (!(socket instanceof net.Socket) || socket instanceof tls.TLSSocket) return null;
  const handle = (socket as unknown as { _handle?: Partial<Handle> | null })._handle;
  if (handle === null || handle === undefined || typeof handle.writeBuffer !== 'function') return null;
  if (socket.destroyed || socket.connecting) return null;
  const wrap = streamWrap();
  return wrap === null ? null : new DirectWriter(socket, handle as Handle, wrap);
}
