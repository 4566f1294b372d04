import fc from 'fast-check';
import { coalesce } from './session';
import { UpstreamRuns } from './core';
import { FrontendFramer } from '../protocol/framing';
import { encodeParse } from '../protocol/frontend/parse';
import { encodeSync } from '../protocol/frontend/simple-messages';

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

describe('UpstreamRuns', () => {
  const chunk = Buffer.from('PxxxxBxxxxxExxxS'); // four "frames" of one client read
  const frames = [chunk.subarray(0, 5), chunk.subarray(5, 11), chunk.subarray(11, 15), chunk.subarray(15)];

  it('writes a read whose frames all go on as the chunk itself, in one write', () => {
    const r = new UpstreamRuns();
    r.setChunk(chunk);
    for (const f of frames) r.push(f);
    expect(r.bytes).toBe(chunk.length);
    const out = r.take();
    expect(out).toHaveLength(1);
    expect(out![0]).toBe(chunk);
    expect(r.take()).toBeNull();
    expect(r.bytes).toBe(0);
  });

  it('keeps the order and every byte when a frame is replaced or left out', () => {
    const r = new UpstreamRuns();
    r.setChunk(chunk);
    const other = Buffer.from('ZZ');
    r.push(frames[0]!);
    r.push(other);
    r.push(frames[2]!);
    r.push(frames[3]!);
    const out = r.take()!;
    expect(out.map((b) => b.toString())).toEqual(['Pxxxx', 'ZZ', 'ExxxS']);
    expect(out[0]).toBe(frames[0]);
  });

  it('merges the frames of a read by where the framer says they lie, and the sentinel replacing one by its own', () => {
    // As the core pushes them: `frame` is set to each frame as it is processed, and a denied
    // frame's sentinel is pushed while its frame is current.
    const read = Buffer.concat([encodeParse('', 'SELECT 1'), encodeSync(), encodeSync()]);
    const framer = new FrontendFramer(1 << 20);
    framer.setStartupPhase(false);
    framer.push(read);
    const r = new UpstreamRuns();
    r.setChunk(read);
    const sentinel = Buffer.from(read.subarray(read.length - 5)); // same bytes, another buffer
    for (let i = 0; i < 3; i++) {
      const f = framer.next()!;
      expect(f.ab).not.toBeNull();
      r.frame = f;
      r.push(i === 1 ? sentinel : f.bytes);
    }
    r.frame = null;
    const out = r.take()!;
    expect(out).toHaveLength(3);
    expect(out[1]).toBe(sentinel);
    expect(Buffer.concat(out)).toEqual(read);
    // All three as they came: the read itself, one write.
    framer.push(read);
    r.setChunk(read);
    for (let f = framer.next(); f !== null; f = framer.next()) {
      r.frame = f;
      r.push(f.bytes);
    }
    const whole = r.take()!;
    expect(whole).toHaveLength(1);
    expect(whole[0]).toBe(read);
  });

  it('forgets what was queued when cleared (a FATAL)', () => {
    const r = new UpstreamRuns();
    r.push(frames[0]!);
    r.clear();
    expect(r.take()).toBeNull();
  });
});
