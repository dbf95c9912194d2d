/**
 * KServe V2 / Open Inference Protocol over REST, on the query port (docs/v2-protocol.md).
 *
 *   GET  /v2                                   server metadata
 *   GET  /v2/health/live, /v2/health/ready     200 while the server serves
 *   GET  /v2/models/{m}[/versions/{v}]         model metadata
 *   GET  /v2/models/{m}[/versions/{v}]/ready   200 {name, ready: true}; 503 when no replica runs
 *   POST /v2/models/{m}[/versions/{v}]/infer   inference (JSON, or JSON + binary tensor data)
 *
 * `{m}` names an application first, else a model. Inference goes through an application (its
 * SLO, default output and selection policy, processor.predict); `/versions/{v}` pins the version
 * of its model as the Clipper API's `version` does. A model that is not an application answers
 * metadata and readiness, but inference on it is a 400 that names the applications it is
 * linked to: models are queried through an application (which also keeps application keys
 * meaningful). Tensor ↔ input mapping: v2-inputs.ts.
 *
 * Everything under /v2 is its own fastify context: its body parser keeps the raw body (JSON or
 * JSON + binary tail, under any content type, within the server's body limit) and its errors are
 * V2's `{"error": "..."}` with the V2 status (400, 404, 413, 503, ...).
 */
import { readFileSync } from 'node:fs';
import type { IncomingMessage } from 'node:http';
import type { FastifyError, FastifyInstance, FastifyReply } from 'fastify';
import { ServingError, isServingError } from '../errors.ts';
import type { QueryProcessor } from '../query/query-processor.ts';
import { MAX_JSON_DEPTH, checkDepth } from '../registry/input-types.ts';
import type { RegistryService } from '../registry/registry-service.ts';
import type { Application } from '../registry/types.ts';
import { encodeInferResponse, HEADER_LENGTH_HEADER, splitBody } from '../v2/binary.ts';
import { V2Error, badRequest, v2Status } from '../v2/errors.ts';
import {
  buildInferResponse, modelMetadata, parseInferRequest, parseJsonBody, serverMetadata, unknownModel,
  type ModelMetadata,
} from '../v2/request.ts';
import { HTTP_STATUS } from './status.ts';
import { inputMetadata, outputsToTensor, tensorsToInputs } from './v2-inputs.ts';

export const V2_SERVER_NAME = 'clipper-ts';
export const V2_EXTENSIONS = ['binary_tensor_data'] as const;

/** The route URLs (as fastify names them) that name a model or application in `:m`: app keys guard them. */
export const V2_MODEL_ROUTES: readonly string[] = ['', '/ready', '/infer'].flatMap((s) => [`/v2/models/:m${s}`, `/v2/models/:m/versions/:v${s}`]);

export interface V2Options {
  bodyLimitBytes: number;
  /** Most inputs (rows) one request may carry, as the Clipper API's input_batch. */
  maxInputs: number;
  log?: (msg: string) => void;
}

function packageVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version?: unknown };
    return typeof pkg.version === 'string' ? pkg.version : '0.0.0';
  } catch {
    return '0.0.0';
  }
}

const SERVER_VERSION = packageVersion();

/** Registers the /v2 routes on the query API. */
export function registerV2(app: FastifyInstance, processor: QueryProcessor, registry: RegistryService, opts: V2Options): void {
  void app.register(async (v2) => {
    v2.removeAllContentTypeParsers();
    v2.addContentTypeParser('*', (req, payload, done) => readRaw(payload as IncomingMessage, opts.bodyLimitBytes, done));
    v2.setErrorHandler((err: FastifyError | Error, _req, reply) => sendV2Error(reply, err, opts.log));
    v2.setNotFoundHandler((req, reply) => sendV2Error(reply, new V2Error(404, `no V2 route for ${req.method} ${req.url.slice(0, 200)}`)));

    v2.get('/', async () => serverMetadata(V2_SERVER_NAME, SERVER_VERSION, V2_EXTENSIONS));
    v2.get('/health/live', async () => ({ live: true }));
    v2.get('/health/ready', async () => ({ ready: true }));

    type P = { Params: { m: string; v?: string } };
    v2.get<P>('/models/:m', async (req) => metadata(req.params.m, undefined));
    v2.get<P>('/models/:m/versions/:v', async (req) => metadata(req.params.m, req.params.v));
    v2.get<P>('/models/:m/ready', async (req) => ready(req.params.m, undefined));
    v2.get<P>('/models/:m/versions/:v/ready', async (req) => ready(req.params.m, req.params.v));
    v2.post<P>('/models/:m/infer', async (req, reply) => infer(req.body, req.headers[HEADER_LENGTH_HEADER], reply, req.params.m, undefined));
    v2.post<P>('/models/:m/versions/:v/infer', async (req, reply) => infer(req.body, req.headers[HEADER_LENGTH_HEADER], reply, req.params.m, req.params.v));
  }, { prefix: '/v2' });

  /** The model whose versions an application's `/versions/{v}` names: its first linked model. */
  function appModel(a: Application): string | undefined {
    return registry.linkedModels(a.name)[0];
  }

  /** The version a target resolves to (checking a pinned one exists); undefined when there is none. */
  function resolveVersion(name: string, version: string | undefined): { app?: Application; model?: string; version?: string } {
    const a = registry.getApp(name);
    const model = a ? appModel(a) : registry.hasModel(name) ? name : undefined;
    if (!a && model === undefined) throw unknownModel(name, version);
    if (version !== undefined) {
      if (model === undefined || registry.getVersion(model, version) === undefined) throw unknownModel(name, version);
      return { app: a, model, version };
    }
    return { app: a, model, version: model === undefined ? undefined : registry.currentVersion(model) };
  }

  function metadata(name: string, version: string | undefined): ModelMetadata {
    const r = resolveVersion(name, version);
    const versions = r.model === undefined ? [] : registry.versionsOf(r.model).map((v) => v.version).sort();
    if (r.app) {
      return modelMetadata({ name, versions, platform: 'clipper-application', inputs: [inputMetadata(r.app.inputType)] });
    }
    const v = registry.getVersion(r.model!, r.version ?? versions[versions.length - 1]!);
    return modelMetadata({ name, versions, platform: v ? `clipper-${v.runtime}` : 'clipper', inputs: v ? [inputMetadata(v.inputType)] : [] });
  }

  function ready(name: string, version: string | undefined): { name: string; ready: boolean } {
    const r = resolveVersion(name, version);
    if (r.model === undefined || r.version === undefined) throw new V2Error(503, `'${name}' is not ready: no model is linked to application ${name}`);
    const key = `${r.model}:${r.version}`;
    const replicas = processor.queueStats().find((q) => q.model === key)?.replicas ?? 0;
    if (replicas === 0) throw new V2Error(503, `'${name}' is not ready: no replica of ${key} is running`);
    return { name, ready: true };
  }

  async function infer(body: unknown, headerLength: string | string[] | undefined, reply: FastifyReply, name: string, version: string | undefined): Promise<FastifyReply> {
    if (!Buffer.isBuffer(body) || body.length === 0) throw badRequest('the inference request has no body');
    const { json, binary } = splitBody(body, headerLength);
    const parsed = parseJsonBody(json);
    // parseInferRequest walks nested data recursively: bound the nesting first (iteratively).
    checkDepth(parsed, 'request body', MAX_JSON_DEPTH + 4);
    const request = parseInferRequest(parsed, binary);

    const a = registry.getApp(name);
    if (!a) {
      if (!registry.hasModel(name)) throw unknownModel(name, version);
      const apps = registry.listApps().filter((x) => registry.linkedModels(x.name).includes(name)).map((x) => x.name);
      throw badRequest(`'${name}' is a model, not an application: V2 inference goes through an application (its latency objective, default output and policy); `
        + (apps.length ? `send to /v2/models/{app}/infer with one of ${apps.join(', ')}` : 'link it to an application and send to /v2/models/{app}/infer'));
    }
    if (version !== undefined) resolveVersion(name, version);
    if (request.outputs !== undefined && request.outputs.length > 1) {
      throw badRequest(`application '${name}' has one output; the request asks for ${request.outputs.length}`);
    }
    const outputName = request.outputs?.[0]?.name ?? 'output';

    const inputs = tensorsToInputs(request.inputs, name, a.inputType, request.parameters?.content_type === 'pd', opts.maxInputs);
    const answers = await processor.predict({ app: name, inputs, version });

    const outputs: unknown[] = [];
    const defaults: number[] = [];
    let explanation: string | undefined;
    const used = new Set<string>();
    for (let i = 0; i < answers.length; i++) {
      const p = answers[i]!;
      if ('error' in p) {
        const status = HTTP_STATUS[p.error as keyof typeof HTTP_STATUS] ?? 400;
        throw new V2Error(status, `input ${i}: ${p.cause ?? p.error}`);
      }
      outputs.push(p.output);
      for (const m of p.models) used.add(m);
      if (p.default) {
        defaults.push(i);
        explanation ??= p.default_explanation;
      }
    }
    const only = used.size === 1 ? [...used][0]! : undefined;
    const modelVersion = version ?? (only === undefined ? undefined : only.slice(only.indexOf(':') + 1));
    const parameters = defaults.length ? { default: defaults, default_explanation: explanation ?? '' } : undefined;
    const resp = buildInferResponse({ modelName: name, modelVersion, id: request.id, parameters, outputs: [outputsToTensor(outputName, outputs)] });
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

/** Reads a body as bytes, stopping at the limit (the rest is dropped by server-common's onSend hook before the 413 goes out). */
function readRaw(payload: IncomingMessage, limit: number, done: (err: Error | null, body?: unknown) => void): void {
  const tooLarge = () => new ServingError('BODY_TOO_LARGE', `request body is larger than ${limit} bytes`);
  if (Number(payload.headers['content-length']) > limit) return done(tooLarge());
  const chunks: Buffer[] = [];
  let size = 0;
  const finish = (err: Error | null, body?: unknown) => {
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
