/** Merging the load samples of several frontends into the cluster's view of each version. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { mergeLoadSamples } from '../../src/measure/merge-load.ts';
import type { VersionLoadSample } from '../../src/query/query-processor.ts';

const sample = (over: Partial<VersionLoadSample['interval']> & { depth?: number; name?: string; busy?: number; batches?: number; meanMs?: number }): VersionLoadSample => ({
  name: over.name ?? 'm', version: '1', depth: over.depth ?? 0, readyReplicas: 2, batchSizes: [4], profile: [{ batchSize: 4, ms: 8 }], inflight: { 'm:1#0': 1 },
  interval: {
    seconds: 1, arrivalRate: 0, arrivals: 0, shed: 0, late: 0, answered: 0, inTime: 0, queueDelayP50Ms: undefined, queueDelayP99Ms: undefined,
    serviceMsPerInput: undefined, replicas: [{ replicaId: 'm:1#0', batchesPerS: over.batches ?? 10, meanBatchMs: over.meanMs ?? 20, busyFraction: over.busy ?? 0.2 }],
    ...over,
  },
});

describe('mergeLoadSamples', () => {
  it('adds rates and busy shares of a replica two frontends share, keeps the worst queue delay, weights service time by answers', () => {
    const [m, ...rest] = mergeLoadSamples([
      sample({ arrivalRate: 100, arrivals: 100, answered: 100, inTime: 90, queueDelayP99Ms: 30, serviceMsPerInput: 2, busy: 0.4, batches: 10, meanMs: 20, depth: 3 }),
      sample({ arrivalRate: 50, arrivals: 50, answered: 50, inTime: 50, queueDelayP99Ms: 80, serviceMsPerInput: 5, busy: 0.3, batches: 30, meanMs: 40, depth: 1 }),
    ]);
    assert.equal(rest.length, 0);
    assert.equal(m!.interval.arrivalRate, 150);
    assert.equal(m!.interval.inTime, 140);
    assert.equal(m!.interval.queueDelayP99Ms, 80);
    assert.equal(m!.interval.serviceMsPerInput, 3); // (2*100 + 5*50) / 150
    assert.equal(m!.depth, 4);
    assert.deepEqual(m!.inflight, { 'm:1#0': 2 });
    const r = m!.interval.replicas[0]!;
    assert.ok(Math.abs(r.busyFraction - 0.7) < 1e-9);
    assert.equal(r.batchesPerS, 40);
    assert.equal(r.meanBatchMs, 35); // (20*10 + 40*30) / 40
  });

  it('leaves versions seen by one frontend alone and never reports a replica more than fully busy', () => {
    const merged = mergeLoadSamples([sample({ name: 'a', busy: 0.8 }), sample({ name: 'b' }), sample({ name: 'a', busy: 0.7 })]);
    assert.deepEqual(merged.map((s) => s.name), ['a', 'b']);
    assert.equal(merged[0]!.interval.replicas[0]!.busyFraction, 1);
  });
});
