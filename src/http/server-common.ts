/**
 * What both HTTP frontends share: a fastify instance whose body parser accepts JSON under any
 * content type, and whose errors (ours, fastify's, unknown routes) are all JSON
 * `{"error": CODE, "cause": message}` with a 4xx/5xx — never a stack trace or a dropped connection.
 */
import Fastify, { type FastifyError, type FastifyInstance, type FastifyReply } from 'fastify';
import { ServingError, type ErrorCode } from '../errors.ts';
import { HTTP_STATUS } from './status.ts';

export interface HttpOptions { bodyLimitBytes: number; log?: (msg: string) => void }

export function createHttpServer(opts: HttpOptions): FastifyInstance {
  const app = Fastify({ bodyLimit: opts.bodyLimitBytes, logger: false, return503OnClosing: true, forceCloseConnections: true });
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'string' }, (_req, body, done) => {
    const text = body as string;
    if (text.length === 0) return done(null, undefined);
    try {
      done(null, JSON.parse(text));
    } catch (e) {
      done(new ServingError('MALFORMED_JSON', `request body is not valid JSON: ${(e as Error).message}`) as unknown as FastifyError, undefined);
    }
  });
  app.setErrorHandler((err: FastifyError | ServingError, _req, reply) => {
    if (err instanceof ServingError) return sendError(reply, err.code, err.message);
    const code = fastifyCode(err);
    if (code === 'INTERNAL') opts.log?.(`internal error: ${err.stack ?? err.message}`);
    return sendError(reply, code, code === 'INTERNAL' ? 'internal error' : err.message);
  });
  app.setNotFoundHandler((req, reply) => sendError(reply, 'ROUTE_NOT_FOUND', `no route for ${req.method} ${req.url.slice(0, 200)}`));
  return app;
}

function fastifyCode(err: FastifyError): ErrorCode {
  switch (err.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE': return 'BODY_TOO_LARGE';
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return 'MALFORMED_JSON';
  }
  if (typeof err.statusCode === 'number' && err.statusCode >= 400 && err.statusCode < 500) return err.statusCode === 413 ? 'BODY_TOO_LARGE' : 'INVALID_INPUT';
  return 'INTERNAL';
}

export function sendError(reply: FastifyReply, code: ErrorCode, message: string): FastifyReply {
  const status = HTTP_STATUS[code];
  if (code === 'QUEUE_FULL' || code === 'OVERLOADED') reply.header('retry-after', '1');
  return reply.code(status).type('application/json').send({ error: code, cause: message });
}
