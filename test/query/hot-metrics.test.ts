/** The per-request counters and histograms expose what prom-client's would, in its registry. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { HotCounter, HotGauge, HotHistogram } from '../../src/query/hot-metrics.ts';

describe('hot metrics', () => {
  it('write the same exposition as prom-client for the same updates', async () => {
    const ours = new Registry();
    const theirs = new Registry();
    const spec = { help: 'h', labelNames: ['model', 'version'] };
    const c1 = new HotCounter({ name: 'x_total', ...spec, registers: [ours] });
    const c2 = new Counter({ name: 'x_total', ...spec, registers: [theirs] });
    const h1 = new HotHistogram({ name: 'y_seconds', ...spec, buckets: [0.1, 0.01, 1], registers: [ours] });
    const h2 = new Histogram({ name: 'y_seconds', ...spec, buckets: [0.01, 0.1, 1], registers: [theirs] });
    for (const [m, v] of [['a', '1'], ['b', '2'], ['a', '1']] as const) {
      c1.labels(m, v).inc();
      c2.labels(m, v).inc();
      c1.labels(m, v).inc(2);
      c2.labels(m, v).inc(2);
    }
    const g1 = new HotGauge({ name: 'z', ...spec, registers: [ours] });
    const g2 = new Gauge({ name: 'z', ...spec, registers: [theirs] });
    for (const v of [3, 1, 4]) {
      g1.labels('a', '1').set(v);
      g2.labels('a', '1').set(v);
    }
    for (const x of [0.005, 0.05, 0.5, 5, 0.01, 0.1]) {
      h1.labels('a', '1').observe(x);
      h2.labels('a', '1').observe(x);
    }
    assert.equal(await ours.metrics(), await theirs.metrics());
  });
});
