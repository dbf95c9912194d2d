import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ServingError } from '../../src/errors.ts';
import { VersionQueue, type QueueObserver, type SendBatch } from '../../src/query/batching/version-queue.ts';
import type { Task, TaskResult } from '../../src/query/task.ts';
import { FakeClock } from '../helpers/fake-clock.ts';
import type { Replica, RpcOutput } from '../../src/rpc/replica.ts';

const noop: QueueObserver = { batchSent() {}, batchDone() {}, dropped() {}, queued() {}, depth() {} };
const clock = (): FakeClock => new FakeClock();
const replica = (key: string): Replica => ({
  key, identity: Buffer.from(key), state: 'READY', modelName: 'm', modelVersion: '1', inputTypeCode: 4,
  replicaId: key, extensions: new Set(), connectedAt: 0, lastSeen: 0, inflight: new Map(),
});

function task(input: string, deadline: number, results: Map<string, TaskResult>): Task {
  return { input: Buffer.from(input), deadline, enqueuedAt: 0, attempts: 0, abandoned: false, done: (r) => results.set(input, r) };
}

/** A fake transport whose batches are answered (or failed) by the test. */
function fakeSend() {
  const calls: Array<{ replica: string; inputs: string[]; resolve: (o: RpcOutput[]) => void; reject: (e: Error) => void }> = [];
  const send: SendBatch = (r, inputs) => new Promise((resolve, reject) => {
    calls.push({ replica: r.key, inputs: inputs.map(String), resolve, reject });
  });
  const answer = (i: number) => calls[i]!.resolve(calls[i]!.inputs.map((x) => ({ ok: true, value: Buffer.from(`"${x}!"`) })));
  return { calls, send, answer };
}

const opts = (fixed: number) => ({ batch: { fixed, max: 64, increase: 2, backoff: 0.5 }, maxInflightPerReplica: 1, maxQueue: 4, maxQueueBytes: 1 << 20, maxAttempts: 3, budgetFraction: 0.8, maxBatchWaitMs: 0 });
const tick = () => new Promise((r) => setImmediate(r));

describe('version queue', () => {
  it('sends one batch per replica at a time, respecting a fixed size', async () => {
    const c = clock();
    const f = fakeSend();
    const q = new VersionQueue('m:1', f.send, { ...opts(2), maxQueue: 100 }, c, noop);
    const results = new Map<string, TaskResult>();
    for (const x of ['a', 'b', 'c', 'd', 'e']) q.enqueue(task(x, 1000, results));
    q.addReplica(replica('r1'));
    assert.deepEqual(f.calls.map((x) => x.inputs), [['a', 'b']], 'one batch in flight, of the fixed size');
    f.answer(0);
    await tick();
    const a = results.get('a');
    assert.equal(a?.ok && a.output.value, 'a!');
    assert.deepEqual(f.calls.map((x) => x.inputs), [['a', 'b'], ['c', 'd']]);
  });

  it('drops work whose deadline passed before sending it', async () => {
    const c = clock();
    const f = fakeSend();
    const q = new VersionQueue('m:1', f.send, opts(10), c, noop);
    const results = new Map<string, TaskResult>();
    q.enqueue(task('old', 5, results));
    q.enqueue(task('new', 50, results));
    c.t = 10;
    q.addReplica(replica('r1'));
    assert.deepEqual(f.calls[0]!.inputs, ['new']);
    assert.equal(results.get('old')?.ok, false);
  });

  it('re-queues a batch lost with its replica on another replica, in order', async () => {
    const c = clock();
    const f = fakeSend();
    const q = new VersionQueue('m:1', f.send, opts(2), c, noop);
    const results = new Map<string, TaskResult>();
    const r1 = replica('r1');
    q.addReplica(r1);
    q.enqueue(task('a', 1000, results));
    q.enqueue(task('b', 1000, results));
    q.removeReplica(r1);
    f.calls[0]!.reject(new ServingError('WORKER_FAILED', 'gone'));
    await tick();
    q.addReplica(replica('r2'));
    assert.deepEqual(f.calls[1], { ...f.calls[1]!, replica: 'r2', inputs: ['a', 'b'] });
    f.answer(1);
    await tick();
    assert.equal(results.get('b')?.ok, true);
  });

  it('refuses work when the queue is full', () => {
    const q = new VersionQueue('m:1', fakeSend().send, opts(1), clock(), noop);
    const results = new Map<string, TaskResult>();
    for (let i = 0; i < 4; i++) q.enqueue(task(`t${i}`, 1000, results));
    assert.throws(() => q.enqueue(task('x', 1000, results)), (e: ServingError) => e.code === 'QUEUE_FULL');
  });
});
