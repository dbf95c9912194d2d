/**
 * A server span per HTTP request (../observability/tracing.ts): started in `onRequest` (before the
 * body is read) from the caller's `traceparent`/`tracestate`, readable by route handlers as
 * `req.trace`, ended when the answer is sent (`onResponse`, with the status and the error a route
 * threw) or when the client went away first (`onRequestAbort`). Every answer carries the server
 * span's `traceparent` header. Without tracing no hook is added and `req.trace` is undefined.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { RequestTrace, Tracing } from '../observability/tracing.ts';

declare module 'fastify' {
  interface FastifyRequest {
    /** This request's trace, when tracing is on (observability/tracing.ts). */
    trace: RequestTrace | undefined;
  }
}

export function traceRequests(app: FastifyInstance, tracing: Tracing | undefined): void {
  app.decorateRequest('trace', undefined);
  if (!tracing?.enabled) return;
  const errors = new WeakMap<FastifyRequest, unknown>();
  app.addHook('onRequest', async (req, reply) => {
    const route = req.routeOptions.url;
    const t = tracing.startRequest('http', route === undefined ? req.method : `${req.method} ${route}`, header(req.headers.traceparent), {
      'http.request.method': req.method,
      'url.path': pathOf(req.url),
      ...(route === undefined ? {} : { 'http.route': route }),
    }, header(req.headers.tracestate));
    if (!t) return;
    req.trace = t;
    reply.header('traceparent', t.traceparent());
  });
  app.addHook('onError', async (req, _reply, err) => {
    errors.set(req, err);
  });
  app.addHook('onResponse', async (req, reply) => {
    req.trace?.end(reply.statusCode, errors.get(req));
  });
  app.addHook('onRequestAbort', async (req) => {
    req.trace?.end(undefined, 'the client closed the connection before the answer');
  });
}

function header(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v.join(',') : v;
}

function pathOf(url: string): string {
  const q = url.indexOf('?');
  return (q < 0 ? url : url.slice(0, q)).slice(0, 200);
}
