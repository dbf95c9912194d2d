/**
 * fastify's `inject` (no socket) works on our servers: a POST whose body was read in full is
 * answered, not held by the hook that drops unread bodies (server-common.ts).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createHttpServer } from '../../src/http/server-common.ts';

describe('inject', () => {
  it('answers a POST with a JSON body, and a malformed one with 400', { timeout: 10_000 }, async () => {
    const app = createHttpServer({ bodyLimitBytes: 1024 });
    app.post('/echo', async (req) => ({ got: req.body }));
    try {
      const ok = await app.inject({ method: 'POST', url: '/echo', payload: { a: 1 } });
      assert.equal(ok.statusCode, 200);
      assert.deepEqual(ok.json(), { got: { a: 1 } });
      const bad = await app.inject({ method: 'POST', url: '/echo', headers: { 'content-type': 'application/json' }, payload: '{"a": ' });
      assert.equal(bad.statusCode, 400);
      assert.equal(bad.json().error, 'MALFORMED_JSON');
    } finally {
      await app.close();
    }
  });
});
