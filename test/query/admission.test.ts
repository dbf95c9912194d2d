/**
 * Admission under overload, simulated on a fake clock: a replica that takes 5 ms per input
 * (200 inputs/s), offered 1.5× that with a 300 ms SLO. Without admission a FIFO queue grows until
 * every input expires at its head; with it, the queue keeps only what can be answered in time.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ServingError } from '../../src/errors.ts';
import { ServiceProfile } from '../../src/query/batching/service-profile.ts';
import { VersionQueue, type SendBatch } from '../../src/query/batching/version-queue.ts';
import type { Replica, RpcOutput } from '../../src/rpc/replica.ts';
import type { Task, TaskResult } from '../../src/query/task.ts';
import { FakeClock } from '../helpers/fake-clock.ts';

const noop = { batchSent() {}, batchDone() {}, dropped() {}, queued() {}, depth() {} };
const replica = (id: string) => ({ key: id, replicaId: id } as unknown as Replica);
const flush = () => new Promise<void>((r) => setImmediate(r));

/** A replica costing `msPerInput` per input, answering on the fake clock. */
function slowSend(clock: FakeClock, msPerInput: number): SendBatch {
  return (_r, inputs) => new Promise<RpcOutput[]>((resolve) => {
    clock.setTimeout(() => resolve(inputs.map((i) => ({ ok: true, value: Buffer.from(`"${i.toString()}"`) }))), msPerInput * inputs.length);
  });
}

async function simulate(opts: { ratePerS: number; seconds: number; sloMs: number; msPerInput: number; replicas: number }) {
  const clock = new FakeClock();
  const q = new VersionQueue('m:1', slowSend(clock, opts.msPerInput), {
    batch: { fixed: 0, max: 256, increase: 2, backoff: 0.75 }, maxInflightPerReplica: 1, maxQueue: 100_000, maxQueueBytes: 1 << 30, maxAttempts: 3, budgetFraction: 0.45, maxBatchWaitMs: 0,
  }, clock, noop);
  q.setLatencyBudget(opts.sloMs);
  for (let i = 0; i < opts.replicas; i++) q.addReplica(replica(`r${i}`));
  const counts = { offered: 0, inTime: 0, late: 0, shed: 0 };
  const gap = 1000 / opts.ratePerS;
  let nextArrival = 0;
  let id = 0;
  for (let t = 0; t < opts.seconds * 1000; t++) {
    while (nextArrival <= t) {
      counts.offered++;
      const deadline = clock.now() + opts.sloMs;
      const task: Task = {
        input: Buffer.from(String(id++)), deadline, enqueuedAt: clock.now(), attempts: 0, abandoned: false,
        done: (r: TaskResult) => {
          if (r.ok && clock.now() <= deadline) counts.inTime++;
          else counts.late++;
        },
      };
      try {
        q.enqueue(task);
      } catch (e) {
        assert.ok(e instanceof ServingError && e.code === 'OVERLOADED', String(e));
        counts.shed++;
      }
      nextArrival += gap;
    }
    clock.advance(1);
    await flush();
  }
  return counts;
}

describe('admission under overload', () => {
  it('at 1.5× one replica’s capacity, at least 80% of that capacity is answered within the SLO', async () => {
    const c = await simulate({ ratePerS: 300, seconds: 10, sloMs: 300, msPerInput: 5, replicas: 1 });
    const capacity = 200 * 10;
    assert.ok(c.inTime >= 0.8 * capacity, `answered in time: ${c.inTime} of a capacity of ${capacity} (shed ${c.shed}, late ${c.late})`);
    assert.ok(c.shed > 0.2 * c.offered, `the excess was shed at once: ${c.shed} of ${c.offered}`);
    assert.ok(c.late < 0.05 * c.offered, `few admitted inputs missed their deadline: ${c.late}`);
  });

  it('under capacity nothing is shed', async () => {
    const c = await simulate({ ratePerS: 150, seconds: 5, sloMs: 300, msPerInput: 5, replicas: 1 });
    assert.equal(c.shed, 0);
    assert.equal(c.late, 0);
    assert.equal(c.inTime, c.offered);
  });

  it('two replicas double what is answered in time', async () => {
    const c = await simulate({ ratePerS: 600, seconds: 5, sloMs: 300, msPerInput: 5, replicas: 2 });
    assert.ok(c.inTime >= 0.8 * 400 * 5, `answered in time: ${c.inTime}`);
  });

  it('still admits a probe when a replica is idle and nothing waits, so the profile can learn again', () => {
    const clock = new FakeClock();
    const q = new VersionQueue('m:1', slowSend(clock, 1000), {
      batch: { fixed: 0, max: 8, increase: 2, backoff: 0.75 }, maxInflightPerReplica: 1, maxQueue: 10, maxQueueBytes: 1 << 30, maxAttempts: 3, budgetFraction: 0.45, maxBatchWaitMs: 0,
    }, clock, noop);
    q.profile.observe(1, 1000);
    q.addReplica(replica('r0'));
    assert.equal(q.estimateAnswerAt(clock.now(), clock.now() + 50), clock.now(), 'idle replica, empty queue: admitted');
    q.enqueue({ input: Buffer.from('a'), deadline: 50, enqueuedAt: 0, attempts: 0, abandoned: false, done: () => {} });
    assert.throws(() => q.enqueue({ input: Buffer.from('b'), deadline: 50, enqueuedAt: 0, attempts: 0, abandoned: false, done: () => {} }),
      (e: ServingError) => e.code === 'OVERLOADED' && /after its deadline/.test(e.message));
  });
});

describe('service profile', () => {
  it('learns a line through the sizes it saw', () => {
    const p = new ServiceProfile();
    for (let i = 0; i < 50; i++) {
      p.observe(1, 2 + 0.5);
      p.observe(8, 2 + 4);
    }
    assert.ok(Math.abs(p.estimate(4) - 4) < 0.05, `estimate(4) = ${p.estimate(4)}`);
    assert.ok(Math.abs(p.estimate(16) - 10) < 0.05, `estimate(16) = ${p.estimate(16)}`);
  });

  it('with one size seen, is pessimistic both ways', () => {
    const p = new ServiceProfile();
    p.observe(4, 20);
    assert.equal(p.estimate(8), 40);
    assert.equal(p.estimate(1), 20);
    assert.equal(new ServiceProfile().estimate(3), 0);
  });
});
