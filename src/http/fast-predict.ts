/**
 * `POST /{app}/predict` without fastify: the query path's hot route, straight on node:http. Routing,
 * the hook chain and the reply machinery cost more than a cached prediction itself, and this is
 * the route every application calls.
 *
 * It takes only a plain request — a named route, a declared body within the limit, the server not
 * draining, the application's key (if it has keys) valid, no tracing, and no answer logging below
 * debug — and answers exactly as the fastify route would: the same answers, errors, statuses and
 * `x-request-id`. Anything else (a refused key, a chunked or oversized body, a draining server, a
 * traced request) is left to fastify, before a byte of the body is read, so every edge case keeps
 * its one implementation there.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { isServingError, type ErrorCode } from '../errors.ts';
import type { Logger } from '../observability/log.ts';
import type { InferInputs, InferTarget, QueryProcessor } from '../query/query-processor.ts';
import type { InputType } from '../registry/input-types.ts';
import { numericInput } from './numeric-body.ts';
import type { AppKeys } from '../security/app-keys.ts';
import { keyRefusal } from '../security/key-check.ts';
import { predictRequest, writePredictAnswer } from './clipper-answers.ts';
import { parseJsonText } from './server-common.ts';
import { REQUEST_ID_HEADER, requestIdOf } from './request-id.ts';
import { HTTP_STATUS } from './status.ts';

const ROUTE = /^\/([a-z0-9][-a-z0-9]{0,61}[a-z0-9]|[a-z0-9])\/predict$/;
const JSON_TYPE = 'application/json; charset=utf-8';

export interface FastPredictOptions {
  processor: QueryProcessor;
  /** An application's input type (numeric bodies are read straight into their bytes), if it exists. */
  inputTypeOf(app: string): InputType | undefined;
  keys: AppKeys;
  bodyLimitBytes: number;
  /** Answers must be logged at trace level: leave them to fastify's request log. */
  logsAnswers: boolean;
  /** Requests are traced: leave them to fastify's trace hooks. */
  traced: boolean;
  logger?: Logger;
}

/** A request handler that answers and returns true, or returns false and leaves the request untouched. */
export type FastHandler = (req: IncomingMessage, res: ServerResponse) => boolean;

export function fastPredict(o: FastPredictOptions): FastHandler | undefined {
  if (o.traced || o.logsAnswers) return undefined;
  return (req, res) => {
    if (req.method !== 'POST') return false;
    const m = ROUTE.exec(req.url ?? '');
    if (!m) return false;
    const h = req.headers;
    const length = h['content-length'];
    if (length === undefined || h['transfer-encoding'] !== undefined || h.expect !== undefined || Number(length) > o.bodyLimitBytes) return false;
    // A draining server has stopped listening: its onRequest hook answers 503.
    if (!(req.socket as { server?: { listening?: boolean } }).server?.listening) return false;
    const app = m[1]!;
    if (o.keys.isProtected(app)) {
      const auth = h.authorization;
      const presented = typeof auth === 'string' && auth.startsWith('Bearer ') ? auth.slice(7) : (typeof h['x-api-key'] === 'string' ? h['x-api-key'] : undefined);
      if (keyRefusal(o.keys, undefined, app, presented, '') !== undefined) return false;
    }
    const r: Request = { app, id: requestIdOf(req), url: req.url!, started: performance.now() };
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    // A client that goes away mid-body: nothing to answer, and its error must not go unhandled.
    req.on('error', () => {});
    req.on('end', () => {
      // Parsed here, before anything waits: neither the body's bytes nor its text outlive the parse.
      const body = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
      chunks.length = 0;
      const text = body.toString('utf8');
      const type = o.inputTypeOf(app);
      const numeric = type === undefined ? undefined : numericInput(text, type);
      if (numeric) return void answer(o, r, { target: { app }, inputs: { encoded: [numeric] }, batch: false }, res);
      let parsed: ReturnType<typeof predictRequest>;
      try {
        parsed = predictRequest(app, parseJsonText(text));
      } catch (e) {
        return sendError(o, res, r, e);
      }
      void answer(o, r, { target: parsed.target, inputs: { values: parsed.values }, batch: parsed.batch }, res);
    });
    return true;
  };
}

interface Request { app: string; id: string; url: string; started: number }

interface Query { target: InferTarget; inputs: InferInputs; batch: boolean }

async function answer(o: FastPredictOptions, r: Request, q: Query, res: ServerResponse): Promise<void> {
  let text: string;
  try {
    const batch = q.batch;
    const answers = await o.processor.infer(q.target, q.inputs);
    text = writePredictAnswer(answers, batch);
  } catch (e) {
    return sendError(o, res, r, e);
  }
  res.writeHead(200, { 'content-type': JSON_TYPE, 'content-length': Buffer.byteLength(text), [REQUEST_ID_HEADER]: r.id });
  res.end(text);
}

/** The error answer and its log record, as request-log.ts writes them for fastify's answers. */
function sendError(o: FastPredictOptions, res: ServerResponse, r: Request, e: unknown): void {
  const code: ErrorCode = isServingError(e) ? e.code : 'INTERNAL';
  const cause = isServingError(e) ? e.message : 'internal error';
  const status = HTTP_STATUS[code];
  const fields = () => ({ reqId: r.id, method: 'POST', url: r.url, status, ms: Math.round((performance.now() - r.started) * 10) / 10, error: code, cause: cause.slice(0, 500) });
  if (code === 'INTERNAL') o.logger?.error({ reqId: r.id, err: String((e as Error)?.stack ?? e) }, 'internal error');
  if (status >= 500) o.logger?.error(fields(), 'request failed');
  else if (o.logger?.isLevelEnabled('debug')) o.logger.debug(fields(), 'request refused');
  const body = JSON.stringify({ error: code, cause });
  const headers: Record<string, string | number> = { 'content-type': JSON_TYPE, 'content-length': Buffer.byteLength(body), [REQUEST_ID_HEADER]: r.id };
  if (code === 'QUEUE_FULL' || code === 'OVERLOADED') headers['retry-after'] = '1';
  res.writeHead(status, headers);
  res.end(body);
}

