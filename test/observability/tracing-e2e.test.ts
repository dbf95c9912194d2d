/**
 * Traces end to end: a real server (SQLite, ZeroMQ, a JS model in a child process) exporting to
 * an OTLP receiver on loopback. A query sent with a `traceparent` comes back with the server
 * span's `traceparent`, and the receiver gets, in the caller's trace: the server span → `queue`
 * and `rpc` (→ `container`, the time the JS runtime reports), in time order — for Clipper's
 * predict, V2 REST infer and V2 gRPC ModelInfer; a cached answer is an event instead.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { v2GrpcClient } from '../helpers/grpc-client.ts';
import { startOtlpReceiver, describe as describeSpans, type OtlpReceiver, type ReceivedSpan } from '../helpers/otlp-receiver.ts';
import { deployJsApp, send, startTestServer, SUM_MODEL, type TestServer } from '../helpers/server.ts';

const newTraceId = () => randomBytes(16).toString('hex');
const PARENT_ID = '00f067aa0ba902b7';

describe('traces of queries, end to end', () => {
  let receiver: OtlpReceiver;
  let s: TestServer;

  before(async () => {
    receiver = await startOtlpReceiver();
    s = await startTestServer({ otlpEndpoint: receiver.url, grpcPort: 0 });
    await deployJsApp(s, { app: 'sum', inputType: 'doubles', source: SUM_MODEL, defaultOutput: '-1', sloMicros: 5_000_000 });
  });
  after(async () => {
    await s?.close();
    await receiver?.close();
  });

  const inTrace = (traceId: string) => receiver.spans.filter((x) => x.traceId === traceId);

  /** Waits for the server span `name` and its queue and rpc (and container) spans in `traceId`; checks links and times. */
  async function expectQuerySpans(traceId: string, name: string): Promise<{ server: ReceivedSpan; queue: ReceivedSpan; rpc: ReceivedSpan; container: ReceivedSpan }> {
    const has = (n: string) => inTrace(traceId).some((x) => x.name === n);
    await receiver.waitFor(() => has(name) && has('queue') && has('rpc') && has('container'), `${name} → queue, rpc → container in trace ${traceId}`);
    const spans = inTrace(traceId);
    const get = (n: string) => {
      const found = spans.filter((x) => x.name === n);
      assert.equal(found.length, 1, `one ${n} span: ${describeSpans(spans)}`);
      return found[0]!;
    };
    const server = get(name);
    const queue = get('queue');
    const rpc = get('rpc');
    const container = get('container');
    assert.equal(server.parentSpanId, PARENT_ID, 'the server span continues the caller\'s span');
    assert.equal(server.service, 'clipper-ts');
    assert.equal(queue.parentSpanId, server.spanId);
    assert.equal(rpc.parentSpanId, server.spanId);
    assert.equal(container.parentSpanId, rpc.spanId);
    // In order: the request, then its wait in the queue, then the batch on the replica.
    assert.ok(server.startNs <= queue.startNs, 'the queue wait starts within the request');
    assert.ok(queue.endNs <= rpc.startNs + 1000n, 'the rpc starts when the queue wait ends');
    assert.ok(rpc.startNs <= rpc.endNs);
    assert.ok(rpc.endNs <= server.endNs, 'the answer came back before the request ended');
    assert.ok(container.startNs >= rpc.startNs && container.endNs <= rpc.endNs, 'the container\'s time lies within its rpc');
    assert.equal(typeof rpc.attributes['clipper.replica'], 'string');
    assert.ok(Number(rpc.attributes['clipper.batch_size']) >= 1);
    assert.ok(Number(container.attributes['clipper.compute_ms']) >= 0);
    return { server, queue, rpc, container };
  }

  it('Clipper predict: traceparent in and out, http → queue → rpc → container', async () => {
    const traceId = newTraceId();
    const r = await send(`${s.app.queryUrl}/sum/predict`, { input: [1, 2, 3.5] }, false, { traceparent: `00-${traceId}-${PARENT_ID}-01` });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal(r.body.output, 6.5);
    const header = r.headers.get('traceparent');
    assert.match(header ?? '', new RegExp(`^00-${traceId}-[0-9a-f]{16}-01$`));
    const { server, queue, rpc } = await expectQuerySpans(traceId, 'POST /:app/predict');
    assert.equal(header, `00-${traceId}-${server.spanId}-01`);
    assert.equal(server.attributes['http.response.status_code'], 200);
    assert.equal(server.attributes['http.route'], '/:app/predict');
    assert.equal(queue.attributes['clipper.model'], rpc.attributes['clipper.model']);
  });

  it('a cached answer: a cache_hit event on the http span, no queue or rpc', async () => {
    const input = [40, 2, Math.random()];
    const first = await send(`${s.app.queryUrl}/sum/predict`, { input }, false);
    assert.equal(first.status, 200);
    const traceId = newTraceId();
    const r = await send(`${s.app.queryUrl}/sum/predict`, { input }, false, { traceparent: `00-${traceId}-${PARENT_ID}-01` });
    assert.equal(r.status, 200);
    const [server] = await receiver.waitFor(() => inTrace(traceId).length > 0, `the http span of trace ${traceId}`).then(() => inTrace(traceId));
    assert.deepEqual(server!.events.map((e) => e.name), ['cache_hit'], describeSpans(inTrace(traceId)));
    assert.deepEqual(inTrace(traceId).map((x) => x.name), ['POST /:app/predict']);
  });

  it('a new trace without a traceparent, and with an invalid one', async () => {
    for (const headers of [{}, { traceparent: '00-nonsense' }] as Array<Record<string, string>>) {
      const r = await send(`${s.app.queryUrl}/sum/predict`, { input: [Math.random()] }, false, headers);
      assert.equal(r.status, 200);
      const [, traceId] = /^00-([0-9a-f]{32})-[0-9a-f]{16}-01$/.exec(r.headers.get('traceparent') ?? '') ?? [];
      assert.ok(traceId, `a traceparent on the answer: ${r.headers.get('traceparent')}`);
      await receiver.waitFor(() => inTrace(traceId).some((x) => x.name === 'rpc'), `an rpc span in the new trace ${traceId}`);
      assert.equal(inTrace(traceId).find((x) => x.name === 'POST /:app/predict')!.parentSpanId, '');
    }
  });

  it('V2 REST infer: the same spans', async () => {
    const traceId = newTraceId();
    const r = await send(`${s.app.queryUrl}/v2/models/sum/infer`, { inputs: [{ name: 'x', datatype: 'FP64', shape: [1, 2], data: [0.25, Math.random()] }] }, false, { traceparent: `00-${traceId}-${PARENT_ID}-01` });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    await expectQuerySpans(traceId, 'POST /v2/models/:m/infer');
  });

  it('V2 gRPC ModelInfer: the traceparent metadata is continued', async () => {
    const client = v2GrpcClient(s.app.grpcPort);
    try {
      const traceId = newTraceId();
      const md = new grpc.Metadata();
      md.set('traceparent', `00-${traceId}-${PARENT_ID}-01`);
      const res = await new Promise<any>((resolve, reject) => client.ModelInfer!(
        { model_name: 'sum', inputs: [{ name: 'x', datatype: 'FP64', shape: [1, 2], contents: { fp64_contents: [1, Math.random()] } }] },
        md, {}, (e: Error | null, out: unknown) => (e ? reject(e) : resolve(out)),
      ));
      assert.equal(res.outputs.length, 1);
      const { server } = await expectQuerySpans(traceId, 'inference.GRPCInferenceService/ModelInfer');
      assert.equal(server.attributes['rpc.grpc.status_code'], 0);
    } finally {
      client.close();
    }
  });
});
