import fc from 'fast-check';
import { coalesce } from './session';

describe('coalesce', () => {
  it('merges adjacent views of one chunk, keeps everything else, and loses no byte', () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ len: fc.integer({ min: 0, max: 20 }), foreign: fc.boolean() }), {
          minLength: 1,
          maxLength: 12,
        }),
        (parts) => {
          const chunk = Buffer.from(Array.from({ length: 300 }, (_, i) => i & 0xff));
          let pos = 0;
          let runs = 0;
          let prevForeign = true;
          const bufs = parts.map(({ len, foreign }) => {
            if (foreign || prevForeign) runs++;
            prevForeign = foreign;
            if (foreign) return Buffer.alloc(len, 7); // unpooled: never adjacent to anything
            const b = chunk.subarray(pos, pos + len);
            pos += len;
            return b;
          });
          const out = coalesce(bufs);
          expect(Buffer.concat(out).equals(Buffer.concat(bufs))).toBe(true);
          expect(out).toHaveLength(runs);
        },
      ),
    );
  });

  it('returns a lone buffer itself', () => {
    const b = Buffer.from('abc');
    expect(coalesce([b])[0]).toBe(b);
  });
});
