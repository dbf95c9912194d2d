/**
 * The HTTP server span (src/http/trace-hooks.ts) over loopback HTTP: started before the
 * route, readable as req.trace, ended with the status, traceparent on every answer; no hooks and
 * no header without tracing.
 */
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { after, before, beforeEach, test } from 'node:test';
import { ServingError } from '../../src/errors.ts';
import { createHttpServer } from '../../src/http/server-common.ts';
import { Tracing } from '../../src/observability/tracing.ts';
import { startOtlpReceiver, type OtlpReceiver } from '../helpers/otlp-receiver.ts';

const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';
const PARENT_ID = '00f067aa0ba902b7';

let receiver: OtlpReceiver;
before(async () => { receiver = await startOtlpReceiver(); });
after(() => receiver.close());
beforeEach(() => { receiver.spans.length = 0; });

async function server(tracing: Tracing | undefined) {
  const app = createHttpServer({ bodyLimitBytes: 1024, tracing });
  app.post<{ Params: { app: string } }>('/:app/predict', async (req) => {
    // What the query processor will do: one task per input, reported by the version queue.
    const task = req.trace?.task('m:1');
    task?.sent(performance.now(), 'r1', 1);
    task?.answered(performance.now(), true, 0.1);
    return { traced: req.trace !== undefined };
  });
  app.get('/fail', async () => { throw new ServingError('QUEUE_FULL', 'queue is full'); });
  app.get('/boom', async () => { throw new Error('a bug'); });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const { port } = app.server.address() as AddressInfo;
  const send = async (method: string, path: string, headers: Record<string, string> = {}, body?: unknown) => {
    const res = await fetch(`http://127.0.0.1:${port}${path}`, {
      method, headers: body === undefined ? headers : { 'content-type': 'application/json', ...headers }, body: body === undefined ? undefined : JSON.stringify(body),
    });
    return { statusCode: res.status, headers: Object.fromEntries(res.headers), body: await res.json() as unknown };
  };
  return { send, close: () => app.close() };
}

test('a request with a traceparent: a server span in the caller\'s trace, req.trace for the route, traceparent on the answer', async () => {
  const tracing = await Tracing.create({ endpoint: receiver.tracesUrl, exportDelayMs: 10 });
  const app = await server(tracing);
  const res = await app.send('POST', '/shop/predict?x=1', { traceparent: `00-${TRACE_ID}-${PARENT_ID}-01` }, { input: [1] });
  assert.equal(res.statusCode, 200);
  assert.deepEqual(res.body, { traced: true });
  await app.close();
  await tracing.shutdown();
  const server_ = receiver.spans.find((s) => s.name === 'POST /:app/predict');
  assert.ok(server_, receiver.spans.map((s) => s.name).join(', '));
  assert.equal(res.headers.traceparent, `00-${TRACE_ID}-${server_.spanId}-01`);
  assert.equal(server_.traceId, TRACE_ID);
  assert.equal(server_.parentSpanId, PARENT_ID);
  assert.deepEqual(server_.attributes, { 'http.request.method': 'POST', 'url.path': '/shop/predict', 'http.route': '/:app/predict', 'http.response.status_code': 200 });
  assert.deepEqual(receiver.spans.map((s) => s.name).sort(), ['POST /:app/predict', 'container', 'queue', 'rpc']);
  for (const s of receiver.spans) assert.equal(s.traceId, TRACE_ID);
});

test('errors: a 503 and a 500 are error spans with their status; a 404 and an unknown route are not; each answer carries its traceparent', async () => {
  const tracing = await Tracing.create({ endpoint: receiver.tracesUrl, exportDelayMs: 10 });
  const app = await server(tracing);
  const full = await app.send('GET', '/fail');
  const bug = await app.send('GET', '/boom');
  const none = await app.send('GET', '/nowhere', { traceparent: 'not a traceparent' });
  await app.close();
  await tracing.shutdown();
  assert.deepEqual([full.statusCode, bug.statusCode, none.statusCode], [503, 500, 404]);
  const spans = receiver.spans;
  const fail = spans.find((s) => s.name === 'GET /fail')!;
  const boom = spans.find((s) => s.name === 'GET /boom')!;
  const nowhere = spans.find((s) => s.name === 'GET')!;
  assert.deepEqual(fail.status, { code: 2, message: 'queue is full' });
  assert.equal(fail.attributes['http.response.status_code'], 503);
  assert.deepEqual(boom.status, { code: 2, message: 'a bug' });
  assert.equal(nowhere.status.code, 0);
  assert.equal(nowhere.parentSpanId, '', 'an invalid traceparent starts a new trace');
  assert.equal(nowhere.attributes['http.route'], undefined);
  for (const [res, span] of [[full, fail], [bug, boom], [none, nowhere]] as const) {
    assert.equal(res.headers.traceparent, `00-${span.traceId}-${span.spanId}-01`);
  }
});

test('tracing off: no span, no header, req.trace undefined', async () => {
  for (const tracing of [undefined, Tracing.off]) {
    const app = await server(tracing);
    const res = await app.send('POST', '/shop/predict', { traceparent: `00-${TRACE_ID}-${PARENT_ID}-01` }, { input: [1] });
    assert.deepEqual(res.body, { traced: false });
    assert.equal(res.headers.traceparent, undefined);
    await app.close();
  }
});
