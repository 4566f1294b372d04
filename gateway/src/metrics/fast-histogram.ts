/**
 * A label-less histogram for the per-message hot path: `observe` is a bucket search and three
 * additions (prom-client's Histogram hashes a labels object on every call, ~0.5 µs). It registers
 * with a prom-client Registry as a metric of its own and exposes exactly what a prom-client
 * Histogram with the same buckets and observations would (fast-histogram.test.ts compares them).
 */
import type { Registry } from 'prom-client';

interface ExportedValue {
  labels: Record<string, string | number>;
  value: number;
  metricName: string;
  exemplar?: null;
}

export class FastHistogram {
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  private readonly bounds: Float64Array;
  /** Per-bucket (not cumulative) counts; the last one is +Inf. */
  private readonly counts: Float64Array;
  private sum = 0;
  private count = 0;

  constructor(
    readonly name: string,
    readonly help: string,
    buckets: readonly number[],
    registry: Registry,
  ) {
    const sorted = [...buckets].sort((a, b) => a - b);
    this.bounds = Float64Array.from(sorted);
    this.counts = new Float64Array(sorted.length + 1);
    registry.registerMetric(this as never);
  }

  observe(value: number): void {
    if (!Number.isFinite(value)) return;
    const b = this.bounds;
    let i = 0;
    while (i < b.length && value > b[i]!) i++;
    this.counts[i]! += 1;
    this.sum += value;
    this.count += 1;
  }

  reset(): void {
    this.counts.fill(0);
    this.sum = 0;
    this.count = 0;
  }

  private values(): ExportedValue[] {
    const out: ExportedValue[] = [];
    let acc = 0;
    for (let i = 0; i < this.bounds.length; i++) {
      acc += this.counts[i]!;
      out.push({
        labels: { le: this.bounds[i]! },
        value: acc,
        metricName: `${this.name}_bucket`,
        exemplar: null,
      });
    }
    out.push({
      labels: { le: '+Inf' },
      value: this.count,
      metricName: `${this.name}_bucket`,
      exemplar: null,
    });
    out.push({ labels: {}, value: this.sum, metricName: `${this.name}_sum` });
    out.push({ labels: {}, value: this.count, metricName: `${this.name}_count` });
    return out;
  }

  get(): Promise<{ name: string; help: string; type: string; values: ExportedValue[]; aggregator: string }> {
    return Promise.resolve({
      name: this.name,
      help: this.help,
      type: this.type,
      values: this.values(),
      aggregator: this.aggregator,
    });
  }
}
