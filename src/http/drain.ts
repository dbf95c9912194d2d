/**
 * Graceful drain of one HTTP frontend, so stopping a server under load drops no query:
 *
 *   1. stop accepting connections; Node closes the idle kept-alive ones;
 *   2. requests already in flight get `Connection: close` and run on, for up to `graceMs`;
 *   3. a request that arrives on a kept-alive connection meanwhile is answered at once with
 *      503 UNAVAILABLE and `Connection: close` (in the usual `{error, cause}` shape);
 *   4. whatever is still running when the grace period ends is answered 503 UNAVAILABLE, so the
 *      client gets an answer rather than a reset; only then does fastify close the connections.
 *
 * Queries normally finish well within the grace period: each has its application's latency
 * objective, after which it is answered with the default output anyway.
 */
import type { ServerResponse } from 'node:http';
import type { FastifyInstance } from 'fastify';
import { sendError } from './server-common.ts';

export interface Drain {
  /** Runs steps 1–4; resolves when nothing is in flight any more. Call before `app.close()`. */
  drain(graceMs: number): Promise<void>;
}

/** Tracks requests in flight on `app`; must be called before the server listens. */
export function drainable(app: FastifyInstance): Drain {
  const inflight = new Set<ServerResponse>();
  let draining = false;
  // One listener function for every response (no closure per request).
  function settled(this: ServerResponse): void {
    inflight.delete(this);
  }
  app.server.on('request', (_req, res: ServerResponse) => {
    inflight.add(res);
    res.once('close', settled);
  });
  app.addHook('onRequest', (_req, reply, done) => {
    if (!draining) return done();
    reply.header('connection', 'close');
    sendError(reply, 'UNAVAILABLE', 'the server is shutting down; retry on another server or after it restarts');
  });

  let drained: Promise<void> | undefined;
  const run = async (graceMs: number) => {
    draining = true;
    if (app.server.listening) app.server.close();
    for (const res of inflight) if (!res.headersSent) res.setHeader('connection', 'close');
    const deadline = Date.now() + graceMs;
    while (inflight.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    for (const res of inflight) {
      if (res.headersSent) continue;
      res.writeHead(503, { 'content-type': 'application/json', connection: 'close' });
      res.end(JSON.stringify({ error: 'UNAVAILABLE', cause: `the server shut down before this request finished (drain timeout ${graceMs} ms)` }));
    }
  };
  return { drain: (graceMs) => (drained ??= run(graceMs)) };
}
