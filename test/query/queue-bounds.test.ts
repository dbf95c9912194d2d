/**
 * A version queue holds bounded memory: finished tasks are released at once, waiting inputs are
 * bounded in bytes as well as in count, and a queue with no replica releases what nobody waits for.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ServingError } from '../../src/errors.ts';
import { VersionQueue, type QueueObserver, type SendBatch, type VersionQueueOptions } from '../../src/query/batching/version-queue.ts';
import type { Task, TaskResult } from '../../src/query/task.ts';
import type { Replica, RpcOutput } from '../../src/rpc/replica.ts';
import { FakeClock } from '../helpers/fake-clock.ts';
import { fullGc } from './gc.ts';

const MiB = 1024 * 1024;
const noop: QueueObserver = { batchSent() {}, batchDone() {}, dropped() {}, queued() {}, depth() {} };
const replica = (id: string) => ({ key: id, replicaId: id } as unknown as Replica);
const tick = () => new Promise((r) => setImmediate(r));
const options = (o: Partial<VersionQueueOptions> = {}): VersionQueueOptions => ({
  batch: { fixed: 1, max: 64, increase: 2, backoff: 0.5 }, maxInflightPerReplica: 1, maxQueue: 1000, maxQueueBytes: 64 * MiB,
  maxAttempts: 3, budgetFraction: 0.45, maxBatchWaitMs: 0, ...o,
});

function task(input: Buffer, deadline: number, done: (r: TaskResult) => void = () => {}): Task {
  return { input, deadline, enqueuedAt: 0, attempts: 0, abandoned: false, done };
}

/** Batches the test answers one at a time. */
function manualSend() {
  const pending: Array<{ n: number; resolve: (o: RpcOutput[]) => void }> = [];
  const send: SendBatch = (_r, inputs) => new Promise((resolve) => pending.push({ n: inputs.length, resolve }));
  const answerNext = () => {
    const p = pending.shift()!;
    p.resolve(Array.from({ length: p.n }, () => ({ ok: true, value: Buffer.from('"ok"') })));
  };
  return { send, pending, answerNext };
}

describe('version queue memory', () => {
  it('releases each finished task at once: forty 1M-element inputs leave nothing referenced', async () => {
    const clock = new FakeClock();
    const s = manualSend();
    const q = new VersionQueue('m:1', s.send, options({ maxQueueBytes: 1024 * MiB }), clock, noop);
    q.addReplica(replica('r1'));
    const refs: Array<WeakRef<Buffer>> = [];
    let answered = 0;
    // In a function of its own, so this test's suspended frame holds no input either.
    const enqueueBig = () => {
      // A doubles input of 1M elements: 8 MB the queue must not hold once it is answered
      // (left unwritten, so the test does not commit 320 MB).
      const input = Buffer.allocUnsafe(8 * MiB);
      refs.push(new WeakRef(input));
      q.enqueue(task(input, 60_000, () => answered++));
    };
    for (let i = 0; i < 40; i++) enqueueBig();
    // Two small inputs behind them: one is in flight at the end and one still waits, so the
    // queue's array is not simply emptied when the forty are done.
    q.enqueue(task(Buffer.from('next'), 60_000));
    q.enqueue(task(Buffer.from('last'), 60_000));
    while (answered < 40) {
      s.answerNext();
      await tick();
    }
    assert.equal(q.depth, 1);
    await fullGc();
    const alive = refs.filter((r) => r.deref() !== undefined).length;
    assert.equal(alive, 0, `${alive} of 40 answered 8 MB inputs are still referenced`);
  });

  it('refuses inputs past its byte bound (QUEUE_FULL), and admits again once they are sent', async () => {
    const clock = new FakeClock();
    const s = manualSend();
    const q = new VersionQueue('m:1', s.send, options({ maxQueueBytes: 20 * MiB }), clock, noop);
    for (let i = 0; i < 2; i++) q.enqueue(task(Buffer.alloc(8 * MiB), 60_000));
    assert.equal(q.bytes, 16 * MiB);
    assert.throws(() => q.enqueue(task(Buffer.alloc(8 * MiB), 60_000)), (e: ServingError) => {
      assert.equal(e.code, 'QUEUE_FULL');
      assert.match(e.message, /16\.0 MiB of inputs waiting; this input's 8\.0 MiB would pass the limit of 20\.0 MiB/);
      return true;
    });
    q.enqueue(task(Buffer.alloc(1 * MiB), 60_000)); // a small one still fits
    q.addReplica(replica('r1')); // takes one 8 MB input out of the queue
    assert.equal(q.bytes, 9 * MiB);
    q.enqueue(task(Buffer.alloc(8 * MiB), 60_000));
    assert.equal(q.depth, 3);
  });

  it('with no replica, holds no more than its byte bound and lets go of inputs nobody waits for', () => {
    const clock = new FakeClock();
    const q = new VersionQueue('m:1', manualSend().send, options({ maxQueueBytes: 64 * MiB }), clock, noop);
    const tasks: Task[] = [];
    let full = 0;
    for (let i = 0; i < 40; i++) {
      const t = task(Buffer.alloc(8 * MiB), clock.now() + 1000);
      try {
        q.enqueue(t);
        tasks.push(t);
      } catch (e) {
        assert.equal((e as ServingError).code, 'QUEUE_FULL');
        full++;
      }
    }
    assert.equal(tasks.length, 8, '8 × 8 MB fit in 64 MB');
    assert.equal(full, 32);
    assert.ok(q.bytes <= 64 * MiB);
    // Their queries give up (the SLO passed): the next arrival finds room.
    for (const t of tasks) t.abandoned = true;
    clock.advance(1000);
    const results: TaskResult[] = [];
    q.enqueue(task(Buffer.alloc(8 * MiB), clock.now() + 1000, (r) => results.push(r)));
    assert.equal(q.depth, 1);
    assert.equal(q.bytes, 8 * MiB);
  });

  it('with no replica, a full queue drops expired inputs from anywhere in it', () => {
    const clock = new FakeClock();
    const q = new VersionQueue('m:1', manualSend().send, options({ maxQueue: 3 }), clock, noop);
    const results = new Map<string, TaskResult>();
    const t = (name: string, deadline: number) => task(Buffer.from(name), deadline, (r) => results.set(name, r));
    q.enqueue(t('long', 10_000));
    q.enqueue(t('short-1', 100));
    q.enqueue(t('short-2', 100));
    clock.advance(200);
    q.enqueue(t('new', 10_000));
    assert.equal(q.depth, 2);
    assert.equal(results.get('short-1')?.ok, false);
    assert.equal(results.has('long'), false, 'the live input at the head stays');
  });
});
