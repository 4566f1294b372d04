import fc from 'fast-check';
import { Histogram, Registry } from 'prom-client';
import { FastHistogram } from './fast-histogram';

const BUCKETS = [1e-6, 2.5e-6, 5e-6, 1e-5, 2.5e-5, 1e-4, 1e-3];

describe('FastHistogram', () => {
  it('exposes exactly what a prom-client Histogram with the same observations does', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.oneof(fc.double({ min: 0, max: 0.01, noNaN: true }), fc.constantFrom(...BUCKETS)), {
          maxLength: 50,
        }),
        async (values) => {
          const a = new Registry();
          const b = new Registry();
          const fast = new FastHistogram('h_seconds', 'help text', BUCKETS, a);
          const slow = new Histogram({
            name: 'h_seconds',
            help: 'help text',
            buckets: BUCKETS,
            registers: [b],
          });
          for (const v of values) {
            fast.observe(v);
            slow.observe(v);
          }
          expect(await a.metrics()).toBe(await b.metrics());
          expect(await a.getMetricsAsJSON()).toEqual(await b.getMetricsAsJSON());
        },
      ),
      { numRuns: 200 },
    );
  });

  it('ignores values that are not finite, and resets', async () => {
    const r = new Registry();
    const h = new FastHistogram('x', 'x', BUCKETS, r);
    h.observe(NaN);
    h.observe(Infinity);
    h.observe(2e-6);
    expect(await r.metrics()).toContain('x_count 1');
    h.reset();
    expect(await r.metrics()).toContain('x_count 0');
  });
});
