/**
 * The query core's entry, infer(): one path for applications and for model versions directly,
 * with model outputs carried as they came (no parse-and-serialise of JSON text, typed tensors as
 * bytes) and each input's own latency budget for the batches it travels in.
 */
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { describe, it } from 'node:test';
import { answerJson } from '../../src/http/clipper-answers.ts';
import { VersionQueue, type QueueObserver, type SendBatch } from '../../src/query/batching/version-queue.ts';
import { QueryMetrics } from '../../src/query/metrics.ts';
import { ModelOutput } from '../../src/query/output.ts';
import { DEFAULT_QUERY_OPTIONS, QueryProcessor, type Answer, type EntryError } from '../../src/query/query-processor.ts';
import type { SelectionService } from '../../src/query/selection-service.ts';
import type { Task, TaskTrace } from '../../src/query/task.ts';
import type { RegistryService } from '../../src/registry/registry-service.ts';
import type { Application, ModelVersion } from '../../src/registry/types.ts';
import type { Replica, RpcOutput } from '../../src/rpc/replica.ts';
import { FakeClock } from '../helpers/fake-clock.ts';

const app: Application = { name: 'a', inputType: 'strings', defaultOutput: '{"fallback": 1.50}', latencySloMicros: 1_000_000, overloadDefault: false, policy: 'single', policyParams: {}, createdAt: 0 };
const version = { name: 'm', version: '1', inputType: 'strings', batchSize: 0 } as ModelVersion;

function processor(send: SendBatch) {
  const registry = Object.assign(new EventEmitter(), {
    requireApp: (n: string) => { if (n !== 'a') throw new Error(`no app ${n}`); return app; },
    linkedModels: () => ['m'], requireVersion: () => version, getVersion: () => version, listVersions: () => [version],
  }) as unknown as RegistryService;
  const p = new QueryProcessor(registry, send, new QueryMetrics(), {} as SelectionService, DEFAULT_QUERY_OPTIONS);
  p.addReplica({ key: 'r', replicaId: 'r', modelName: 'm', modelVersion: '1' } as unknown as Replica);
  return p;
}

const text = (outputs: (input: string) => string): SendBatch => async (_r, inputs) => inputs.map((b) => ({ ok: true, value: Buffer.from(outputs(b.toString())) }));

describe('infer()', () => {
  it('writes a JSON output into the answer as the model wrote it (never parsed and serialised again)', async () => {
    const p = processor(text((x) => `{"label": "${x}", "p": 1.50, "big": 12345678901234567890}`));
    const [a] = await p.infer({ app: 'a' }, { values: ['cat'] });
    const json = answerJson(a!);
    assert.match(json, /"output":\{"label": "cat", "p": 1\.50, "big": 12345678901234567890\}/);
    assert.deepEqual(JSON.parse(json), { query_id: 0, output: { label: 'cat', p: 1.5, big: 12345678901234567890 }, default: false, models: ['m:1'] });
  });

  it('a text output that is not JSON becomes a JSON string; the default output is written as configured', async () => {
    const p = processor(text((x) => `not json: ${x}`));
    const [a] = await p.infer({ app: 'a' }, { values: ['"q"'] });
    assert.equal(JSON.parse(answerJson(a!)).output, 'not json: "q"');
    const failing = processor(async (_r, inputs) => inputs.map(() => ({ ok: false, value: Buffer.from('boom') })));
    const [d] = await failing.infer({ app: 'a' }, { values: ['x'] }) as Answer[];
    assert.equal(d!.isDefault, true);
    assert.match(answerJson(d!), /"output":\{"fallback": 1\.50\},"default":true,"default_explanation":"boom"/);
  });

  it('answers a model version directly: no default output, a failure is an error with its code', async () => {
    const ok = processor(text((x) => `"${x}!"`));
    const [a] = await ok.infer({ model: 'm' }, { values: ['x'] }) as Answer[];
    assert.equal(a!.output.value, 'x!');
    assert.deepEqual(a!.models, ['m:1']);
    const failing = processor(async (_r, inputs) => inputs.map(() => ({ ok: false, value: Buffer.from('model raised ValueError') })));
    const [e] = await failing.infer({ model: 'm' }, { values: ['x'] }) as EntryError[];
    assert.deepEqual(e, { error: 'MODEL_ERROR', cause: 'model raised ValueError' });
  });

  it('takes inputs already encoded (the binary transports), and passes typed tensor outputs through as bytes', async () => {
    const seen: string[] = [];
    const p = processor(async (_r, inputs) => inputs.map((b): RpcOutput => {
      seen.push(b.toString());
      return { ok: true, value: Buffer.from(new Float32Array([b.length, 0.5]).buffer), tensor: { datatype: 'FP32', shape: [2] } };
    }));
    const answers = await p.infer({ app: 'a' }, { encoded: [Buffer.from('abc'), Buffer.from('de')] }) as Answer[];
    assert.deepEqual(seen, ['abc', 'de']);
    assert.deepEqual(answers.map((a) => a.output.tensor?.datatype), ['FP32', 'FP32']);
    assert.deepEqual(answers.map((a) => a.output.value), [[3, 0.5], [2, 0.5]]);
    assert.equal(answerJson(answers[0]!).includes('"output":[3,0.5]'), true);
  });

  it('reports each queued input to the request trace (sent with its batch, then answered), and each cache hit', async () => {
    const events: string[] = [];
    const trace = {
      cacheHit: (model: string) => events.push(`${model} from the cache`),
      task: (model: string): TaskTrace => ({
        sent: (_at, replica, size) => events.push(`${model} sent to ${replica} in a batch of ${size}`),
        answered: (_at, ok) => events.push(`${model} answered ok=${ok}`),
      }),
    };
    const p = processor(text((x) => `"${x}"`));
    await p.infer({ app: 'a' }, { values: ['x'] }, { trace });
    assert.deepEqual(events, ['m:1 sent to r in a batch of 1', 'm:1 answered ok=true']);
    events.length = 0;
    await p.infer({ app: 'a' }, { values: ['x'] }, { trace });
    assert.deepEqual(events, ['m:1 from the cache'], 'a cache hit queues nothing');
  });
});

describe('model outputs', () => {
  it('a value read from an answer is the reader\'s own: reading again gives a fresh copy', () => {
    const o = ModelOutput.fromText('{"a": [1, 2]}');
    (o.value as { a: number[] }).a.push(3);
    assert.deepEqual(o.value, { a: [1, 2] });
    assert.equal(o.json(), '{"a": [1, 2]}');
  });

  it('tensors of every fixed-size datatype decode to their values by shape', () => {
    const t = (datatype: 'INT8' | 'UINT16' | 'INT64' | 'FP64' | 'BOOL' | 'FP16', shape: number[], data: Buffer) => ModelOutput.fromTensor({ datatype, shape, data }).value;
    assert.deepEqual(t('INT8', [2, 2], Buffer.from([1, 255, 3, 128])), [[1, -1], [3, -128]]);
    assert.deepEqual(t('UINT16', [2], Buffer.from(new Uint16Array([7, 65535]).buffer)), [7, 65535]);
    assert.deepEqual(t('INT64', [1], Buffer.from(new BigInt64Array([-5n]).buffer)), [-5]);
    assert.deepEqual(t('FP64', [], Buffer.from(new Float64Array([0.25]).buffer)), 0.25);
    assert.deepEqual(t('BOOL', [3], Buffer.from([1, 0, 2])), [true, false, true]);
    assert.deepEqual(t('FP16', [2], Buffer.from(new Uint16Array([0x3c00, 0xc000]).buffer)), [1, -2]);
  });
});

describe('latency budget per input', () => {
  const noop: QueueObserver = { batchSent() {}, batchDone() {}, dropped() {}, queued() {}, depth() {} };
  const replica = { key: 'r', replicaId: 'r', modelName: 'm', modelVersion: '1', extensions: new Set() } as unknown as Replica;

  it('a batch is sized by the tightest budget among its inputs, not by the application that queried last', async () => {
    const clock = new FakeClock();
    const sizes: number[] = [];
    const pending: Array<() => void> = [];
    const send: SendBatch = (_r, inputs) => new Promise((resolve) => {
      sizes.push(inputs.length);
      pending.push(() => {
        clock.t += 0.5 + 0.25 * inputs.length; // 0.5 ms + 0.25 ms per input
        resolve(inputs.map((b) => ({ ok: true, value: b })));
      });
    });
    const q = new VersionQueue('m:1', send, { batch: { fixed: 0, max: 256, increase: 2, backoff: 0.75 }, maxInflightPerReplica: 1, maxQueue: 100_000, maxQueueBytes: 1 << 30, maxAttempts: 3, budgetFraction: 1, maxBatchWaitMs: 0 }, clock, noop);
    q.addReplica(replica);
    const add = (budgetMs: number) => {
      const t: Task = { input: Buffer.from('x'), deadline: clock.t + 1e9, enqueuedAt: clock.t, budgetMs, attempts: 0, abandoned: false, done: () => {} };
      q.enqueue(t);
    };
    for (let round = 0; round < 60; round++) {
      // A tight application (2 ms: at most 6 inputs per batch) and a lenient one (1 s) share the model;
      // the lenient one's inputs arrive last in every round.
      for (let i = 0; i < 32; i++) add(2);
      for (let i = 0; i < 32; i++) add(1000);
      while (pending.length) {
        pending.shift()!();
        await new Promise((r) => setImmediate(r));
      }
    }
    const settled = sizes.slice(-40);
    // By the lenient budget alone the batches would grow to all 64 waiting inputs.
    assert.ok(Math.max(...settled) <= 16, `batches stay near the tight budget's 6 inputs: ${settled}`);
  });
});
