import { BodyReader } from './reader';
import { ProtocolError } from './errors';

/** `body` placed inside a larger buffer, as frames lie in a read, with where it lies. */
function placed(body: Buffer): { buf: Buffer; ab: ArrayBufferLike; at: number } {
  const whole = Buffer.concat([Buffer.from('junk'), body, Buffer.from('more')]);
  const buf = whole.subarray(4, 4 + body.length);
  return { buf, ab: buf.buffer, at: buf.byteOffset };
}

describe('BodyReader', () => {
  // Strings on both sides of the byte-by-byte scan's reach (128), and NUL-less tails.
  const lengths = [0, 1, 127, 128, 129, 300, 5000];

  test.each(lengths)('a string of %i bytes reads alike with and without where the body lies', (n) => {
    const text = Buffer.alloc(n, 0x61);
    const body = Buffer.concat([text, Buffer.from([0]), Buffer.from('tail\0'), Buffer.from([1, 2, 3])]);
    const { buf, ab, at } = placed(body);
    for (const r of [new BodyReader(buf, 0), new BodyReader(buf, 0, buf.length, ab, at)]) {
      const b = r.cstringBytes();
      expect(b.equals(text)).toBe(true);
      expect(Buffer.isBuffer(b)).toBe(true);
      expect(r.cstring()).toBe('tail');
      const rest = r.bytes(2);
      expect([...rest]).toEqual([1, 2]);
      expect([...r.rest()]).toEqual([3]);
      r.done('test');
    }
    // A view shares the frame's memory (no copy).
    const v = new BodyReader(buf, 0, buf.length, ab, at).cstringBytes();
    if (n > 0) {
      buf[0] = 0x62;
      expect(v[0]).toBe(0x62);
    }
  });

  test.each(lengths)(
    'a string of %i bytes without its NUL is refused, even when a NUL follows the body',
    (n) => {
      const body = Buffer.alloc(n, 0x61);
      // The byte after the body is a NUL: it must not be taken for the terminator.
      const whole = Buffer.concat([body, Buffer.from([0, 0])]);
      const buf = whole.subarray(0, n);
      for (const r of [new BodyReader(buf, 0), new BodyReader(whole, 0, n, whole.buffer, whole.byteOffset)]) {
        expect(() => r.cstringBytes()).toThrow(ProtocolError);
      }
      expect(() => new BodyReader(whole, 0, n).cstring()).toThrow('string not terminated');
    },
  );
});
