/** Adaptive batch sizing and delayed batching, driven by a fake clock and a fake replica. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BatchSizePolicy } from '../../src/query/batching/batch-size-policy.ts';
import { VersionQueue, type QueueObserver, type SendBatch } from '../../src/query/batching/version-queue.ts';
import type { Task } from '../../src/query/task.ts';
import { FakeClock } from '../helpers/fake-clock.ts';
import type { Replica } from '../../src/rpc/replica.ts';

const noop: QueueObserver = { batchSent() {}, batchDone() {}, dropped() {}, queued() {}, depth() {} };
const replica: Replica = {
  key: 'r', identity: Buffer.from('r'), state: 'READY', modelName: 'm', modelVersion: '1', inputTypeCode: 4,
  replicaId: 'r', extensions: new Set(), connectedAt: 0, lastSeen: 0, inflight: new Map(),
};
const tick = () => new Promise((r) => setImmediate(r));

describe('batch size policy (AIMD)', () => {
  const cfg = { fixed: 0, max: 64, increase: 2, backoff: 0.5 };
  const cases: Array<{ what: string; steps: Array<[number, number]>; want: number }> = [
    { what: 'grows additively while full batches finish in budget', steps: [[1, 1], [3, 1], [5, 1]], want: 7 },
    { what: 'does not grow on a batch that was not full', steps: [[1, 1], [1, 1]], want: 3 },
    { what: 'halves on a batch over budget', steps: [[1, 1], [3, 1], [5, 1], [7, 20]], want: 3 },
    { what: 'never below 1', steps: [[1, 50], [1, 50]], want: 1 },
  ];
  for (const c of cases) {
    it(c.what, () => {
      const p = new BatchSizePolicy(cfg);
      for (const [n, ms] of c.steps) p.observe(n, ms, 10);
      assert.equal(p.current(), c.want);
    });
  }
  it('caps at the maximum and ignores observations when fixed', () => {
    const p = new BatchSizePolicy({ ...cfg, max: 4 });
    for (let i = 0; i < 10; i++) p.observe(p.current(), 1, 10);
    assert.equal(p.current(), 4);
    const f = new BatchSizePolicy({ ...cfg, fixed: 8 });
    f.observe(8, 100, 10);
    assert.equal(f.current(), 8);
  });
});

describe('version queue under load', () => {
  /** A replica whose batch latency is 0.5 ms + 0.25 ms per input, on a fake clock. */
  function harness(maxBatchWaitMs = 0) {
    const clock = new FakeClock();
    const sizes: number[] = [];
    const pending: Array<() => void> = [];
    const send: SendBatch = (_r, inputs) => new Promise((resolve) => {
      sizes.push(inputs.length);
      pending.push(() => {
        clock.t += 0.5 + 0.25 * inputs.length;
        resolve(inputs.map((b) => ({ ok: true, value: b })));
      });
    });
    const q = new VersionQueue('m:1', send, { batch: { fixed: 0, max: 256, increase: 2, backoff: 0.75 }, maxInflightPerReplica: 1, maxQueue: 100_000, maxQueueBytes: 1 << 30, maxAttempts: 3, budgetFraction: 1, maxBatchWaitMs }, clock, noop);
    const add = (n: number) => {
      for (let i = 0; i < n; i++) {
        const t: Task = { input: Buffer.from('x'), deadline: clock.t + 1e9, enqueuedAt: clock.t, attempts: 0, abandoned: false, done: () => {} };
        q.enqueue(t);
      }
    };
    return { clock, sizes, pending, q, add };
  }

  it('grows the batch under load up to what the budget allows, and shrinks it when latency rises', async () => {
    const h = harness();
    h.q.setLatencyBudget(10); // 10 ms: at most (10 - 0.5) / 0.25 = 38 inputs per batch
    h.q.addReplica(replica);
    for (let round = 0; round < 60; round++) {
      h.add(64);
      while (h.pending.length) {
        h.pending.shift()!();
        await tick();
      }
    }
    const settled = h.sizes.slice(-20);
    assert.ok(Math.max(...settled) <= 40, `batches stay within the budget: ${settled}`);
    const size = h.q.batchSizes()[0]!;
    assert.ok(size >= 20 && size <= 40, `the batch size settled near the budget's limit of 38: ${size}`);

    h.q.setLatencyBudget(2); // latency objective tightened: at most 6 inputs
    const before = h.sizes.length;
    for (let round = 0; round < 20; round++) {
      h.add(64);
      while (h.pending.length) {
        h.pending.shift()!();
        await tick();
      }
    }
    const after = h.sizes.slice(before).slice(-10);
    assert.ok(Math.max(...after) <= 8, `batches shrank: ${after}`);
    assert.ok(h.q.batchSizes()[0]! <= 8);
  });

  it('delayed batching waits for a fuller batch, but not past the wait', async () => {
    const h = harness(5);
    h.q.addReplica(replica);
    h.q.setLatencyBudget(100);
    // Grow the policy first.
    for (let i = 0; i < 10; i++) {
      h.add(40);
      await new Promise((r) => setTimeout(r, 10));
      while (h.pending.length) { h.pending.shift()!(); await tick(); }
    }
    const n = h.sizes.length;
    h.add(1);
    assert.equal(h.sizes.length, n, 'one input alone is held back');
    h.clock.advance(4);
    assert.equal(h.sizes.length, n, 'still held before the wait is over');
    h.clock.advance(6);
    assert.equal(h.sizes.length, n + 1, 'and sent once the wait is over');
    assert.equal(h.sizes[n], 1);
  });
});
