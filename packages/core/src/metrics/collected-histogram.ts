import type { Histogram } from 'prom-client';

/**
 * A label-less histogram whose `record()` only bumps numbers in a typed array; prom-client reads
 * them through `get()` at scrape time. prom-client's own `Histogram.observe` hashes a label
 * object on every call, which is too much for the per-request verify path.
 *
 * It implements the metric contract the prom-client Registry calls (`name`, `help`, `type`,
 * `aggregator`, `get()`, `reset()`), so it can be registered beside ordinary metrics.
 */
export class CollectedHistogram {
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  readonly labelNames: string[] = [];
  private readonly bounds: Float64Array;
  private counts: Float64Array;
  private sum = 0;
  private count = 0;

  constructor(
    readonly name: string,
    readonly help: string,
    buckets: readonly number[],
  ) {
    this.bounds = Float64Array.from([...buckets].sort((a, b) => a - b));
    this.counts = new Float64Array(this.bounds.length);
  }

  /** Records one observation (same unit as the buckets). Non-finite values are ignored. */
  record(value: number): void {
    if (!Number.isFinite(value)) return;
    this.sum += value;
    this.count += 1;
    const bounds = this.bounds;
    for (let i = 0; i < bounds.length; i++) {
      if (value <= bounds[i]!) {
        this.counts[i]! += 1;
        return;
      }
    }
  }

  reset(): void {
    this.counts = new Float64Array(this.bounds.length);
    this.sum = 0;
    this.count = 0;
  }

  /** Snapshot in prom-client's metric-object shape (buckets cumulative, `+Inf` last). */
  async get() {
    const values: { labels: Record<string, string | number>; value: number; metricName: string }[] = [];
    let cumulative = 0;
    for (let i = 0; i < this.bounds.length; i++) {
      cumulative += this.counts[i]!;
      values.push({ labels: { le: this.bounds[i]! }, value: cumulative, metricName: `${this.name}_bucket` });
    }
    values.push({ labels: { le: '+Inf' }, value: this.count, metricName: `${this.name}_bucket` });
    values.push({ labels: {}, value: this.sum, metricName: `${this.name}_sum` });
    values.push({ labels: {}, value: this.count, metricName: `${this.name}_count` });
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }

  /** The registry only accepts its own metric classes in its types; this object honours the same contract. */
  asMetric(): Histogram {
    return this as unknown as Histogram;
  }
}
