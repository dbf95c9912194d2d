/**
 * Tracing against a real OTLP/HTTP receiver on loopback: the spans of a request (server → queue,
 * rpc → container), their parent links and times, the caller's trace continued or a new one
 * started, sampling, retries, unsent inputs, tracing off, and an unreachable collector.
 */
import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, test } from 'node:test';
import { otlpTracesUrl, resolveConfig } from '../../src/config.ts';
import { MAX_TASK_SPANS, Tracing, startGrpcTrace, tracingFromConfig } from '../../src/observability/tracing.ts';
import { FakeClock } from '../helpers/fake-clock.ts';
import { startOtlpReceiver, type OtlpReceiver, type ReceivedSpan } from '../helpers/otlp-receiver.ts';

const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';
const PARENT_ID = '00f067aa0ba902b7';
const NS_PER_MS = 1_000_000n;

let receiver: OtlpReceiver;
before(async () => { receiver = await startOtlpReceiver(); });
after(() => receiver.close());
beforeEach(() => { receiver.spans.length = 0; });

function tracing(clock: FakeClock, extra: { sampleRatio?: number; log?: (m: string) => void; endpoint?: string } = {}): Promise<Tracing> {
  return Tracing.create({ endpoint: extra.endpoint ?? receiver.tracesUrl, clock, exportDelayMs: 20, sampleRatio: extra.sampleRatio, log: extra.log });
}

function byName(spans: ReceivedSpan[], name: string): ReceivedSpan[] {
  return spans.filter((s) => s.name === name);
}

function one(spans: ReceivedSpan[], name: string): ReceivedSpan {
  const found = byName(spans, name);
  assert.equal(found.length, 1, `one ${name} span, got ${found.length}: ${spans.map((s) => s.name).join(', ')}`);
  return found[0]!;
}

describe('a traced request', () => {
  test('continues the caller\'s trace: server → queue, rpc → container, in time order', async () => {
    const clock = new FakeClock();
    clock.t = 1000;
    const t = await tracing(clock);
    const rt = t.startRequest('http', 'POST /:app/predict', `00-${TRACE_ID}-${PARENT_ID}-01`, { 'http.request.method': 'POST' }, 'vendor=abc');
    assert.ok(rt);
    assert.match(rt.traceparent(), new RegExp(`^00-${TRACE_ID}-[0-9a-f]{16}-01$`));
    clock.advance(1);
    const task = rt.task('sum:1');
    clock.advance(2.5);
    task.sent(clock.now(), 'replica-7', 4);
    clock.advance(6);
    task.answered(clock.now(), true, 3.25);
    clock.advance(0.5);
    rt.cacheHit('other:2');
    rt.end(200);
    await t.shutdown();

    const spans = receiver.spans;
    assert.equal(spans.length, 4, spans.map((s) => s.name).join(', '));
    const server = one(spans, 'POST /:app/predict');
    const queue = one(spans, 'queue');
    const rpc = one(spans, 'rpc');
    const container = one(spans, 'container');
    for (const s of spans) assert.equal(s.traceId, TRACE_ID, `${s.name} is in the caller's trace`);
    assert.equal(server.parentSpanId, PARENT_ID);
    assert.equal(server.kind, 2, 'SERVER');
    assert.equal(server.traceState, 'vendor=abc');
    assert.equal(server.service, 'clipper-ts');
    assert.equal(rt.traceparent(), `00-${TRACE_ID}-${server.spanId}-01`);
    assert.equal(queue.parentSpanId, server.spanId);
    assert.equal(rpc.parentSpanId, server.spanId);
    assert.equal(container.parentSpanId, rpc.spanId);
    assert.equal(rpc.kind, 3, 'CLIENT');

    // Times: the server span holds everything; the queue ends where the rpc starts; the container
    // is the last computeMs of the rpc.
    assert.ok(server.startNs <= queue.startNs);
    assert.equal(queue.startNs - server.startNs, 1n * NS_PER_MS);
    assert.equal(queue.endNs - queue.startNs, 2_500_000n);
    assert.equal(queue.endNs, rpc.startNs);
    assert.equal(rpc.endNs - rpc.startNs, 6n * NS_PER_MS);
    assert.equal(container.endNs, rpc.endNs);
    assert.equal(container.endNs - container.startNs, 3_250_000n);
    assert.ok(container.startNs >= rpc.startNs);
    assert.ok(rpc.endNs <= server.endNs);
    assert.equal(server.endNs - server.startNs, 10n * NS_PER_MS);

    assert.deepEqual(rpc.attributes, { 'clipper.model': 'sum:1', 'clipper.replica': 'replica-7', 'clipper.batch_size': 4, 'clipper.attempt': 1 });
    assert.equal(queue.attributes['clipper.model'], 'sum:1');
    assert.equal(container.attributes['clipper.compute_ms'], 3.25);
    assert.equal(server.attributes['http.response.status_code'], 200);
    assert.equal(server.status.code, 0, 'unset: a 200 is no error');
    assert.deepEqual(server.events.map((e) => [e.name, e.attributes['clipper.model']]), [['cache_hit', 'other:2']]);
    assert.equal(server.events[0]!.timeNs - server.startNs, 10n * NS_PER_MS);
  });

  test('an answer without computeMs has no container span; a container that claims more than the rpc took stays inside it', async () => {
    const clock = new FakeClock();
    const t = await tracing(clock);
    const rt = t.startRequest('http', 'POST /:app/predict', undefined)!;
    const a = rt.task('m:1');
    const b = rt.task('m:1');
    a.sent(clock.now(), 'r', 2);
    b.sent(clock.now(), 'r', 2);
    clock.advance(4);
    a.answered(clock.now(), true);
    b.answered(clock.now(), true, 50);
    rt.end(200);
    await t.shutdown();
    const spans = receiver.spans;
    assert.equal(byName(spans, 'rpc').length, 2);
    const container = one(spans, 'container');
    const rpc = spans.find((s) => s.spanId === container.parentSpanId)!;
    assert.equal(container.startNs, rpc.startNs);
    assert.equal(container.endNs, rpc.endNs);
  });

  test('a failed batch and its retry: rpc (error), a second queue wait, rpc', async () => {
    const clock = new FakeClock();
    const t = await tracing(clock);
    const rt = t.startRequest('grpc', 'inference.GRPCInferenceService/ModelInfer', undefined)!;
    const task = rt.task('m:1');
    clock.advance(1);
    task.sent(clock.now(), 'r1', 1);
    clock.advance(2);
    task.answered(clock.now(), false);
    clock.advance(3);
    task.sent(clock.now(), 'r2', 1);
    clock.advance(1);
    task.answered(clock.now(), true);
    rt.end(0);
    await t.shutdown();
    const spans = receiver.spans;
    const queues = byName(spans, 'queue').sort((x, y) => Number(x.startNs - y.startNs));
    const rpcs = byName(spans, 'rpc').sort((x, y) => Number(x.startNs - y.startNs));
    assert.equal(queues.length, 2);
    assert.equal(rpcs.length, 2);
    assert.equal(rpcs[0]!.status.code, 2, 'the failed batch is an error');
    assert.equal(rpcs[1]!.status.code, 0);
    assert.equal(queues[1]!.startNs, rpcs[0]!.endNs, 'the retry waits from the failure');
    assert.equal(queues[1]!.endNs, rpcs[1]!.startNs);
    assert.equal(queues[1]!.attributes['clipper.attempt'], 2);
    assert.deepEqual(rpcs.map((r) => [r.attributes['clipper.replica'], r.attributes['clipper.attempt']]), [['r1', 1], ['r2', 2]]);
    const server = one(spans, 'inference.GRPCInferenceService/ModelInfer');
    assert.equal(server.attributes['rpc.grpc.status_code'], 0);
    assert.equal(server.status.code, 0);
  });

  test('an input still queued when the request ends: its queue span ends with the request, marked unsent; a failed batch with no retry adds nothing', async () => {
    const clock = new FakeClock();
    const t = await tracing(clock);
    const rt = t.startRequest('http', 'POST /:app/predict', undefined)!;
    rt.task('slow:1');
    const failed = rt.task('bad:1');
    failed.sent(clock.now(), 'r', 1);
    clock.advance(2);
    failed.answered(clock.now(), false);
    clock.advance(5);
    rt.end(200);
    await t.shutdown();
    const spans = receiver.spans;
    const queues = byName(spans, 'queue');
    assert.equal(queues.length, 2, spans.map((s) => s.name).join(', '));
    const unsent = queues.find((q) => q.attributes['clipper.model'] === 'slow:1')!;
    assert.equal(unsent.attributes['clipper.unsent'], true);
    assert.equal(unsent.endNs, one(spans, 'POST /:app/predict').endNs);
    assert.equal(one(spans, 'rpc').status.code, 2);
  });

  test('an rpc still out when the request ends is exported once its batch comes back', async () => {
    const clock = new FakeClock();
    const t = await tracing(clock);
    const rt = t.startRequest('http', 'POST /:app/predict', undefined)!;
    const task = rt.task('m:1');
    task.sent(clock.now(), 'r', 1);
    clock.advance(1);
    rt.end(200);
    clock.advance(9);
    task.answered(clock.now(), true, 2);
    await t.shutdown();
    const spans = receiver.spans;
    const server = one(spans, 'POST /:app/predict');
    const rpc = one(spans, 'rpc');
    assert.ok(rpc.endNs > server.endNs);
    assert.equal(rpc.endNs - rpc.startNs, 10n * NS_PER_MS);
    assert.equal(one(spans, 'container').parentSpanId, rpc.spanId);
  });

  test('end counts once; 5xx and server-side gRPC codes are errors, a client that left is an error without a status', async () => {
    const clock = new FakeClock();
    const t = await tracing(clock);
    const r1 = t.startRequest('http', 'A', undefined)!;
    r1.end(503, new Error('queue full'));
    r1.end(200);
    t.startRequest('http', 'B', undefined)!.end(404, new Error('no such app'));
    t.startRequest('http', 'C', undefined)!.end(undefined, 'the client closed the connection before the answer');
    t.startRequest('grpc', 'D', undefined)!.end(14); // UNAVAILABLE
    t.startRequest('grpc', 'E', undefined)!.end(3); // INVALID_ARGUMENT: the caller's fault
    await t.shutdown();
    const spans = receiver.spans;
    assert.equal(spans.length, 5);
    assert.deepEqual(one(spans, 'A').status, { code: 2, message: 'queue full' });
    assert.equal(one(spans, 'A').attributes['http.response.status_code'], 503);
    assert.equal(one(spans, 'B').status.code, 0);
    assert.deepEqual(one(spans, 'C').status, { code: 2, message: 'the client closed the connection before the answer' });
    assert.equal(one(spans, 'C').attributes['http.response.status_code'], undefined);
    assert.equal(one(spans, 'D').status.code, 2);
    assert.equal(one(spans, 'E').status.code, 0);
  });

  test(`at most ${MAX_TASK_SPANS} inputs of one request get spans; the rest are counted`, async () => {
    const clock = new FakeClock();
    const t = await tracing(clock);
    const rt = t.startRequest('http', 'POST /:app/predict', undefined)!;
    for (let i = 0; i < MAX_TASK_SPANS + 5; i++) {
      const task = rt.task('m:1');
      task.sent(clock.now(), 'r', MAX_TASK_SPANS + 5);
      task.answered(clock.now(), true);
    }
    rt.end(200);
    await t.shutdown();
    assert.equal(byName(receiver.spans, 'rpc').length, MAX_TASK_SPANS);
    assert.equal(one(receiver.spans, 'POST /:app/predict').attributes['clipper.untraced_inputs'], 5);
  });
});

describe('incoming traceparent', () => {
  const invalid = [
    'garbage',
    '',
    `00-${'0'.repeat(32)}-${PARENT_ID}-01`, // all-zero trace id
    `00-${TRACE_ID}-${'0'.repeat(16)}-01`, // all-zero parent id
    `ff-${TRACE_ID}-${PARENT_ID}-01`, // version ff
    `00-${TRACE_ID.toUpperCase()}-${PARENT_ID}-01`, // uppercase hex
    `00-${TRACE_ID}-${PARENT_ID}-01-extra`, // version 00 has exactly four parts
    `00-${TRACE_ID.slice(1)}-${PARENT_ID}-01`,
  ];
  test('an invalid header starts a new trace, never an error', async () => {
    const clock = new FakeClock();
    const t = await tracing(clock);
    const parents: string[] = [];
    for (const h of invalid) {
      const rt = t.startRequest('http', `bad ${JSON.stringify(h)}`, h);
      assert.ok(rt);
      parents.push(rt.traceparent());
      rt.end(200);
    }
    await t.shutdown();
    assert.equal(receiver.spans.length, invalid.length);
    for (const s of receiver.spans) {
      assert.notEqual(s.traceId, TRACE_ID, s.name);
      assert.equal(s.parentSpanId, '', `${s.name} is a root span`);
    }
    assert.equal(new Set(receiver.spans.map((s) => s.traceId)).size, invalid.length, 'a new trace each');
    for (const p of parents) assert.match(p, /^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
  });

  test('a caller that did not sample: nothing is recorded, its decision is passed on', async () => {
    const clock = new FakeClock();
    const t = await tracing(clock);
    const rt = t.startRequest('http', 'unsampled', `00-${TRACE_ID}-${PARENT_ID}-00`)!;
    assert.match(rt.traceparent(), new RegExp(`^00-${TRACE_ID}-[0-9a-f]{16}-00$`));
    const task = rt.task('m:1');
    task.sent(clock.now(), 'r', 1);
    task.answered(clock.now(), true, 1);
    rt.end(200);
    await t.shutdown();
    assert.equal(receiver.spans.length, 0);
  });

  test('sample ratio 0: new traces are not recorded, a sampled caller still is', async () => {
    const clock = new FakeClock();
    const t = await tracing(clock, { sampleRatio: 0 });
    t.startRequest('http', 'new', undefined)!.end(200);
    t.startRequest('http', 'sampled caller', `00-${TRACE_ID}-${PARENT_ID}-01`)!.end(200);
    await t.shutdown();
    assert.deepEqual(receiver.spans.map((s) => s.name), ['sampled caller']);
  });

  test('gRPC metadata: traceparent and tracestate, rpc attributes', async () => {
    const clock = new FakeClock();
    const t = await tracing(clock);
    const md = new Map<string, Array<string | Buffer>>([['traceparent', [`00-${TRACE_ID}-${PARENT_ID}-01`]], ['tracestate', ['a=1', 'b=2']]]);
    const rt = startGrpcTrace(t, 'ModelInfer', { get: (k) => md.get(k) ?? [] })!;
    rt.end(0);
    assert.equal(startGrpcTrace(Tracing.off, 'ModelInfer', { get: () => [] }), undefined);
    assert.equal(startGrpcTrace(undefined, 'ModelInfer', { get: () => [] }), undefined);
    await t.shutdown();
    const s = one(receiver.spans, 'inference.GRPCInferenceService/ModelInfer');
    assert.equal(s.traceId, TRACE_ID);
    assert.equal(s.parentSpanId, PARENT_ID);
    assert.equal(s.traceState, 'a=1,b=2');
    assert.deepEqual(s.attributes, { 'rpc.system': 'grpc', 'rpc.service': 'inference.GRPCInferenceService', 'rpc.method': 'ModelInfer', 'rpc.grpc.status_code': 0 });
  });
});

describe('tracing off', () => {
  test('no endpoint: startRequest returns undefined and nothing is sent', async () => {
    assert.equal(Tracing.off.enabled, false);
    assert.equal(Tracing.off.startRequest('http', 'x', `00-${TRACE_ID}-${PARENT_ID}-01`), undefined);
    const t = await Tracing.create({ endpoint: '' });
    assert.equal(t, Tracing.off);
    const fromConfig = await tracingFromConfig(resolveConfig({ otlpEndpoint: '' }));
    assert.equal(fromConfig.startRequest('http', 'x', undefined), undefined);
    await fromConfig.shutdown();
  });

  test('from config: the endpoint and service name reach the spans', async () => {
    const t = await tracingFromConfig(resolveConfig({ otlpEndpoint: receiver.url, traceServiceName: 'clipper-test' }));
    assert.equal(t.enabled, true);
    t.startRequest('http', 'configured', undefined)!.end(200);
    await t.shutdown();
    assert.equal(one(receiver.spans, 'configured').service, 'clipper-test');
  });
});

test('an unreachable collector: said once in the log; shutdown returns', async () => {
  const lines: string[] = [];
  const gone = await startOtlpReceiver();
  const port = new URL(gone.url).port;
  await gone.close();
  const t = await Tracing.create({ endpoint: gone.tracesUrl, exportDelayMs: 20, exportTimeoutMs: 300, log: (m) => lines.push(m) });
  t.startRequest('http', 'lost 1', undefined)!.end(200);
  await t.flush();
  t.startRequest('http', 'lost 2', undefined)!.end(200);
  await t.flush();
  assert.equal(lines.length, 1, lines.join('\n'));
  assert.match(lines[0]!, new RegExp(`traces cannot be exported to http://127\\.0\\.0\\.1:${port}/v1/traces`));
  await t.shutdown(1000);
});

test('a collector that comes back: said in the log', async () => {
  const lines: string[] = [];
  let failing = true;
  const t = await Tracing.create({
    endpoint: 'test exporter', exportDelayMs: 10, log: (m) => lines.push(m),
    exporter: { export: (_spans, done) => done({ code: failing ? 1 : 0, error: failing ? new Error('boom') : undefined }), shutdown: async () => {} },
  });
  t.startRequest('http', 'a', undefined)!.end(200);
  await t.flush();
  failing = false;
  t.startRequest('http', 'b', undefined)!.end(200);
  await t.flush();
  await t.shutdown();
  assert.deepEqual(lines, [
    'traces cannot be exported to test exporter: boom (spans are dropped until it answers)',
    'traces are exported to test exporter again',
  ]);
});

test('the OTLP endpoint: flag, then the traces variable, then the base variable', () => {
  assert.equal(otlpTracesUrl(undefined, {}), '');
  assert.equal(otlpTracesUrl('', { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318' }), '', 'an empty flag turns traces off');
  assert.equal(otlpTracesUrl('http://c:4318', {}), 'http://c:4318/v1/traces');
  assert.equal(otlpTracesUrl('http://c:4318/', {}), 'http://c:4318/v1/traces');
  assert.equal(otlpTracesUrl('http://c:4318/v1/traces', {}), 'http://c:4318/v1/traces');
  assert.equal(otlpTracesUrl(undefined, { OTEL_EXPORTER_OTLP_ENDPOINT: 'https://c:4318/otlp' }), 'https://c:4318/otlp/v1/traces');
  assert.equal(otlpTracesUrl(undefined, { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://a:4318', OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://b:9999/traces' }), 'http://b:9999/traces');
  assert.equal(otlpTracesUrl('http://flag:1', { OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://b:9999/traces' }), 'http://flag:1/v1/traces');
});
