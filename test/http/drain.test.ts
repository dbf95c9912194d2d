import assert from 'node:assert/strict';
import { it } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { drainable, type Drain } from '../../src/http/drain.ts';
import { createHttpServer } from '../../src/http/server-common.ts';

async function slowServer(): Promise<{ app: FastifyInstance; drain: Drain; url: string }> {
  const app = createHttpServer({ bodyLimitBytes: 1 << 20 });
  app.post('/slow', async (req) => {
    await new Promise((r) => setTimeout(r, (req.body as { ms: number }).ms));
    return { done: true };
  });
  const drain = drainable(app);
  await app.listen({ host: '127.0.0.1', port: 0 });
  return { app, drain, url: `http://127.0.0.1:${(app.server.address() as { port: number }).port}/slow` };
}

const post = (url: string, ms: number) => fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ ms }) });

it('drain: in-flight requests finish (told to close), new connections are refused, requests meanwhile get 503', async () => {
  const { app, drain, url } = await slowServer();
  try {
    const inflight = [post(url, 300), post(url, 300), post(url, 300)];
    await new Promise((r) => setTimeout(r, 50));
    const started = Date.now();
    const drained = drain.drain(5_000);

    const during = await app.inject({ method: 'POST', url: '/slow', payload: { ms: 1 } });
    assert.equal(during.statusCode, 503);
    assert.equal(during.headers.connection, 'close');
    assert.deepEqual(during.json().error, 'UNAVAILABLE');
    await assert.rejects(post(url, 1), 'the listening socket is closed');

    await drained;
    assert.ok(Date.now() - started < 1_000, 'drain ends when the last request does, not at the timeout');
    for (const res of await Promise.all(inflight)) {
      assert.equal(res.status, 200);
      assert.equal(res.headers.get('connection'), 'close');
      assert.deepEqual(await res.json(), { done: true });
    }
  } finally {
    await app.close();
  }
});

it('drain: a request still running at the end of the grace period is answered 503, not reset', async () => {
  const { app, drain, url } = await slowServer();
  try {
    const late = post(url, 3_000);
    await new Promise((r) => setTimeout(r, 50));
    await drain.drain(200);
    const res = await late;
    assert.equal(res.status, 503);
    const body = await res.json();
    assert.equal(body.error, 'UNAVAILABLE');
    assert.match(body.cause, /drain timeout 200 ms/);
  } finally {
    await app.close();
  }
});
