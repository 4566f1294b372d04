/**
 * Incremental framing for both directions. Frontend frames are held whole (the policy needs them);
 * backend traffic is scanned in place: only the message types the session inspects are collected,
 * everything else (DataRow above all) passes through as the original chunks, without a copy.
 * https://www.postgresql.org/docs/current/protocol-overview.html#PROTOCOL-MESSAGE-CONCEPTS
 */
import { ErrorCodes } from '../errors';
import { ProtocolError } from './errors';
import {
  MAX_INSPECTED_BACKEND_MESSAGE_BYTES,
  MAX_STARTUP_PACKET_BYTES,
  MIN_STARTUP_PACKET_BYTES,
} from './limits';
import { frontendTypeName } from './message-types';
import { bufferView } from './view';

/** One complete client frame: `bytes` are the original bytes, header included. */
export interface FrontendFrame {
  /** 0 for an untyped startup-phase packet, else the message type byte. */
  readonly type: number;
  readonly bytes: Buffer;
  /** Offset of the body inside `bytes` (4 for startup packets, 5 for typed messages). */
  readonly bodyOffset: number;
  /**
   * Where `bytes` lie, when the framer knows it without asking (null: ask `bytes`): its
   * ArrayBuffer and its offset there. Node reads `buffer` and `byteOffset` through getters that
   * cost 25–40 ns each (protocol/view.ts), so views of a frame's parts are made from these.
   */
  readonly ab?: ArrayBufferLike | null;
  readonly at?: number;
}

/** Chunk queue that never concatenates until a frame is complete (no quadratic copying). */
class ChunkQueue {
  private chunks: Buffer[] = [];
  /** Index of the first live chunk: consumed chunks are skipped, not shifted (O(1) per chunk). */
  private first = 0;
  private head = 0; // offset into chunks[first]
  length = 0;
  /**
   * The first chunk's ArrayBuffer and offset in it, read once per chunk (null: not yet): frames
   * are views made from them (bufferView), not with subarray.
   */
  private firstAb: ArrayBufferLike | null = null;
  private firstBase = 0;

  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.chunks.push(chunk);
    this.length += chunk.length;
  }

  /**
   * The type byte and length word of the frame at the head when its 5 header bytes lie in the
   * first chunk (the common case: no loop over chunks), else -1: then read them with byteAt.
   */
  headerInFirst(): number {
    const c = this.chunks[this.first];
    const h = this.head;
    if (c === undefined || c.length - h < 5) return -1;
    return h;
  }

  /** The first chunk (see headerInFirst). */
  get firstChunk(): Buffer {
    return this.chunks[this.first] as Buffer;
  }

  byteAt(i: number): number {
    let idx = this.head + i;
    for (let k = this.first; k < this.chunks.length; k++) {
      const c = this.chunks[k] as Buffer;
      if (idx < c.length) return c[idx] as number;
      idx -= c.length;
    }
    throw new RangeError('byteAt past end');
  }

  int32At(i: number): number {
    return (
      (this.byteAt(i) << 24) | (this.byteAt(i + 1) << 16) | (this.byteAt(i + 2) << 8) | this.byteAt(i + 3) | 0
    );
  }

  private dropFirst(): void {
    this.first++;
    this.head = 0;
    this.firstAb = null;
    if (this.first === this.chunks.length) {
      this.chunks = [];
      this.first = 0;
    } else if (this.first >= 1024 && this.first * 2 >= this.chunks.length) {
      this.chunks = this.chunks.slice(this.first);
      this.first = 0;
    }
  }

  /** Where the bytes `take` last returned lie (null: a copy, ask the Buffer). */
  takenAb: ArrayBufferLike | null = null;
  takenAt = 0;

  /** Removes and returns the next n bytes; a view when they lie in one chunk. */
  take(n: number): Buffer {
    const firstChunk = this.chunks[this.first] as Buffer;
    if (firstChunk.length - this.head >= n) {
      if (this.firstAb === null) {
        this.firstAb = firstChunk.buffer;
        this.firstBase = firstChunk.byteOffset;
      }
      this.takenAb = this.firstAb;
      this.takenAt = this.firstBase + this.head;
      const out = bufferView(this.firstAb, this.takenAt, n);
      this.head += n;
      if (this.head === firstChunk.length) this.dropFirst();
      this.length -= n;
      return out;
    }
    this.takenAb = null;
    const out = Buffer.allocUnsafe(n);
    let filled = 0;
    while (filled < n) {
      const c = this.chunks[this.first] as Buffer;
      const want = Math.min(c.length - this.head, n - filled);
      c.copy(out, filled, this.head, this.head + want);
      filled += want;
      this.head += want;
      if (this.head === c.length) this.dropFirst();
    }
    this.length -= n;
    return out;
  }
}

export class FrontendFramer {
  private readonly q = new ChunkQueue();
  private startup = true;

  constructor(private maxMessageBytes: number) {}

  /** The largest typed message accepted from now on (a length above it is a protocol error at once). */
  setMaxMessageBytes(n: number): void {
    this.maxMessageBytes = n;
  }

  /** Bytes received but not yet returned as frames. */
  get buffered(): number {
    return this.q.length;
  }

  /** The startup phase uses untyped packets; after the StartupMessage every frame is typed. */
  setStartupPhase(on: boolean): void {
    this.startup = on;
  }

  push(chunk: Buffer): void {
    this.q.push(chunk);
  }

  /** The next complete frame, or null when more bytes are needed. Throws ProtocolError. */
  next(): FrontendFrame | null {
    const q = this.q;
    if (this.startup) {
      if (q.length < 4) return null;
      const len = q.int32At(0);
      // ProcessStartupPacket: len -= 4; len < 4 || len > MAX_STARTUP_PACKET_LENGTH is logged as
      // COMMERROR "invalid length of startup packet" and the socket closed without a reply. A
      // Terminate sent before the startup packet ('X' 00 00 00 04, what node-postgres's end()
      // writes while it is still connecting; libpq sends Terminate only once connected) reads as
      // length 0x58000000.
      if (len < MIN_STARTUP_PACKET_BYTES || len - 4 > MAX_STARTUP_PACKET_BYTES) {
        throw new ProtocolError(
          ErrorCodes.PROTOCOL_STARTUP_LENGTH,
          `invalid length of startup packet: ${len}`,
          true,
        );
      }
      if (q.length < len) return null;
      const bytes = q.take(len);
      return { type: 0, bytes, bodyOffset: 4, ab: q.takenAb, at: q.takenAt };
    }
    if (q.length < 1) return null;
    const at = q.headerInFirst();
    const c = q.firstChunk;
    const type = at >= 0 ? (c[at] as number) : q.byteAt(0);
    if (frontendTypeName(type) === undefined) {
      throw new ProtocolError(ErrorCodes.PROTOCOL_UNKNOWN_MESSAGE, `invalid frontend message type ${type}`);
    }
    if (q.length < 5) return null;
    const len = at >= 0 ? c.readInt32BE(at + 1) : q.int32At(1);
    if (len < 4) {
      throw new ProtocolError(ErrorCodes.PROTOCOL_BAD_LENGTH, `invalid message length ${len}`);
    }
    if (len > this.maxMessageBytes) {
      throw new ProtocolError(
        ErrorCodes.PROTOCOL_FRAME_TOO_LARGE,
        `message of ${len} bytes exceeds the limit of ${this.maxMessageBytes}`,
      );
    }
    const total = len + 1;
    if (q.length < total) return null;
    const bytes = q.take(total);
    return { type, bytes, bodyOffset: 5, ab: q.takenAb, at: q.takenAt };
  }
}

/**
 * What the session does with an inspected backend message, the bytes `source[start, end)`: `null`
 * forwards the original bytes, a Buffer replaces them (an empty Buffer drops the message). The
 * message is given by place, not as a view: an inspector that reads only the type (most answers)
 * makes no view of it.
 */
export type BackendInspector = (type: number, source: Buffer, start: number, end: number) => Buffer | null;

/**
 * Scans backend bytes without holding them. `inspect[type]` marks the types handed to the
 * inspector whole; all others are skipped by length and forwarded as the original chunk bytes.
 */
export class BackendScanner {
  /** Bytes of a header or inspected message that is not complete yet. */
  private held: Buffer[] = [];
  private heldLength = 0;
  /** Bytes still to pass through of a message that is not inspected. */
  private skip = 0;

  /**
   * @param inspect  1 for each type byte to hand to the inspector whole
   * @param counts   optional per-type message counters (index = type byte), incremented per header
   */
  constructor(
    private readonly inspect: Uint8Array,
    private readonly counts: Float64Array | null = null,
    private readonly passLarge: Uint8Array | null = null,
  ) {}

  /** Returns the buffers to forward to the client, in order. Throws ProtocolError on bad framing. */
  push(chunk: Buffer, inspector: BackendInspector): Buffer[] {
    const out: Buffer[] = [];
    let pos = 0;
    let passStart = 0;
    const n = chunk.length;

    if (this.skip > 0) {
      const s = Math.min(this.skip, n);
      this.skip -= s;
      pos = s;
    }

    while (pos < n) {
      if (this.heldLength > 0) {
        // Complete a held header or inspected message from this chunk.
        if (this.heldLength < 5) {
          // The header is not complete yet: take bytes up to 5.
          const want = Math.min(5 - this.heldLength, n - pos);
          this.hold(chunk.subarray(pos, pos + want));
          pos += want;
          passStart = pos;
          if (this.heldLength < 5) continue;
          // The header is complete: count it once, and go on even when the chunk ends here (a
          // message with an empty body, e.g. ParseComplete, must not wait for the next chunk).
          if (this.counts) this.counts[this.heldByte(0)]!++;
        }
        const need = this.neededForHeld();
        const want = Math.min(need, n - pos);
        this.hold(chunk.subarray(pos, pos + want));
        pos += want;
        passStart = pos;
        if (this.neededForHeld() !== 0) continue;
        const whole =
          this.heldLength === this.held[0]?.length
            ? (this.held[0] as Buffer)
            : Buffer.concat(this.held, this.heldLength);
        this.held = [];
        this.heldLength = 0;
        const type = whole[0] as number;
        if (this.inspects(type, whole.readInt32BE(1))) {
          const rep = inspector(type, whole, 0, whole.length);
          out.push(rep ?? whole);
        } else {
          // A header that was split across chunks of a message that is not inspected.
          out.push(whole);
          const len = whole.readInt32BE(1);
          const bodyLeft = len - 4;
          const s = Math.min(bodyLeft, n - pos);
          this.skip = bodyLeft - s;
          pos += s;
          if (s > 0) out.push(chunk.subarray(pos - s, pos));
          passStart = pos;
        }
        continue;
      }

      if (n - pos < 5) {
        // Header split across chunks: forward what precedes it, hold the rest.
        if (pos > passStart) out.push(chunk.subarray(passStart, pos));
        this.hold(chunk.subarray(pos, n));
        this.checkHeldHeader();
        pos = n;
        passStart = n;
        break;
      }
      const type = chunk[pos] as number;
      const len = chunk.readInt32BE(pos + 1);
      if (len < 4) {
        throw new ProtocolError(ErrorCodes.UPSTREAM_PROTOCOL, `invalid backend message length ${len}`);
      }
      if (this.counts) this.counts[type]!++;
      if (!this.inspects(type, len)) {
        const total = len + 1;
        if (n - pos >= total) {
          pos += total;
        } else {
          this.skip = total - (n - pos);
          pos = n;
        }
        continue;
      }
      const total = len + 1;
      if (n - pos >= total) {
        const rep = inspector(type, chunk, pos, pos + total);
        if (rep !== null) {
          // Only a replacement splits the chunk; an inspected message kept as is stays in place.
          if (pos > passStart) out.push(chunk.subarray(passStart, pos));
          out.push(rep);
          passStart = pos + total;
        }
        pos += total;
      } else {
        if (pos > passStart) out.push(chunk.subarray(passStart, pos));
        this.hold(chunk.subarray(pos, n));
        pos = n;
        passStart = n;
      }
    }
    // A chunk forwarded whole (the common case) goes as it came, without a view of it.
    if (pos > passStart) out.push(passStart === 0 && pos === n ? chunk : chunk.subarray(passStart, pos));
    return out;
  }

  private hold(b: Buffer): void {
    if (b.length === 0) return;
    // Copy: the chunk may be reused by the socket layer only in theory, but a held slice would
    // also pin the whole chunk in memory.
    this.held.push(Buffer.from(b));
    this.heldLength += b.length;
  }

  private checkHeldHeader(): void {
    if (this.heldLength >= 5) {
      const len = this.heldInt32(1);
      if (len < 4)
        throw new ProtocolError(ErrorCodes.UPSTREAM_PROTOCOL, `invalid backend message length ${len}`);
    }
  }

  private heldByte(i: number): number {
    let idx = i;
    for (const c of this.held) {
      if (idx < c.length) return c[idx] as number;
      idx -= c.length;
    }
    throw new RangeError('heldByte');
  }

  private heldInt32(i: number): number {
    return (
      (this.heldByte(i) << 24) |
      (this.heldByte(i + 1) << 16) |
      (this.heldByte(i + 2) << 8) |
      this.heldByte(i + 3) |
      0
    );
  }

  /** -1 while the header is incomplete; else bytes still needed (0 = complete). */
  private neededForHeld(): number {
    if (this.heldLength < 5) return -1;
    const type = this.heldByte(0);
    const len = this.heldInt32(1);
    if (len < 4)
      throw new ProtocolError(ErrorCodes.UPSTREAM_PROTOCOL, `invalid backend message length ${len}`);
    if (!this.inspects(type, len)) return 0; // only the header is held for skipped types
    return len + 1 - this.heldLength;
  }

  /**
   * Whether a message is handed to the inspector whole. Inspected messages are held in memory, so
   * they are capped; a type marked in `passLarge` (ErrorResponse: PostgreSQL quotes whole values
   * in some messages) passes through uninspected above the cap instead of failing the session.
   */
  private inspects(type: number, len: number): boolean {
    if (!this.inspect[type]) return false;
    if (len + 1 <= MAX_INSPECTED_BACKEND_MESSAGE_BYTES) return true;
    if (this.passLarge?.[type]) return false;
    throw new ProtocolError(ErrorCodes.UPSTREAM_PROTOCOL, `backend message of ${len} bytes is too large`);
  }
}
