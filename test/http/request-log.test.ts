/** Request ids and the request log (src/http/request-id.ts, request-log.ts), on a real socket. */
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { describe, it } from 'node:test';
import { ServingError } from '../../src/errors.ts';
import { createHttpServer } from '../../src/http/server-common.ts';
import { createLogger, type LogLevel } from '../../src/observability/log.ts';

type Rec = Record<string, any>;

interface Answer { statusCode: number; headers: Record<string, string | string[] | undefined> }

/** A listening server with three routes (ok, refused, broken) whose log records land in `records`. */
async function server(level: LogLevel) {
  const records: Rec[] = [];
  const logger = createLogger({ level, sink: { write: (line: string) => records.push(JSON.parse(line)) } });
  const app = createHttpServer({ bodyLimitBytes: 1024, logger });
  app.post('/ok', async () => ({ ok: true }));
  app.post('/refused', async () => { throw new ServingError('APP_NOT_FOUND', 'application "x" does not exist'); });
  app.post('/broken', async () => { throw new Error('a bug'); });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const port = (app.server.address() as { port: number }).port;
  /** Raw node:http, so a URL that does not decode reaches the server as it is. */
  const send = (o: { method: string; url: string; headers?: Record<string, string>; payload?: unknown }) => new Promise<Answer>((resolve, reject) => {
    const body = o.payload === undefined ? undefined : typeof o.payload === 'string' ? o.payload : JSON.stringify(o.payload);
    const req = request({ host: '127.0.0.1', port, method: o.method, path: o.url, headers: { 'content-type': 'application/json', ...o.headers } }, (res) => {
      res.resume();
      res.on('end', () => resolve({ statusCode: res.statusCode!, headers: res.headers }));
    });
    req.on('error', reject);
    req.end(body);
  });
  return { app: { send, close: () => app.close() }, records };
}

describe('request ids and the request log', () => {
  it('echoes a sane x-request-id and replaces any other with a fresh one, on every kind of answer', async () => {
    const { app } = await server('info');
    for (const url of ['/ok', '/refused', '/broken', '/nowhere']) {
      const kept = await app.send({ method: 'POST', url, headers: { 'x-request-id': 'client-id-1' }, payload: {} });
      assert.equal(kept.headers['x-request-id'], 'client-id-1', url);
      const fresh = await app.send({ method: 'POST', url, headers: { 'x-request-id': 'not sane' }, payload: {} });
      assert.match(String(fresh.headers['x-request-id']), /^[0-9a-f-]{36}$/, url);
    }
    // Answered by fastify before routing (a URL that does not decode): no hooks run there, the id is still added.
    const bad = await app.send({ method: 'GET', url: '/%E0%A4%A', headers: { 'x-request-id': 'bad-url-1' } });
    assert.equal(bad.statusCode, 400);
    assert.equal(bad.headers['x-request-id'], 'bad-url-1');
    // A body that is not JSON, and one over the limit.
    const malformed = await app.send({ method: 'POST', url: '/ok', headers: { 'x-request-id': 'm-1' }, payload: '{nope' });
    assert.equal(malformed.statusCode, 400);
    assert.equal(malformed.headers['x-request-id'], 'm-1');
    const large = await app.send({ method: 'POST', url: '/ok', headers: { 'x-request-id': 'l-1' }, payload: JSON.stringify({ x: 'y'.repeat(2000) }) });
    assert.equal(large.statusCode, 413);
    assert.equal(large.headers['x-request-id'], 'l-1');
    await app.close();
  });

  it('at info: logs 5xx answers (with the error and a stack for a bug), nothing for 2xx or 4xx', async () => {
    const { app, records } = await server('info');
    await app.send({ method: 'POST', url: '/ok', headers: { 'x-request-id': 'ok-1' }, payload: {} });
    await app.send({ method: 'POST', url: '/refused', headers: { 'x-request-id': 'refused-1' }, payload: {} });
    assert.equal(records.length, 0, JSON.stringify(records));
    const r = await app.send({ method: 'POST', url: '/broken?x=1', headers: { 'x-request-id': 'broken-1' }, payload: {} });
    assert.equal(r.statusCode, 500);
    const internal = records.find((x) => x.msg === 'internal error');
    assert.equal(internal?.level, 50);
    assert.equal(internal?.reqId, 'broken-1');
    assert.equal(internal?.err, 'a bug');
    assert.match(internal?.stack, /Error: a bug\n\s+at /);
    const failed = records.find((x) => x.msg === 'request failed');
    assert.deepEqual({ ...failed, time: 0, ms: 0, pid: 0, hostname: '' }, {
      level: 50, time: 0, pid: 0, hostname: '', reqId: 'broken-1', method: 'POST', url: '/broken?x=1', status: 500, ms: 0,
      error: 'INTERNAL', cause: 'internal error', msg: 'request failed',
    });
    assert.equal(typeof failed?.ms, 'number');
    await app.close();
  });

  it('at debug: logs 4xx answers with their request id, code and cause; 2xx only at trace', async () => {
    const { app, records } = await server('debug');
    await app.send({ method: 'POST', url: '/ok', headers: { 'x-request-id': 'ok-1' }, payload: {} });
    await app.send({ method: 'POST', url: '/refused', headers: { 'x-request-id': 'refused-1' }, payload: {} });
    await app.send({ method: 'GET', url: '/%E0%A4%A', headers: { 'x-request-id': 'bad-url-1' } });
    assert.deepEqual(records.map((x) => [x.level, x.msg, x.reqId, x.status, x.error]), [
      [20, 'request refused', 'refused-1', 404, 'APP_NOT_FOUND'],
      [20, 'request refused', 'bad-url-1', 400, 'INVALID_INPUT'],
    ]);
    assert.equal(records[0]!.cause, 'application "x" does not exist');
    await app.close();

    const traced = await server('trace');
    await traced.app.send({ method: 'POST', url: '/ok', headers: { 'x-request-id': 'ok-2' }, payload: {} });
    assert.deepEqual(traced.records.map((x) => [x.level, x.msg, x.reqId, x.status]), [[10, 'request answered', 'ok-2', 200]]);
    await traced.app.close();
  });
});

describe('the request log of a traced server', () => {
  it('names the trace of each request it logs', async () => {
    const { InMemorySpanExporter } = await import('@opentelemetry/sdk-trace-base');
    const { Tracing } = await import('../../src/observability/tracing.ts');
    const tracing = await Tracing.create({ endpoint: '', exporter: new InMemorySpanExporter() });
    const records: Rec[] = [];
    const logger = createLogger({ level: 'debug', sink: { write: (line: string) => records.push(JSON.parse(line)) } });
    const app = createHttpServer({ bodyLimitBytes: 1024, logger, tracing });
    app.post('/refused', async () => { throw new ServingError('APP_NOT_FOUND', 'application "x" does not exist'); });
    await app.listen({ host: '127.0.0.1', port: 0 });
    try {
      const res = await fetch(`http://127.0.0.1:${(app.server.address() as { port: number }).port}/refused`, {
        method: 'POST', headers: { 'content-type': 'application/json', traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01' }, body: '{}',
      });
      assert.equal(res.status, 404);
      const refused = records.find((r) => r.msg === 'request refused');
      assert.equal(refused?.traceId, '4bf92f3577b34da6a3ce929d0e0e4736');
      assert.equal(res.headers.get('traceparent')?.split('-')[1], '4bf92f3577b34da6a3ce929d0e0e4736');
    } finally {
      await app.close();
      await tracing.shutdown();
    }
  });
});
