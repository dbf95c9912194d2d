/**
 * KServe V2 / Open Inference Protocol over REST, on the query port (docs/v2-protocol.md).
 *
 *   GET  /v2                                   server metadata
 *   GET  /v2/health/live, /v2/health/ready     200 while the server serves
 *   GET  /v2/models/{m}[/versions/{v}]         model metadata
 *   GET  /v2/models/{m}[/versions/{v}]/ready   200 {name, ready: true}; 503 when no replica runs
 *   POST /v2/models/{m}[/versions/{v}]/infer   inference (JSON, or JSON + binary tensor data)
 *
 * `{m}` names an application first, else a model. Through an application, inference has its
 * SLO, default output and selection policy; `/versions/{v}` pins the version of its model as the
 * Clipper API's `version` does. On a model directly, it runs on the current (or pinned) version
 * within the model SLO (`--model-slo-ms`), and a failure is an error, as there is no default
 * output. What names mean, readiness, metadata and inference: v2-service.ts (shared with the gRPC
 * transport); tensor ↔ input mapping: v2-inputs.ts.
 *
 * Everything under /v2 is its own fastify context: its body parser keeps the raw body (JSON or
 * JSON + binary tail, under any content type, within the server's body limit) and its errors are
 * V2's `{"error": "..."}` with the V2 status (400, 404, 413, 503, ...).
 */
import type { IncomingMessage } from 'node:http';
import type { FastifyError, FastifyInstance, FastifyReply } from 'fastify';
import { isServingError } from '../errors.ts';
import type { InferTrace, QueryProcessor } from '../query/query-processor.ts';
import { traceOf } from './clipper-answers.ts';
import { MAX_JSON_DEPTH, checkDepth } from '../registry/input-types.ts';
import type { RegistryService } from '../registry/registry-service.ts';
import { encodeInferResponse, HEADER_LENGTH_HEADER, splitBody } from '../v2/binary.ts';
import { V2Error, badRequest, v2Status } from '../v2/errors.ts';
import { parseInferRequest, parseJsonBody } from '../v2/request.ts';
import { createV2Service } from './v2-service.ts';
import { readBody } from './server-common.ts';

export { V2_SERVER_NAME } from './v2-service.ts';
export const V2_EXTENSIONS = ['binary_tensor_data'] as const;

/** The route URLs (as fastify names them) that name a model or application in `:m`: app keys guard them. */
export const V2_MODEL_ROUTES: readonly string[] = ['', '/ready', '/infer'].flatMap((s) => [`/v2/models/:m${s}`, `/v2/models/:m/versions/:v${s}`]);

export interface V2Options {
  bodyLimitBytes: number;
  /** Most inputs (rows) one request may carry, as the Clipper API's input_batch. */
  maxInputs: number;
  log?: (msg: string) => void;
}

/** Registers the /v2 routes on the query API. */
export function registerV2(app: FastifyInstance, processor: QueryProcessor, registry: RegistryService, opts: V2Options): void {
  const service = createV2Service(processor, registry, { maxInputs: opts.maxInputs });
  void app.register(async (v2) => {
    v2.removeAllContentTypeParsers();
    v2.addContentTypeParser('*', (req, payload, done) => readBody(payload as IncomingMessage, opts.bodyLimitBytes, done));
    v2.setErrorHandler((err: FastifyError | Error, _req, reply) => sendV2Error(reply, err, opts.log));
    v2.setNotFoundHandler((req, reply) => sendV2Error(reply, new V2Error(404, `no V2 route for ${req.method} ${req.url.slice(0, 200)}`)));

    v2.get('/', async () => service.serverMetadata(V2_EXTENSIONS));
    v2.get('/health/live', async () => ({ live: true }));
    v2.get('/health/ready', async () => ({ ready: true }));

    type P = { Params: { m: string; v?: string } };
    v2.get<P>('/models/:m', async (req) => service.metadata(req.params.m, undefined));
    v2.get<P>('/models/:m/versions/:v', async (req) => service.metadata(req.params.m, req.params.v));
    v2.get<P>('/models/:m/ready', async (req) => ready(req.params.m, undefined));
    v2.get<P>('/models/:m/versions/:v/ready', async (req) => ready(req.params.m, req.params.v));
    v2.post<P>('/models/:m/infer', async (req, reply) => infer(req.body, req.headers[HEADER_LENGTH_HEADER], reply, req.params.m, undefined, traceOf(req)));
    v2.post<P>('/models/:m/versions/:v/infer', async (req, reply) => infer(req.body, req.headers[HEADER_LENGTH_HEADER], reply, req.params.m, req.params.v, traceOf(req)));
  }, { prefix: '/v2' });

  function ready(name: string, version: string | undefined): { name: string; ready: boolean } {
    const r = service.readiness(name, version);
    if (!r.ready) throw new V2Error(503, r.reason ?? `'${name}' is not ready`);
    return { name, ready: true };
  }

  async function infer(body: unknown, headerLength: string | string[] | undefined, reply: FastifyReply, name: string, version: string | undefined, trace: InferTrace | undefined): Promise<FastifyReply> {
    if (!Buffer.isBuffer(body) || body.length === 0) throw badRequest('the inference request has no body');
    const { json, binary } = splitBody(body, headerLength);
    const parsed = parseJsonBody(json);
    // parseInferRequest walks nested data recursively: bound the nesting first (iteratively).
    checkDepth(parsed, 'request body', MAX_JSON_DEPTH + 4);
    const request = parseInferRequest(parsed, binary);
    const resp = await service.infer(name, version, request, trace);
    const enc = encodeInferResponse(resp, request);
    if (enc.headerLength !== undefined) reply.header('inference-header-content-length', String(enc.headerLength));
    return reply.type(enc.contentType).send(enc.body);
  }
}

function sendV2Error(reply: FastifyReply, err: unknown, log?: (msg: string) => void): FastifyReply {
  let status: number;
  let message: string;
  if (err instanceof V2Error || isServingError(err)) {
    status = v2Status(err);
    message = (err as Error).message;
  } else {
    const fe = err as FastifyError;
    if (fe.code === 'FST_ERR_CTP_BODY_TOO_LARGE') status = 413;
    else if (typeof fe.statusCode === 'number' && fe.statusCode >= 400 && fe.statusCode < 500) status = fe.statusCode;
    else status = 500;
    if (status === 500) log?.(`internal error (v2): ${fe?.stack ?? String(err)}`);
    message = status === 500 ? 'internal error' : (fe?.message ?? 'bad request');
  }
  if (status === 503) reply.header('retry-after', '1');
  return reply.code(status).type('application/json').send({ error: message });
}

