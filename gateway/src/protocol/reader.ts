import { malformed } from './errors';
import { bufferView } from './view';

/** NULs looked for byte by byte before asking Buffer#indexOf (a native call of about 35 ns). */
const SCAN_INLINE = 128;

/**
 * Bounds-checked reader over one message body. Every read throws ProtocolError past the end.
 * `ab`/`at`: where `buf` lies, when the caller knows (FrontendFrame): views of it are then made
 * without Buffer#subarray, which reads both through getters (protocol/view.ts).
 */
export class BodyReader {
  private pos: number;
  constructor(
    private readonly buf: Buffer,
    start: number,
    private readonly end: number = buf.length,
    private readonly ab: ArrayBufferLike | null = null,
    private readonly at: number = 0,
  ) {
    this.pos = start;
  }

  /** A view of buf[start, end). */
  private view(start: number, end: number): Buffer {
    return this.ab !== null
      ? bufferView(this.ab, this.at + start, end - start)
      : this.buf.subarray(start, end);
  }

  /** The index of the first NUL at or after `from` and before the end, or -1. */
  private nul(from: number): number {
    const b = this.buf;
    const end = this.end;
    const stop = end - from > SCAN_INLINE ? from + SCAN_INLINE : end;
    for (let i = from; i < stop; i++) if (b[i] === 0) return i;
    if (stop === end) return -1;
    const i = b.indexOf(0, stop);
    return i < end ? i : -1;
  }

  get remaining(): number {
    return this.end - this.pos;
  }

  int8(): number {
    if (this.pos + 1 > this.end) throw malformed('message truncated (int8)');
    return this.buf[this.pos++] as number;
  }

  int16(): number {
    if (this.pos + 2 > this.end) throw malformed('message truncated (int16)');
    const v = this.buf.readInt16BE(this.pos);
    this.pos += 2;
    return v;
  }

  /**
   * An unsigned Int16. PostgreSQL reads every count (parameters, formats, columns) with
   * pq_getmsgint(msg, 2), which returns it unsigned: 0..65,535, never negative.
   */
  uint16(): number {
    if (this.pos + 2 > this.end) throw malformed('message truncated (int16)');
    const v = this.buf.readUInt16BE(this.pos);
    this.pos += 2;
    return v;
  }

  int32(): number {
    if (this.pos + 4 > this.end) throw malformed('message truncated (int32)');
    const v = this.buf.readInt32BE(this.pos);
    this.pos += 4;
    return v;
  }

  uint32(): number {
    if (this.pos + 4 > this.end) throw malformed('message truncated (int32)');
    const v = this.buf.readUInt32BE(this.pos);
    this.pos += 4;
    return v;
  }

  /** A NUL-terminated string (PostgreSQL "String"), decoded as UTF-8. */
  cstring(): string {
    // The unnamed statement and portal (most Bind, Describe and Execute names): no native call.
    if (this.pos < this.end && this.buf[this.pos] === 0) {
      this.pos += 1;
      return '';
    }
    const nul = this.nul(this.pos);
    if (nul < 0) throw malformed('string not terminated');
    const s = this.buf.toString('utf8', this.pos, nul);
    this.pos = nul + 1;
    return s;
  }

  /**
   * A NUL-terminated string as its bytes (a view, no copy, the NUL excluded): for SQL text, which
   * the session decodes once in the encoding the server reads it in (sql/lexical.ts readSqlText).
   */
  cstringBytes(): Buffer {
    const nul = this.nul(this.pos);
    if (nul < 0) throw malformed('string not terminated');
    const b = this.view(this.pos, nul);
    this.pos = nul + 1;
    return b;
  }

  bytes(n: number): Buffer {
    if (n < 0 || this.pos + n > this.end) throw malformed('message truncated (bytes)');
    const b = this.view(this.pos, this.pos + n);
    this.pos += n;
    return b;
  }

  /**
   * Checks, before an array of `count` items is allocated, that the body still holds at least
   * `minBytesEach` bytes per item (a peer-controlled count never sizes memory beyond the message).
   */
  expect(count: number, minBytesEach: number, what: string): void {
    if (count * minBytesEach > this.end - this.pos)
      throw malformed(`${what}: count ${count} exceeds the message`);
  }

  rest(): Buffer {
    const b = this.view(this.pos, this.end);
    this.pos = this.end;
    return b;
  }

  /** Every decoder ends with this: a body must be consumed exactly to its length. */
  done(what: string): void {
    if (this.pos !== this.end) throw malformed(`${what}: ${this.end - this.pos} trailing bytes`);
  }
}
