/**
 * The request log of both HTTP APIs, in one onSend hook: the request id goes into the
 * `x-request-id` answer header, and the answer is logged with it — 5xx at error, 4xx at debug,
 * anything else at trace. Nothing is built unless its level is on: an answered query costs a
 * header and two comparisons.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Logger } from '../observability/log.ts';
import { REQUEST_ID_HEADER } from './request-id.ts';

/** Puts the request id on an answer about to go out, and logs the answer at its level. */
export type AnswerLog = (req: FastifyRequest, reply: FastifyReply, payload: unknown) => void;

export function answerLog(logger: Logger): AnswerLog {
  const debug = logger.isLevelEnabled('debug');
  const trace = logger.isLevelEnabled('trace');
  return (req, reply, payload) => {
    reply.header(REQUEST_ID_HEADER, req.id);
    const status = reply.statusCode;
    if (status >= 500) logger.error(answerFields(req, reply, payload), 'request failed');
    else if (status >= 400) { if (debug) logger.debug(answerFields(req, reply, payload), 'request refused'); }
    else if (trace) logger.trace(answerFields(req, reply, undefined), 'request answered');
  };
}

/** Every answer of `app` goes through `log` (answers fastify gives outside its hooks call it themselves). */
export function logRequests(app: FastifyInstance, log: AnswerLog): void {
  app.addHook('onSend', (req, reply, payload, done) => {
    log(req, reply, payload);
    done(null, payload);
  });
}

/** reqId, method, url, status, ms, and for an error answer its code and cause. */
export function answerFields(req: FastifyRequest, reply: FastifyReply, payload: unknown): Record<string, unknown> {
  const fields: Record<string, unknown> = {
    reqId: req.id, method: req.method, url: req.url.length > 200 ? `${req.url.slice(0, 200)}…` : req.url,
    status: reply.statusCode, ms: Math.round(reply.elapsedTime * 10) / 10,
  };
  // A traced request's log record names its trace, so the two can be joined.
  const traceparent = (req as { trace?: { traceparent(): string } }).trace?.traceparent();
  if (traceparent) fields.traceId = traceparent.split('-')[1];
  // Error answers are small JSON: {"error": CODE, "cause": message} (V2: {"error": message}).
  if (typeof payload === 'string' && payload.length <= 16_384 && payload.startsWith('{')) {
    try {
      const body = JSON.parse(payload) as { error?: unknown; cause?: unknown };
      if (typeof body.error === 'string') fields.error = body.error.slice(0, 500);
      if (typeof body.cause === 'string') fields.cause = body.cause.slice(0, 500);
    } catch {
      // not JSON after all: status alone
    }
  }
  return fields;
}
