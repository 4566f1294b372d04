import { CacheGate } from './cache-gate';

/** Runs `n` documents of `kind` through the gate; how many were looked up. */
function run(g: CacheGate, kind: string, n: number, hit: (i: number) => boolean): number {
  let looked = 0;
  for (let i = 0; i < n; i++) {
    const k = g.enter(kind);
    if (k === null) continue;
    looked++;
    g.leave(k, hit(i));
  }
  return looked;
}

describe('CacheGate', () => {
  it('keeps looking up a kind whose documents repeat', () => {
    const g = new CacheGate(100, 32, 15);
    expect(run(g, 'Query', 10_000, (i) => i % 10 !== 0)).toBe(10_000);
    expect(g.resting('Query')).toBe(false);
  });

  it('rests a kind that does not repeat for `rest` windows, then watches it again', () => {
    const g = new CacheGate(100, 32, 15);
    expect(run(g, 'Bind', 100, () => false)).toBe(100);
    expect(g.resting('Bind')).toBe(true);
    // 1500 documents without a lookup, then a new window.
    expect(run(g, 'Bind', 1500, () => false)).toBe(0);
    expect(g.resting('Bind')).toBe(false);
    expect(run(g, 'Bind', 100, () => false)).toBe(100);
    expect(g.resting('Bind')).toBe(true);
  });

  it('judges kinds apart, and at the threshold (one hit in 32) keeps the cache', () => {
    const g = new CacheGate(320, 32, 15);
    run(g, 'Bind', 320, () => false);
    expect(run(g, 'Parse', 320, (i) => i % 32 === 0)).toBe(320); // 10 hits in 320
    expect(g.resting('Bind')).toBe(true);
    expect(g.resting('Parse')).toBe(false);
    run(g, 'Parse', 320, (i) => i === 0); // 1 hit in 320
    expect(g.resting('Parse')).toBe(true);
  });

  it('takes a kind back once its documents start repeating', () => {
    const g = new CacheGate(100, 32, 2);
    run(g, 'Bind', 100, () => false);
    run(g, 'Bind', 200, () => false); // the rest
    expect(run(g, 'Bind', 1000, () => true)).toBe(1000);
    expect(g.resting('Bind')).toBe(false);
  });
});
