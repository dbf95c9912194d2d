/**
 * Queries of death (issue 11, finding 6): an input that crashes its replica must not be retried on
 * every replica in turn. The decision table, the queue that applies it, and the processor that
 * remembers the input and answers a repeat at once.
 */
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { describe, it } from 'node:test';
import { ServingError } from '../../src/errors.ts';
import { exitCause } from '../../src/manager/backend.ts';
import { lossVerdict, type LostInput } from '../../src/query/batching/loss-policy.ts';
import { VersionQueue, type QueueObserver, type SendBatch } from '../../src/query/batching/version-queue.ts';
import { QueryMetrics } from '../../src/query/metrics.ts';
import { DEFAULT_QUERY_OPTIONS, QueryProcessor, type Answer } from '../../src/query/query-processor.ts';
import type { SelectionService } from '../../src/query/selection-service.ts';
import type { Task, TaskResult } from '../../src/query/task.ts';
import type { RegistryService } from '../../src/registry/registry-service.ts';
import type { Application, ModelVersion } from '../../src/registry/types.ts';
import type { Replica, RpcOutput } from '../../src/rpc/replica.ts';
import { FakeClock } from '../helpers/fake-clock.ts';

const tick = () => new Promise((r) => setImmediate(r));

describe('loss policy', () => {
  const base: LostInput = { cause: 'crashed', alone: true, suspect: false, attempts: 1, maxAttempts: 3 };
  const cases: Array<[string, Partial<LostInput>, ReturnType<typeof lossVerdict>]> = [
    ['crashed with it alone', {}, 'quarantine'],
    ['crashed with it alone, even on its last attempt', { attempts: 3 }, 'quarantine'],
    ['crashed beside others', { alone: false }, 'isolate'],
    ['crashed beside others, attempts used up', { alone: false, attempts: 3 }, 'fail'],
    ['killed with it alone, first time', { cause: 'killed' }, 'isolate'],
    ['killed with it alone, already a suspect', { cause: 'killed', suspect: true }, 'quarantine'],
    ['killed beside others, a suspect', { cause: 'killed', alone: false, suspect: true }, 'isolate'],
    ['stopped (not a death)', { cause: undefined }, 'retry'],
    ['stopped, a suspect alone', { cause: undefined, suspect: true }, 'retry'],
    ['stopped, attempts used up', { cause: undefined, attempts: 3 }, 'fail'],
  ];
  for (const [name, x, want] of cases) it(`${name} → ${want}`, () => assert.equal(lossVerdict({ ...base, ...x }), want));

  it('tells a crash from a kill by what the OS or the engine reports', () => {
    const table: Array<[string, Parameters<typeof exitCause>[0], string]> = [
      ['exited with code 1', { code: 1 }, 'crashed'],
      ['exited with code 0', { code: 0 }, 'crashed'],
      ['killed by SIGABRT', { signal: 'SIGABRT' }, 'crashed'],
      ['killed by SIGSEGV', { signal: 'SIGSEGV' }, 'crashed'],
      ['exited with code 134 (SIGABRT)', { code: 134 }, 'crashed'],
      ['killed by SIGKILL', { signal: 'SIGKILL' }, 'killed'],
      ['killed by SIGTERM', { signal: 'SIGTERM' }, 'killed'],
      ['exited with code 137 (SIGKILL)', { code: 137 }, 'killed'],
      ['out of memory (limit 64 MiB; killed by the kernel)', { signal: 'SIGKILL', oom: true }, 'killed'],
      ['out of memory, exit code reported as 1', { code: 1, oom: true }, 'killed'],
    ];
    for (const [what, exit, want] of table) assert.equal(exitCause(exit), want, what);
  });
});

const noop: QueueObserver = { batchSent() {}, batchDone() {}, dropped() {}, queued() {}, depth() {} };
const replica = (id: string) => ({ key: id, replicaId: id } as unknown as Replica);

/** Replicas that crash on "poison": the test plays the manager, telling the queue first, then failing the batch. */
function crashingModel(q: () => VersionQueue) {
  const sent: Array<{ replica: string; inputs: string[] }> = [];
  const deaths: string[] = [];
  const send: SendBatch = async (r, inputs) => {
    const texts = inputs.map(String);
    sent.push({ replica: r.key, inputs: texts });
    await tick();
    if (texts.includes('poison')) {
      deaths.push(r.key);
      q().replicaLost(r.key, 'crashed', 'exited with code 1');
      q().removeReplica(r);
      throw new ServingError('WORKER_FAILED', `replica ${r.key} lost: exited with code 1`);
    }
    return texts.map((t): RpcOutput => ({ ok: true, value: Buffer.from(JSON.stringify(`ok:${t}`)) }));
  };
  return { send, sent, deaths };
}

function task(input: string, results: Map<string, TaskResult>): Task {
  return { input: Buffer.from(input), deadline: 60_000, enqueuedAt: 0, attempts: 0, abandoned: false, done: (r) => results.set(input, r) };
}

describe('version queue: a batch lost with a crashed replica', () => {
  it('quarantines an input that crashed its replica alone, and tries it nowhere else', async () => {
    let q!: VersionQueue;
    const m = crashingModel(() => q);
    q = new VersionQueue('m:1', m.send, { batch: { fixed: 1, max: 8, increase: 2, backoff: 0.5 }, maxInflightPerReplica: 1, maxQueue: 100, maxQueueBytes: 1 << 20, maxAttempts: 3, budgetFraction: 0.45, maxBatchWaitMs: 0 }, new FakeClock(), noop);
    for (const r of ['r1', 'r2', 'r3']) q.addReplica(replica(r));
    const results = new Map<string, TaskResult>();
    q.enqueue(task('poison', results));
    for (let i = 0; i < 5; i++) await tick();
    assert.deepEqual(m.deaths, ['r1'], 'one replica died');
    const r = results.get('poison');
    assert.equal(r?.ok, false);
    assert.equal(r.ok === false && r.code, 'QUARANTINED');
    assert.match(r.ok === false ? r.error : '', /in flight when a replica of m:1 crashed \(exited with code 1\); not retried on other replicas/);
  });

  it('retries a crashed batch one input at a time: the culprit is found, the others are answered', async () => {
    let q!: VersionQueue;
    const m = crashingModel(() => q);
    q = new VersionQueue('m:1', m.send, { batch: { fixed: 4, max: 8, increase: 2, backoff: 0.5 }, maxInflightPerReplica: 1, maxQueue: 100, maxQueueBytes: 1 << 20, maxAttempts: 3, budgetFraction: 0.45, maxBatchWaitMs: 0 }, new FakeClock(), noop);
    const results = new Map<string, TaskResult>();
    for (const x of ['a', 'poison', 'b', 'c']) q.enqueue(task(x, results));
    for (const r of ['r1', 'r2', 'r3']) q.addReplica(replica(r));
    for (let i = 0; i < 20 && results.size < 4; i++) await tick();

    assert.deepEqual(m.sent[0], { replica: 'r1', inputs: ['a', 'poison', 'b', 'c'] });
    assert.ok(m.sent.slice(1).every((s) => s.inputs.length === 1), `after the crash every batch is a single input: ${JSON.stringify(m.sent)}`);
    assert.equal(m.deaths.length, 2, 'the batch\'s replica, then the one the culprit was isolated on');
    assert.equal(m.sent.filter((s) => s.inputs.includes('poison')).length, 2);
    for (const x of ['a', 'b', 'c']) {
      const r = results.get(x);
      assert.equal(r?.ok && r.output.json(), `"ok:${x}"`);
    }
    const p = results.get('poison');
    assert.equal(p?.ok === false && p.code, 'QUARANTINED');
  });

  it('a replica stopped by the manager (no death reported) loses nothing: its batch is retried whole', async () => {
    const sent: string[][] = [];
    let fail = true;
    const send: SendBatch = async (_r, inputs) => {
      sent.push(inputs.map(String));
      await tick();
      if (fail) {
        fail = false;
        throw new ServingError('WORKER_FAILED', 'replica is being stopped');
      }
      return inputs.map(() => ({ ok: true, value: Buffer.from('1') }));
    };
    const q = new VersionQueue('m:1', send, { batch: { fixed: 2, max: 8, increase: 2, backoff: 0.5 }, maxInflightPerReplica: 1, maxQueue: 100, maxQueueBytes: 1 << 20, maxAttempts: 3, budgetFraction: 0.45, maxBatchWaitMs: 0 }, new FakeClock(), noop);
    const results = new Map<string, TaskResult>();
    q.enqueue(task('a', results));
    q.enqueue(task('b', results));
    q.addReplica(replica('r1'));
    for (let i = 0; i < 10 && results.size < 2; i++) await tick();
    assert.deepEqual(sent, [['a', 'b'], ['a', 'b']]);
    assert.equal(results.get('a')?.ok, true);
  });
});

describe('query processor: quarantined inputs', () => {
  const app: Application = {
    name: 'qod', inputType: 'strings', defaultOutput: '"DEFAULT"', latencySloMicros: 10_000_000, overloadDefault: false,
    policy: 'single', policyParams: {}, createdAt: 0,
  };
  const version = { name: 'crashy', version: '1', inputType: 'strings', batchSize: 0 } as ModelVersion;
  const registry = Object.assign(new EventEmitter(), {
    requireApp: () => app, linkedModels: () => ['crashy'], requireVersion: () => version,
    getVersion: () => version, listVersions: () => [version],
  }) as unknown as RegistryService;

  for (const cacheBytes of [1 << 20, 0]) {
    it(`answers the default with the reason, remembers it, and answers a repeat at once (cache ${cacheBytes ? 'on' : 'off'})`, async () => {
      let p!: QueryProcessor;
      const sent: string[] = [];
      const send: SendBatch = async (r, inputs) => {
        sent.push(...inputs.map(String));
        await tick();
        if (inputs.some((x) => String(x) === 'poison')) {
          p.replicaExited(r.replicaId!, 'exited with code 1', 'crashed');
          p.removeReplica(r);
          throw new ServingError('WORKER_FAILED', 'lost');
        }
        return inputs.map((x) => ({ ok: true, value: Buffer.from(`"ok:${String(x)}"`) }));
      };
      p = new QueryProcessor(registry, send, new QueryMetrics(), {} as SelectionService, { ...DEFAULT_QUERY_OPTIONS, cacheBytes }, new FakeClock());
      for (const id of ['crashy:1#0', 'crashy:1#1', 'crashy:1#2']) p.addReplica({ key: id, replicaId: id, modelName: 'crashy', modelVersion: '1' } as unknown as Replica);

      const [first] = await p.infer({ app: 'qod' }, { values: ['poison'] }) as Answer[];
      assert.equal(first!.isDefault, true);
      assert.equal(first!.output.value, 'DEFAULT');
      assert.match(first!.explanation!, /in flight when a replica of crashy:1 crashed \(exited with code 1\); not retried on other replicas/);
      assert.deepEqual(sent, ['poison']);

      const [again] = await p.infer({ app: 'qod' }, { values: ['poison'] }) as Answer[];
      assert.equal(again!.isDefault, true);
      assert.match(again!.explanation!, /^quarantined: this input was in flight when a replica of crashy:1 crashed/);
      assert.deepEqual(sent, ['poison'], 'the repeat reached no replica');

      const [fine] = await p.infer({ app: 'qod' }, { values: ['fine'] }) as Answer[];
      assert.equal(fine!.output.value, 'ok:fine');
      assert.equal(p.queueStats()[0]!.replicas, 2, 'one replica lost in all');
    });
  }
});
