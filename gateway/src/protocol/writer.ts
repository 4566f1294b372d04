/** Small growable writer for the messages pgward itself synthesizes (never on forwarded traffic). */
export class MessageWriter {
  private buf: Buffer;
  private pos = 0;

  constructor(size = 256) {
    this.buf = Buffer.allocUnsafe(size);
  }

  private ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.pos + n));
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }

  int8(v: number): this {
    this.ensure(1);
    this.buf[this.pos++] = v & 0xff;
    return this;
  }

  /** An Int16, signed (-32,768..) or unsigned (..65,535: counts are unsigned on the wire). */
  int16(v: number): this {
    if (!Number.isInteger(v) || v < -0x8000 || v > 0xffff) throw new RangeError(`int16 out of range: ${v}`);
    this.ensure(2);
    this.buf.writeUInt16BE(v & 0xffff, this.pos);
    this.pos += 2;
    return this;
  }

  int32(v: number): this {
    this.ensure(4);
    this.buf.writeInt32BE(v, this.pos);
    this.pos += 4;
    return this;
  }

  uint32(v: number): this {
    this.ensure(4);
    this.buf.writeUInt32BE(v >>> 0, this.pos);
    this.pos += 4;
    return this;
  }

  cstring(s: string): this {
    const n = Buffer.byteLength(s, 'utf8');
    this.ensure(n + 1);
    this.buf.write(s, this.pos, 'utf8');
    this.pos += n;
    this.buf[this.pos++] = 0;
    return this;
  }

  bytes(b: Uint8Array): this {
    this.ensure(b.length);
    this.buf.set(b, this.pos);
    this.pos += b.length;
    return this;
  }

  /** A typed message: type byte, int32 length (including itself), body. */
  message(type: string): Buffer {
    const out = Buffer.allocUnsafe(5 + this.pos);
    out[0] = type.charCodeAt(0);
    out.writeInt32BE(4 + this.pos, 1);
    this.buf.copy(out, 5, 0, this.pos);
    return out;
  }

  /** An untyped (startup-phase) packet: int32 length, body. */
  packet(): Buffer {
    const out = Buffer.allocUnsafe(4 + this.pos);
    out.writeInt32BE(4 + this.pos, 0);
    this.buf.copy(out, 4, 0, this.pos);
    return out;
  }
}
