/**
 * What both HTTP frontends share: a fastify instance whose body parser accepts JSON under any
 * content type, and whose errors (ours, fastify's, unknown routes, broken or too slow clients) are
 * all JSON `{"error": CODE, "cause": message}` with a 4xx/5xx — never a stack trace, and never a
 * reset where an answer can still be given. Optionally HTTPS. Defaults: docs/security.md.
 *
 * Slow clients: the whole request must arrive within `requestMs` and its headers within
 * `headersMs` (408 REQUEST_TIMEOUT, then the connection is closed); an idle kept-alive connection
 * is closed after `keepAliveMs`.
 *
 * Oversized bodies: the parser stops buffering at the limit and the answer is 413. A client that
 * is still sending would lose that answer to a TCP reset if the connection closed with its bytes
 * unread, so before any answer is sent the rest of the request body is read and dropped — up to
 * `drainBytes(limit)`; past that the answer goes out at once and the connection closes.
 */
import { readFileSync } from 'node:fs';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { createSecureContext } from 'node:tls';
import Fastify, { type FastifyError, type FastifyHttpOptions, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { ResolvedConfig } from '../config.ts';
import { ServingError, type ErrorCode } from '../errors.ts';
import { MAX_JSON_DEPTH, checkDepth } from '../registry/input-types.ts';
import { HTTP_STATUS } from './status.ts';
import { errorFields, messageLog, silentLogger, type Logger } from '../observability/log.ts';
import { requestIdOf } from './request-id.ts';
import { answerLog, logRequests } from './request-log.ts';
import { traceRequests } from './trace-hooks.ts';
import type { Tracing } from '../observability/tracing.ts';

export interface HttpTimeouts {
  /** The whole request (headers and body) must arrive within this (0 = no limit). */
  requestMs: number;
  /** The request headers must arrive within this (at most requestMs). */
  headersMs: number;
  /** An idle kept-alive connection is closed after this. */
  keepAliveMs: number;
}

export interface HttpOptions {
  bodyLimitBytes: number;
  /** Request log and request ids (request-log.ts). */
  logger?: Logger;
  /** For deep code that logs a line (the V2 frontend's internal errors). */
  log?: (msg: string) => void;
  /** PEM certificate chain and key: the API is served over HTTPS. */
  tls?: { cert: Buffer; key: Buffer };
  timeouts?: HttpTimeouts;
  /** A server span per request, `req.trace` for the routes, `traceparent` on answers (trace-hooks.ts). */
  tracing?: Tracing;
}

/** The HTTP options from the resolved config; reads the TLS files, with a one-line error when they are unusable. */
export function httpOptions(config: ResolvedConfig, logger?: Logger): HttpOptions {
  const log = logger && messageLog(logger, 'error');
  const timeouts = { requestMs: config.requestTimeoutMs, headersMs: config.headersTimeoutMs, keepAliveMs: config.keepAliveTimeoutMs };
  return { bodyLimitBytes: config.bodyLimitBytes, logger, log, timeouts, tls: readTls(config.tlsCert, config.tlsKey) };
}

export function readTls(certPath: string, keyPath: string): { cert: Buffer; key: Buffer } | undefined {
  if (certPath === '' && keyPath === '') return undefined;
  if (certPath === '' || keyPath === '') throw new ServingError('INVALID_INPUT', 'HTTPS needs both --tls-cert and --tls-key');
  const read = (flag: string, path: string) => {
    try {
      return readFileSync(path);
    } catch (e) {
      throw new ServingError('INVALID_INPUT', `${flag} ${path} cannot be read: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
  };
  const tls = { cert: read('--tls-cert', certPath), key: read('--tls-key', keyPath) };
  try {
    createSecureContext(tls);
  } catch (e) {
    // OpenSSL's reason (e.g. "key values mismatch"), never the files' contents.
    throw new ServingError('INVALID_INPUT', `--tls-cert ${certPath} and --tls-key ${keyPath} are not a usable PEM certificate and key: ${(e as Error).message.split('\n')[0]}`);
  }
  return tls;
}

/** Bytes of an unwanted request body read and dropped so that the client gets its answer. */
export function drainBytes(bodyLimitBytes: number): number {
  return Math.max(256 * 1024 * 1024, 4 * bodyLimitBytes);
}

export function createHttpServer(opts: HttpOptions): FastifyInstance {
  const t = opts.timeouts ?? { requestMs: 0, headersMs: 0, keepAliveMs: 5000 };
  // Node requires headersTimeout <= requestTimeout, and checks both every connectionsCheckingInterval
  // (30 s by default, which would let a slow client overstay by that much).
  const headersMs = t.requestMs > 0 && (t.headersMs === 0 || t.headersMs > t.requestMs) ? t.requestMs : t.headersMs;
  const shortest = Math.min(...[t.requestMs, headersMs].filter((ms) => ms > 0), 4000);
  const answered = answerLog(opts.logger ?? silentLogger);
  const serverOptions = { requestTimeout: t.requestMs, headersTimeout: headersMs, connectionsCheckingInterval: Math.max(50, Math.floor(shortest / 4)) };
  const app = Fastify({
    bodyLimit: opts.bodyLimitBytes, logger: false, return503OnClosing: true, forceCloseConnections: true,
    // The client's x-request-id when sane, else a fresh one (request-id.ts); fastify's own logger stays off (request-log.ts logs).
    genReqId: requestIdOf,
    requestTimeout: t.requestMs, keepAliveTimeout: t.keepAliveMs,
    // No socket inactivity timeout: a socket is rightly silent while a long query or deploy runs.
    connectionTimeout: 0,
    ...(opts.tls ? { https: { ...serverOptions, ...opts.tls } } : { http: serverOptions }),
    clientErrorHandler: answerClientError,
    // Errors fastify raises before routing (a URL that does not decode, a bad header) get our shape too.
    frameworkErrors: (err: FastifyError, req: FastifyRequest, reply: FastifyReply) => {
      const code = fastifyCode(err) === 'INTERNAL' ? 'INVALID_INPUT' : fastifyCode(err);
      // No hooks run for these answers: the request id and the log record are added here.
      answered(req, reply.code(HTTP_STATUS[code]), JSON.stringify({ error: code, cause: err.message }));
      return sendError(reply, code, err.message);
    },
    // An HTTPS server is an http.Server to everything here, so both are typed as the default instance.
  } as FastifyHttpOptions<Server>);

  // A client that sends its requests and then half-closes (FIN) still gets its answers.
  (app.server as Server & { httpAllowHalfOpen: boolean }).httpAllowHalfOpen = true;
  // CONNECT is not routed by the server: answer it instead of dropping the connection.
  app.server.on('connect', (_req: IncomingMessage, socket: Socket) => {
    const body = JSON.stringify({ error: 'ROUTE_NOT_FOUND', cause: 'CONNECT is not supported: this is not a proxy' });
    socket.end(`HTTP/1.1 405 Method Not Allowed\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
  });

  // The last response of each socket, so a client error answers only between responses. A plain
  // property rather than a map with a close listener: this runs for every request. A finished
  // response left there is ignored (writableEnded), and the next request replaces it.
  app.server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    (req.socket as TrackedSocket)[LAST_RESPONSE] = res;
  });

  traceRequests(app, opts.tracing);
  logRequests(app, answered);
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', (_req, payload, done) => readJson(payload as IncomingMessage, opts.bodyLimitBytes, done));
  const drainLimit = drainBytes(opts.bodyLimitBytes);
  // A body still arriving (an early answer: 413, 401) is read and dropped first (see above). A body
  // already read costs nothing here: no promise per answer.
  app.addHook('onSend', (req, reply, payload, done) => {
    if (req.raw.complete || req.raw.readableEnded) return done(null, payload);
    void discardRest(req.raw, drainLimit).then((drained) => {
      if (!drained && !reply.raw.headersSent) reply.header('connection', 'close');
      done(null, payload);
    });
  });
  app.setErrorHandler((err: FastifyError | ServingError, req, reply) => {
    if (err instanceof ServingError) return sendError(reply, err.code, err.message);
    const code = fastifyCode(err);
    if (code === 'INTERNAL') opts.logger?.error({ reqId: req.id, ...errorFields(err, true) }, 'internal error');
    return sendError(reply, code, code === 'INTERNAL' ? 'internal error' : err.message);
  });
  app.setNotFoundHandler((req, reply) => sendError(reply, 'ROUTE_NOT_FOUND', `no route for ${req.method} ${req.url.slice(0, 200)}`));
  return app;
}

/**
 * Puts `handler` in front of fastify on `app`'s server: it answers a request and returns true, or
 * returns false, untouched, and fastify routes it (fast-predict.ts). Listeners that only watch
 * requests (the drain, the client-error tracking) still see every one.
 */
export function preRoute(app: FastifyInstance, handler: (req: IncomingMessage, res: ServerResponse) => boolean): void {
  const [routed] = app.server.listeners('request') as Array<(req: IncomingMessage, res: ServerResponse) => void>;
  if (!routed) throw new Error('preRoute: the server has no request handler yet');
  app.server.removeListener('request', routed);
  app.server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    if (!handler(req, res)) routed(req, res);
  });
}

const LAST_RESPONSE = Symbol('last response');
type TrackedSocket = Socket & { [LAST_RESPONSE]?: ServerResponse };

/** A query input may nest MAX_JSON_DEPTH levels; the body around it adds two (input_batch). */
const BODY_DEPTH = MAX_JSON_DEPTH + 2;

/** Cheap pre-check: a body with fewer brackets than the limit cannot nest that deep. */
function mayNestDeeper(text: string, limit: number): boolean {
  let n = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if ((c === 91 || c === 123) && ++n > limit) return true;
  }
  return false;
}

/** Reads a body as bytes, stopping at the limit (the rest is dropped by the onSend hook before the 413 goes out). */
export function readBody(payload: IncomingMessage, limit: number, done: (err: Error | null, body?: Buffer) => void): void {
  const tooLarge = () => new ServingError('BODY_TOO_LARGE', `request body is larger than ${limit} bytes`);
  if (Number(payload.headers['content-length']) > limit) return done(tooLarge());
  const chunks: Buffer[] = [];
  let size = 0;
  const finish = (err: Error | null, body?: Buffer) => {
    payload.off('data', onData).off('end', onEnd).off('error', onError).off('close', onClose);
    done(err, body);
  };
  const onData = (chunk: Buffer) => {
    size += chunk.length;
    if (size > limit) finish(tooLarge());
    else chunks.push(chunk);
  };
  const onEnd = () => finish(null, Buffer.concat(chunks, size));
  const onError = (e: Error) => finish(new ServingError('INVALID_INPUT', `the request body was cut off: ${e.message}`));
  const onClose = () => onError(new Error('connection closed'));
  payload.on('data', onData).on('end', onEnd).on('error', onError).on('close', onClose);
  payload.resume();
}

/** Reads a JSON body within the limit, and refuses one nested deeper than BODY_DEPTH. */
function readJson(payload: IncomingMessage, limit: number, done: (err: Error | null, body?: unknown) => void): void {
  readBody(payload, limit, (err, bytes) => {
    if (err) return done(err);
    const text = bytes!.toString('utf8');
    if (text.length === 0) return done(null, undefined);
    let body: unknown;
    try {
      body = parseJsonText(text);
    } catch (e) {
      return done(e as ServingError);
    }
    done(null, body);
  });
}

/**
 * A request body's JSON, refused (MALFORMED_JSON) when it does not parse and (INVALID_INPUT) when
 * it nests deeper than BODY_DEPTH: one depth limit for every field of every endpoint, as deeper
 * bodies would overflow the stack of whatever walks them later (validation, JSON.stringify, a
 * policy's params). An empty body is undefined.
 */
export function parseJsonText(text: string): unknown {
  if (text.length === 0) return undefined;
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch (e) {
    throw new ServingError('MALFORMED_JSON', `request body is not valid JSON: ${(e as Error).message}`);
  }
  if (mayNestDeeper(text, BODY_DEPTH)) checkDepth(body, 'request body', BODY_DEPTH);
  return body;
}

/** Reads and drops what is left of a request body; false when more than `maxBytes` remain (or were announced). */
function discardRest(req: IncomingMessage, maxBytes: number): Promise<boolean> {
  if (req.destroyed) return Promise.resolve(false);
  if (Number(req.headers['content-length']) > maxBytes) return Promise.resolve(false);
  return new Promise((resolve) => {
    let dropped = 0;
    const finish = (drained: boolean) => {
      req.off('data', onData).off('end', onEnd).off('close', onClose).off('error', onClose);
      resolve(drained);
    };
    const onData = (chunk: Buffer) => {
      dropped += chunk.length;
      if (dropped > maxBytes) finish(false);
    };
    const onEnd = () => finish(true);
    const onClose = () => finish(req.complete);
    req.on('data', onData).on('end', onEnd).on('close', onClose).on('error', onClose);
    req.resume();
  });
}

/**
 * Node's `clientError`: a request that timed out (408) or cannot be parsed (400). The answer is
 * written only when no response is under way on the socket, then the connection is closed.
 */
function answerClientError(err: NodeJS.ErrnoException, socket: Socket): void {
  if (err.code === 'ECONNRESET' || socket.destroyed) return;
  const res = (socket as TrackedSocket)[LAST_RESPONSE];
  // A FIN in the middle of a request (HPE_INVALID_EOF_STATE) says nothing about the requests
  // before it: they are answered first.
  const eof = err.code === 'HPE_INVALID_EOF_STATE';
  if (res && !res.writableEnded && !socket.destroyed && (eof || res.req.complete)) {
    // Pipelined requests before the bad one are still being answered (in order): answer the error
    // after the last of them, which is the one the socket saw last.
    res.once('close', () => answerClientError(err, socket));
    return;
  }
  if (socket.writable) {
    const [code, cause]: [ErrorCode, string] = err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
      ? ['REQUEST_TIMEOUT', 'the request did not arrive in time (headers or body too slow); the connection is closed']
      : err.code === 'HPE_HEADER_OVERFLOW'
        ? ['INVALID_INPUT', 'the request headers are too large']
        : ['INVALID_INPUT', `the request is not valid HTTP/1.1 (${err.code ?? 'parse error'})`];
    const body = JSON.stringify({ error: code, cause });
    const status = HTTP_STATUS[code];
    const reason = status === 408 ? 'Request Timeout' : 'Bad Request';
    socket.end(`HTTP/1.1 ${status} ${reason}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
    // A client that neither reads nor closes is cut off after a grace period.
    setTimeout(() => socket.destroy(), 2000).unref();
    return;
  }
  socket.destroy();
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
