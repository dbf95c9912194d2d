/**
 * Counters, gauges and histograms for the per-request path. prom-client hashes the label values on every
 * `inc`/`observe`, even through a label child — a quarter of the time of a cached prediction. Here
 * a child is a plain object resolved once per label set, and an update is an addition; the values
 * are read only when /metrics is scraped, through the prom-client registry's metric interface
 * (`name`, `help`, `type`, `get()`; options shaped as prom-client's), so they appear in the same exposition as every other metric.
 */
import type { Registry } from 'prom-client';

type Labels = Record<string, string>;

interface MetricValue { value: number; labels: Labels; metricName?: string }

abstract class HotMetric<C> {
  readonly aggregator = 'sum';
  protected readonly children = new Map<string, { labels: Labels; child: C }>();

  constructor(readonly name: string, readonly help: string, readonly type: 'counter' | 'gauge' | 'histogram', private readonly labelNames: readonly string[], registers: readonly Registry[]) {
    for (const r of registers) r.registerMetric(this as never);
  }

  /** The child of these label values (in labelNames order); resolve it once and keep it. */
  labels(...values: string[]): C {
    const key = values.join('\u0000');
    let c = this.children.get(key);
    if (!c) {
      const labels: Labels = {};
      this.labelNames.forEach((n, i) => { labels[n] = values[i] ?? ''; });
      c = { labels, child: this.create() };
      this.children.set(key, c);
    }
    return c.child;
  }

  protected abstract create(): C;
  abstract get(): { name: string; help: string; type: string; aggregator: string; values: MetricValue[] };

  protected exposed(values: MetricValue[]) {
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }

  /** One sample per child, for children that hold one `value` (counters, gauges). */
  protected plainValues(this: HotMetric<{ value: number }>): MetricValue[] {
    return [...this.children.values()].map(({ labels, child }) => ({ value: child.value, labels }));
  }
}

export class CounterChild {
  value = 0;
  inc(n = 1): void { this.value += n; }
}

export class HotCounter extends HotMetric<CounterChild> {
  constructor(o: { name: string; help: string; labelNames: readonly string[]; registers: readonly Registry[] }) {
    super(o.name, o.help, 'counter', o.labelNames, o.registers);
  }

  protected create(): CounterChild { return new CounterChild(); }

  get() { return this.exposed(this.plainValues()); }
}

export class GaugeChild {
  value = 0;
  set(v: number): void { this.value = v; }
}

export class HotGauge extends HotMetric<GaugeChild> {
  constructor(o: { name: string; help: string; labelNames: readonly string[]; registers: readonly Registry[] }) {
    super(o.name, o.help, 'gauge', o.labelNames, o.registers);
  }

  protected create(): GaugeChild { return new GaugeChild(); }

  get() { return this.exposed(this.plainValues()); }
}

export class HistogramChild {
  readonly counts: Float64Array;
  sum = 0;
  count = 0;
  constructor(private readonly bounds: readonly number[]) {
    this.counts = new Float64Array(bounds.length);
  }

  observe(v: number): void {
    this.sum += v;
    this.count++;
    const b = this.bounds;
    // Buckets are few and the values mostly small: a linear scan from the bottom is cheapest.
    for (let i = 0; i < b.length; i++) {
      if (v <= b[i]!) {
        this.counts[i]!++;
        return;
      }
    }
  }
}

export class HotHistogram extends HotMetric<HistogramChild> {
  private readonly buckets: readonly number[];

  constructor(o: { name: string; help: string; labelNames: readonly string[]; buckets: readonly number[]; registers: readonly Registry[] }) {
    super(o.name, o.help, 'histogram', o.labelNames, o.registers);
    this.buckets = [...o.buckets].sort((a, b) => a - b);
  }

  protected create(): HistogramChild { return new HistogramChild(this.buckets); }

  get() {
    const values: MetricValue[] = [];
    for (const { labels, child } of this.children.values()) {
      let cumulative = 0;
      this.buckets.forEach((le, i) => {
        cumulative += child.counts[i]!;
        values.push({ metricName: `${this.name}_bucket`, labels: { le: String(le), ...labels }, value: cumulative });
      });
      values.push({ metricName: `${this.name}_bucket`, labels: { le: '+Inf', ...labels }, value: child.count });
      values.push({ metricName: `${this.name}_sum`, labels, value: child.sum });
      values.push({ metricName: `${this.name}_count`, labels, value: child.count });
    }
    return this.exposed(values);
  }
}
