/**
 * KServe V2 / Open Inference Protocol over gRPC: `inference.GRPCInferenceService` (the service
 * definition is ../v2/grpc_service.proto) on `--grpc-port`, with @grpc/grpc-js.
 *
 * It is a thin transport over the same V2 operations as REST (../http/v2-service.ts): a model
 * name is an application first, else a model; `model_version` pins a version as REST's
 * `/versions/{v}` does; inference goes through the application's SLO, default output and policy.
 *
 * - Tensors come typed (`contents`) or raw (`raw_input_contents`, one entry per input). A request
 *   with raw inputs is answered with `raw_output_contents`; otherwise outputs are typed.
 * - Status codes: NOT_FOUND (unknown model or version), INVALID_ARGUMENT (bad tensors or request),
 *   UNAVAILABLE (overloaded, not ready, shutting down), DEADLINE_EXCEEDED (the call's deadline or
 *   the processor's), RESOURCE_EXHAUSTED (a message over the body limit: grpc-js refuses it),
 *   UNAUTHENTICATED (an application with keys, called without a valid one).
 * - Application keys: `authorization: Bearer <key>` or `x-api-key: <key>` metadata, checked on
 *   ModelReady, ModelMetadata and ModelInfer for an application that has keys, as on REST's
 *   `/v2/models/{app}/...` routes.
 */
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { fileURLToPath } from 'node:url';
import { createV2Service, type V2Service } from '../http/v2-service.ts';
import type { QueryProcessor } from '../query/query-processor.ts';
import type { RegistryService } from '../registry/registry-service.ts';
import { keyRefusal } from '../security/key-check.ts';
import { startGrpcTrace, type Tracing } from '../observability/tracing.ts';
import type { Logger } from '../observability/log.ts';
import { REQUEST_ID_HEADER, saneRequestId } from '../http/request-id.ts';
import { randomUUID } from 'node:crypto';
import type { AppKeys } from '../security/app-keys.ts';
import { contentsField, tensorFromContents, tensorToContents, type InferTensorContents } from '../v2/contents.ts';
import { DATATYPES, isDatatype } from '../v2/datatypes.ts';
import { GRPC_CODE, V2Error, badRequest, grpcCodeOf } from '../v2/errors.ts';
import type { InferRequest, InferResponse, RequestedOutput } from '../v2/request.ts';
import { checkShape, tensorFromBytes, tensorToBytes, type Parameters, type Tensor } from '../v2/tensor.ts';

export const PROTO_PATH = fileURLToPath(new URL('../v2/grpc_service.proto', import.meta.url));

/** How the messages reach the handlers: proto field names, 64-bit integers as decimal strings. */
export const LOADER_OPTIONS: protoLoader.Options = { keepCase: true, longs: String, enums: String, defaults: false, oneofs: true };

export interface GrpcServerOptions {
  processor: QueryProcessor;
  registry: RegistryService;
  keys: AppKeys;
  /** Largest message accepted; larger ones are refused with RESOURCE_EXHAUSTED. */
  maxMessageBytes: number;
  /** Most inputs (rows) one request may carry. */
  maxInputs: number;
  /** PEM certificate and key: TLS, as on the HTTP APIs. */
  tls?: { cert: Buffer; key: Buffer };
  log?: (msg: string) => void;
  /** Records of failed and refused calls (at debug: every refusal). */
  logger?: Logger;
  /** ModelInfer calls are traced (a `traceparent` in the call's metadata continues the caller's trace). */
  tracing?: Tracing;
}

// ----- wire shapes (as proto-loader gives and takes them) -----

interface WireParameter { bool_param?: boolean; int64_param?: string | number; string_param?: string; double_param?: number; uint64_param?: string | number }
type WireParameters = Record<string, WireParameter>;
interface WireInput { name?: string; datatype?: string; shape?: (string | number)[]; parameters?: WireParameters; contents?: InferTensorContents }
interface WireInferRequest {
  model_name?: string; model_version?: string; id?: string; parameters?: WireParameters;
  inputs?: WireInput[]; outputs?: { name?: string; parameters?: WireParameters }[]; raw_input_contents?: Buffer[];
}
interface WireOutput { name: string; datatype: string; shape: number[]; parameters?: WireParameters; contents?: unknown }
interface WireInferResponse {
  model_name: string; model_version?: string; id?: string; parameters?: WireParameters; outputs: WireOutput[]; raw_output_contents?: Buffer[];
}

function int64(v: string | number, where: string): number | bigint {
  const n = typeof v === 'number' ? v : Number(v);
  if (Number.isSafeInteger(n)) return n;
  if (typeof v === 'string' && /^-?\d+$/.test(v)) return BigInt(v);
  throw badRequest(`${where}: ${String(v)} is not an integer`);
}

function parametersFromWire(p: WireParameters | undefined, where: string): Parameters | undefined {
  if (p === undefined) return undefined;
  const entries = Object.entries(p);
  if (entries.length === 0) return undefined;
  const out: Parameters = {};
  for (const [k, v] of entries) {
    if (v.bool_param !== undefined) out[k] = v.bool_param;
    else if (v.string_param !== undefined) out[k] = v.string_param;
    else if (v.double_param !== undefined) out[k] = v.double_param;
    else if (v.int64_param !== undefined) out[k] = int64(v.int64_param, `${where} parameter '${k}'`);
    else if (v.uint64_param !== undefined) out[k] = int64(v.uint64_param, `${where} parameter '${k}'`);
    else throw badRequest(`${where}: parameter '${k}' has no value`);
  }
  return out;
}

function parametersToWire(p: Parameters | undefined): WireParameters | undefined {
  if (p === undefined) return undefined;
  const out: WireParameters = {};
  for (const [k, v] of Object.entries(p)) {
    if (typeof v === 'boolean') out[k] = { bool_param: v };
    else if (typeof v === 'string') out[k] = { string_param: v };
    else if (typeof v === 'bigint') out[k] = { int64_param: v.toString() };
    else if (typeof v === 'number') out[k] = Number.isSafeInteger(v) ? { int64_param: v } : { double_param: v };
    else out[k] = { string_param: JSON.stringify(v) ?? 'null' }; // lists and objects travel as their JSON text
  }
  return out;
}

/** A ModelInfer request as the transport-neutral InferRequest (typed or raw contents). */
export function inferRequestFromWire(w: WireInferRequest): InferRequest {
  const raw = w.raw_input_contents ?? [];
  const inputs = w.inputs ?? [];
  if (raw.length > 0 && raw.length !== inputs.length) {
    throw badRequest(`raw_input_contents has ${raw.length} entries but the request has ${inputs.length} inputs; send one per input, in order`);
  }
  const names = new Set<string>();
  const tensors: Tensor[] = inputs.map((i, n) => {
    const name = i.name ?? '';
    if (name === '') throw badRequest(`inputs[${n}]: name must be a non-empty string`);
    if (names.has(name)) throw badRequest(`input '${name}' appears twice`);
    names.add(name);
    if (!isDatatype(i.datatype)) {
      throw badRequest(`tensor '${name}': ${i.datatype ? `unknown datatype ${JSON.stringify(i.datatype)}` : 'no datatype'}; expected one of ${DATATYPES.join(', ')}`);
    }
    const shape = checkShape((i.shape ?? []).map((d) => Number(d)), name);
    const parameters = parametersFromWire(i.parameters, `input '${name}'`);
    if (raw.length > 0) {
      const field = contentsField(i.datatype);
      if (field !== null && (i.contents?.[field]?.length ?? 0) > 0) throw badRequest(`input '${name}': has both contents and raw_input_contents; send one or the other`);
      return tensorFromBytes(name, i.datatype, shape, raw[n]!, parameters);
    }
    return tensorFromContents(name, i.datatype, shape, i.contents ?? {}, parameters);
  });
  const req: InferRequest = { inputs: tensors };
  if (w.id) req.id = w.id;
  const parameters = parametersFromWire(w.parameters, 'request');
  if (parameters !== undefined) req.parameters = parameters;
  if (w.outputs !== undefined && w.outputs.length > 0) {
    const seen = new Set<string>();
    req.outputs = w.outputs.map((o, n): RequestedOutput => {
      const name = o.name ?? '';
      if (name === '') throw badRequest(`outputs[${n}]: name must be a non-empty string`);
      if (seen.has(name)) throw badRequest(`output '${name}' is requested twice`);
      seen.add(name);
      const op = parametersFromWire(o.parameters, `output '${name}'`);
      return op === undefined ? { name } : { name, parameters: op };
    });
  }
  return req;
}

/** Typed contents as protobufjs takes them: 64-bit integers as decimal strings. */
function contentsToWire(c: InferTensorContents): unknown {
  const out: Record<string, unknown> = { ...c };
  for (const f of ['int64_contents', 'uint64_contents'] as const) {
    if (c[f]) out[f] = c[f]!.map((v) => (typeof v === 'bigint' ? v.toString() : v));
  }
  return out;
}

/** A response as ModelInfer's answer: raw outputs when `raw` (or when an output has no typed field, FP16/BF16). */
export function inferResponseToWire(r: InferResponse, raw: boolean): WireInferResponse {
  const asRaw = raw || r.outputs.some((t) => contentsField(t.datatype) === null);
  const w: WireInferResponse = { model_name: r.model_name, outputs: [] };
  if (r.model_version !== undefined) w.model_version = r.model_version;
  if (r.id !== undefined) w.id = r.id;
  const params = parametersToWire(r.parameters);
  if (params !== undefined) w.parameters = params;
  for (const t of r.outputs) {
    const o: WireOutput = { name: t.name, datatype: t.datatype, shape: [...t.shape] };
    const p = parametersToWire(t.parameters);
    if (p !== undefined) o.parameters = p;
    if (!asRaw) o.contents = contentsToWire(tensorToContents(t));
    w.outputs.push(o);
  }
  if (asRaw) w.raw_output_contents = r.outputs.map((t) => tensorToBytes(t));
  return w;
}

class GrpcError extends Error {
  constructor(readonly code: number, message: string) {
    super(message);
  }
}

/** The key an application call presents: `authorization: Bearer <key>`, else `x-api-key`. */
function presentedKey(md: grpc.Metadata): string | undefined {
  const first = (k: string) => {
    const v = md.get(k)[0];
    return v === undefined ? undefined : String(v);
  };
  const auth = first('authorization')?.trim();
  if (auth !== undefined) {
    const [scheme, token, ...rest] = auth.split(/[ \t]+/);
    if (scheme?.toLowerCase() === 'bearer' && token && rest.length === 0) return token;
  }
  return first('x-api-key');
}

type Handler<Req, Res> = (req: Req, call: grpc.ServerUnaryCall<Req, Res>) => Res | Promise<Res>;

export class GrpcInferenceServer {
  private readonly server: grpc.Server;
  private readonly service: V2Service;
  private port = -1;
  private stopped: Promise<void> | undefined;

  constructor(private readonly opts: GrpcServerOptions) {
    // grpc-js writes its own errors to stderr (a refused bind as "E No address added ..."); this
    // server reports them itself, as one line (app.ts) or through `log`.
    grpc.setLogVerbosity(grpc.logVerbosity.NONE);
    this.service = createV2Service(opts.processor, opts.registry, { maxInputs: opts.maxInputs });
    const def = protoLoader.loadSync(PROTO_PATH, LOADER_OPTIONS);
    const pkg = grpc.loadPackageDefinition(def) as unknown as { inference: { GRPCInferenceService: grpc.ServiceClientConstructor } };
    this.server = new grpc.Server({
      'grpc.max_receive_message_length': opts.maxMessageBytes,
    });
    const s = this.service;
    this.server.addService(pkg.inference.GRPCInferenceService.service, {
      ServerLive: this.unary('ServerLive', () => ({ live: true })),
      // False from the moment a drain starts, for the calls that still reach a closing server.
      ServerReady: this.unary('ServerReady', () => ({ ready: this.stopped === undefined })),
      ServerMetadata: this.unary('ServerMetadata', () => s.serverMetadata([])),
      ModelReady: this.unary<{ name?: string; version?: string }, { ready: boolean }>('ModelReady', (req, call) => {
        const name = this.guard(req.name, call);
        return { ready: s.readiness(name, req.version || undefined).ready };
      }),
      ModelMetadata: this.unary<{ name?: string; version?: string }, unknown>('ModelMetadata', (req, call) => {
        const name = this.guard(req.name, call);
        const m = s.metadata(name, req.version || undefined);
        return { ...m, inputs: m.inputs ?? [], outputs: m.outputs ?? [] };
      }),
      ModelInfer: this.unary<WireInferRequest, WireInferResponse>('ModelInfer', async (req, call) => {
        const trace = startGrpcTrace(opts.tracing, 'ModelInfer', call.metadata);
        if (trace) {
          const md = new grpc.Metadata();
          md.set('traceparent', trace.traceparent());
          call.sendMetadata(md);
        }
        try {
          const name = this.guard(req.model_name, call);
          const request = inferRequestFromWire(req);
          const resp = await this.withinDeadline(call, s.infer(name, req.model_version || undefined, request, trace));
          trace?.end(GRPC_CODE.OK);
          return inferResponseToWire(resp, (req.raw_input_contents?.length ?? 0) > 0);
        } catch (e) {
          trace?.end(e instanceof GrpcError ? e.code : grpcCodeOf(e), e);
          throw e;
        }
      }),
    });
  }

  /** The bound port (after start). */
  get boundPort(): number {
    return this.port;
  }

  /** Binds host:port (0 = a free port). A refused bind rejects with the OS's code (EADDRINUSE, ...) when grpc-js names it. */
  async start(host: string, port: number): Promise<number> {
    const creds = this.opts.tls
      ? grpc.ServerCredentials.createSsl(null, [{ cert_chain: this.opts.tls.cert, private_key: this.opts.tls.key }], false)
      : grpc.ServerCredentials.createInsecure();
    const address = `${host.includes(':') ? `[${host}]` : host}:${port}`;
    this.port = await new Promise<number>((resolve, reject) => {
      this.server.bindAsync(address, creds, (err, bound) => {
        if (!err) return resolve(bound);
        const code = /\b(EADDRINUSE|EACCES|EADDRNOTAVAIL|ENOTFOUND)\b/.exec(err.message)?.[1];
        reject(Object.assign(new Error(err.message), code ? { code } : {}));
      });
    });
    return this.port;
  }

  /**
   * Stops taking calls and lets the ones in flight finish, for at most `graceMs`; then cuts what
   * is left. Resolves when the port is released. Safe to call more than once.
   */
  close(graceMs = 0): Promise<void> {
    this.stopped ??= new Promise<void>((resolve) => {
      const timer = setTimeout(() => this.server.forceShutdown(), Math.max(0, graceMs));
      this.server.tryShutdown(() => {
        clearTimeout(timer);
        resolve();
      });
      if (graceMs <= 0) this.server.forceShutdown();
    });
    return this.stopped;
  }

  /** The name, after checking its key (security/key-check.ts; UNAUTHENTICATED when one is needed and none valid came). */
  private guard(name: string | undefined, call: grpc.ServerUnaryCall<unknown, unknown>): string {
    if (!name) throw new V2Error(400, 'the request names no model');
    const cause = keyRefusal(this.opts.keys, this.opts.registry, name, presentedKey(call.metadata), 'send metadata "authorization: Bearer <key>" or "x-api-key: <key>"');
    if (cause !== undefined) throw new GrpcError(GRPC_CODE.UNAUTHENTICATED, cause);
    return name;
  }

  /** The answer, or DEADLINE_EXCEEDED when the call's deadline passes first. */
  private withinDeadline<T>(call: grpc.ServerUnaryCall<unknown, unknown>, work: Promise<T>): Promise<T> {
    const d = call.getDeadline();
    const at = d instanceof Date ? d.getTime() : Number(d);
    if (!Number.isFinite(at)) return work;
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new GrpcError(GRPC_CODE.DEADLINE_EXCEEDED, 'the call\'s deadline passed before the answer came')), Math.max(0, at - Date.now()));
    });
    work.catch(() => {}); // answered (or not) by the race below
    return Promise.race([work, late]).finally(() => clearTimeout(timer));
  }

  /**
   * A call's handler. Every call gets a request id — the client's `x-request-id` metadata when sane,
   * else a fresh one — returned in the trailing metadata and carried by the log record of a call
   * that fails (UNAVAILABLE, DEADLINE_EXCEEDED, INTERNAL at error; other refusals at debug), as the
   * HTTP APIs do (../http/request-log.ts).
   */
  private unary<Req, Res>(method: string, fn: Handler<Req, Res>): grpc.handleUnaryCall<Req, Res> {
    return (call, callback) => {
      const started = performance.now();
      const [given] = call.metadata.get(REQUEST_ID_HEADER);
      const id = saneRequestId(typeof given === 'string' ? given : undefined) ?? randomUUID();
      const trailer = new grpc.Metadata();
      trailer.set(REQUEST_ID_HEADER, id);
      let answer: Promise<Res>;
      try {
        answer = Promise.resolve(fn(call.request, call));
      } catch (e) {
        answer = Promise.reject(e);
      }
      answer.then((res) => callback(null, res, trailer), (e: unknown) => {
        const status = this.toStatus(e, id);
        this.logRefusal(method, id, status, started);
        callback({ ...status, metadata: trailer });
      });
    };
  }

  private logRefusal(method: string, reqId: string, status: Partial<grpc.StatusObject>, started: number): void {
    const logger = this.opts.logger;
    if (!logger) return;
    const serious = status.code === GRPC_CODE.UNAVAILABLE || status.code === GRPC_CODE.DEADLINE_EXCEEDED || status.code === GRPC_CODE.INTERNAL;
    if (!serious && !logger.isLevelEnabled('debug')) return;
    const fields = { reqId, method, status: status.code, error: grpc.status[status.code ?? GRPC_CODE.UNKNOWN], cause: status.details?.slice(0, 500), ms: Math.round((performance.now() - started) * 10) / 10 };
    if (serious) logger.error(fields, 'call failed');
    else logger.debug(fields, 'call refused');
  }

  private toStatus(e: unknown, reqId: string): Partial<grpc.StatusObject> {
    if (e instanceof GrpcError) return { code: e.code, details: e.message };
    const code = grpcCodeOf(e);
    if (code === GRPC_CODE.INTERNAL || code === GRPC_CODE.UNKNOWN) {
      this.opts.log?.(`internal error (gRPC, request ${reqId}): ${e instanceof Error ? e.stack ?? e.message : String(e)}`);
      return { code: GRPC_CODE.INTERNAL, details: 'internal error' };
    }
    return { code, details: e instanceof Error ? e.message : String(e) };
  }
}
