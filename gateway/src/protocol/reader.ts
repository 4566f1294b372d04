import { malformed } from './errors';

/** Bounds-checked reader over one message body. Every read throws ProtocolError past the end. */
export class BodyReader {
  private pos: number;
  constructor(
    private readonly buf: Buffer,
    start: number,
    private readonly end: number = buf.length,
  ) {
    this.pos = start;
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
    const nul = this.buf.indexOf(0, this.pos);
    if (nul < 0 || nul >= this.end) throw malformed('string not terminated');
    const s = this.buf.toString('utf8', this.pos, nul);
    this.pos = nul + 1;
    return s;
  }

  /**
   * A NUL-terminated string as its bytes (a view, no copy, the NUL excluded): for SQL text, which
   * the session decodes once in the encoding the server reads it in (sql/lexical.ts readSqlText).
   */
  cstringBytes(): Buffer {
    const nul = this.buf.indexOf(0, this.pos);
    if (nul < 0 || nul >= this.end) throw malformed('string not terminated');
    const b = this.buf.subarray(this.pos, nul);
    this.pos = nul + 1;
    return b;
  }

  bytes(n: number): Buffer {
    if (n < 0 || this.pos + n > this.end) throw malformed('message truncated (bytes)');
    const b = this.buf.subarray(this.pos, this.pos + n);
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
    const b = this.buf.subarray(this.pos, this.end);
    this.pos = this.end;
    return b;
  }

  /** Every decoder ends with this: a body must be consumed exactly to its length. */
  done(what: string): void {
    if (this.pos !== this.end) throw malformed(`${what}: ${this.end - this.pos} trailing bytes`);
  }
}
