/**
 * OpenTelemetry traces of queries: one server span per request (HTTP or gRPC), continuing the
 * caller's W3C `traceparent` when it sends a valid one, and under it, for each input queued for a
 * model version:
 *
 *   http|grpc (server) ─┬─ queue      from the task's creation until its batch left the queue
 *                       └─ rpc        from the send until the batch came back (replica, batch size)
 *                           └─ container   the last `computeMs` before the answer (when reported)
 *
 * Spans go to an OTLP/HTTP collector through a BatchSpanProcessor; nothing is registered globally,
 * so several servers (tests) each have their own. Tracing off (no endpoint): `startRequest` returns
 * undefined, the transports add no hooks, and the query path costs one `if`.
 *
 * A task's trace (TaskTrace, reported by the version queue) moves through:
 *
 *   QUEUED ──sent──▶ IN_FLIGHT ──answered──▶ ANSWERED ──sent (a retry)──▶ IN_FLIGHT …
 *     │                                         (the retry's wait, from the answer to the
 *     │                                          new send, is a second `queue` span)
 *     └── request ends first ──▶ the `queue` span ends with the request, marked unsent
 *
 * An `rpc` span stays open after its request ended (its batch is still out) and ends when the batch
 * comes back. Calls out of order (answered while queued, sent twice) are ignored or close the open
 * span: tracing never throws into the query path. Times are clock ms (Clock.now), turned into epoch
 * time with an offset taken once per request, so the spans of one request keep their sub-ms order.
 */
// Types only: OpenTelemetry (~200 ms to load) is imported when tracing is on (Tracing.create).
import type { Context, Span, TextMapPropagator, Tracer } from '@opentelemetry/api';
import type { ExportResult } from '@opentelemetry/core';
import type { ReadableSpan, SpanExporter } from '@opentelemetry/sdk-trace-base';
import { systemClock, type Clock } from '../clock.ts';
import type { ResolvedConfig } from '../config.ts';
import type { TaskTrace } from '../query/task.ts';

export type TraceAttributes = Record<string, string | number | boolean>;
export type RequestKind = 'http' | 'grpc';

/** Inputs of one request that get their own spans; the rest are counted on the server span. */
export const MAX_TASK_SPANS = 100;

export interface TracingOptions {
  /** Where spans are POSTed (OTLP/HTTP JSON, e.g. http://collector:4318/v1/traces); '' = tracing off. */
  endpoint: string;
  serviceName?: string;
  /** Share of new traces recorded (0..1); a caller's sampled flag is followed either way. */
  sampleRatio?: number;
  /** The clock the query core reports task times with. */
  clock?: Clock;
  log?: (msg: string) => void;
  /** Longest wait before finished spans are exported (BatchSpanProcessor's scheduledDelayMillis). */
  exportDelayMs?: number;
  /** How long one export may take, retries included, before its spans are dropped (default 5 s). */
  exportTimeoutMs?: number;
  /** Instead of the OTLP exporter (tests). */
  exporter?: SpanExporter;
}

/** One request's trace: its server span and the spans of its queued inputs. */
export interface RequestTrace {
  /** A trace for one input queued for `model` (a version key), created now (or at `at`, clock ms). */
  task(model: string, at?: number): TaskTrace;
  /** The answer for `model` came from the prediction cache. */
  cacheHit(model: string): void;
  /**
   * Ends the server span (only the first call counts). `status`: the HTTP status or gRPC code;
   * undefined when no answer was sent (the client went away). HTTP ≥ 500 and gRPC server-side
   * codes mark the span as an error.
   */
  end(status: number | undefined, error?: unknown): void;
  /** The W3C `traceparent` of the server span: sent back to the caller. */
  traceparent(): string;
}

/** Reads one header or metadata value (HTTP headers, gRPC metadata). */
export type HeaderGetter = (name: string) => string | undefined;

type Api = typeof import('@opentelemetry/api');

/** What a Tracing exports through (the SDK's tracer provider). */
interface Exporting {
  api: Api;
  tracer: Tracer;
  propagator: TextMapPropagator;
  forceFlush(): Promise<void>;
  shutdown(): Promise<void>;
}

export class Tracing {
  /** Tracing off: every request gets undefined. */
  static readonly off = new Tracing(undefined);

  private closed: Promise<void> | undefined;

  private constructor(private readonly sdk: Exporting | undefined, private readonly clock: Clock = systemClock) {}

  /** Tracing that exports to `opts.endpoint` (or `opts.exporter`); Tracing.off without either. */
  static async create(opts: TracingOptions): Promise<Tracing> {
    if (opts.endpoint === '' && !opts.exporter) return Tracing.off;
    const [api, sdk, otlp, resources, semconv, core] = await Promise.all([
      import('@opentelemetry/api'), import('@opentelemetry/sdk-trace-base'), import('@opentelemetry/exporter-trace-otlp-http'),
      import('@opentelemetry/resources'), import('@opentelemetry/semantic-conventions'), import('@opentelemetry/core'),
    ]);
    const timeoutMs = opts.exportTimeoutMs ?? 5000;
    const exporter = opts.exporter ?? new otlp.OTLPTraceExporter({ url: opts.endpoint, timeoutMillis: timeoutMs });
    const ratio = Math.min(1, Math.max(0, opts.sampleRatio ?? 1));
    const provider = new sdk.BasicTracerProvider({
      resource: resources.resourceFromAttributes({ [semconv.ATTR_SERVICE_NAME]: opts.serviceName ?? 'clipper-ts' }),
      sampler: new sdk.ParentBasedSampler({ root: new sdk.TraceIdRatioBasedSampler(ratio) }),
      spanProcessors: [new sdk.BatchSpanProcessor(new ReportingExporter(exporter, opts.endpoint || 'the exporter', core.ExportResultCode.SUCCESS, opts.log), {
        scheduledDelayMillis: opts.exportDelayMs ?? 1000, exportTimeoutMillis: timeoutMs,
      })],
    });
    return new Tracing({
      api,
      tracer: provider.getTracer('clipper-ts'),
      propagator: new core.W3CTraceContextPropagator(),
      forceFlush: () => provider.forceFlush(),
      shutdown: () => provider.shutdown(),
    }, opts.clock);
  }

  get enabled(): boolean {
    return this.sdk !== undefined;
  }

  /**
   * Starts a request's server span named `route` (e.g. `POST /:app/predict`), the child of the
   * caller's span when `traceparent` is valid; otherwise (absent or malformed) the first span of a
   * new trace. Undefined when tracing is off.
   */
  startRequest(kind: RequestKind, route: string, traceparent: string | undefined, attributes: TraceAttributes = {}, tracestate?: string): RequestTrace | undefined {
    const sdk = this.sdk;
    if (!sdk) return undefined;
    const carrier: Record<string, string> = {};
    if (traceparent !== undefined) carrier.traceparent = traceparent;
    if (tracestate !== undefined) carrier.tracestate = tracestate;
    const root = sdk.api.ROOT_CONTEXT;
    const parent = traceparent === undefined ? root : sdk.propagator.extract(root, carrier, { get: (c, k) => c[k], keys: (c) => Object.keys(c) });
    return new ServerTrace(sdk.api, sdk.tracer, this.clock, kind, route, parent, attributes);
  }

  /** startRequest from a header or metadata reader (`traceparent`, `tracestate`). */
  startFrom(kind: RequestKind, route: string, header: HeaderGetter, attributes?: TraceAttributes): RequestTrace | undefined {
    if (!this.sdk) return undefined;
    return this.startRequest(kind, route, header('traceparent'), attributes, header('tracestate'));
  }

  /** Exports every finished span now (a failed export is logged, not thrown). */
  async flush(): Promise<void> {
    await this.sdk?.forceFlush().catch(() => {});
  }

  /** Flushes and stops exporting; waits at most `timeoutMs` for an unreachable collector. */
  shutdown(timeoutMs = 5000): Promise<void> {
    const sdk = this.sdk;
    if (!sdk) return Promise.resolve();
    this.closed ??= new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, timeoutMs);
      timer.unref();
      sdk.shutdown().catch(() => {}).finally(() => { clearTimeout(timer); resolve(); });
    });
    return this.closed;
  }
}

/** The Tracing the config asks for (off without an OTLP endpoint). */
export function tracingFromConfig(config: ResolvedConfig, log?: (msg: string) => void): Promise<Tracing> {
  if (config.otlpEndpoint === '') return Promise.resolve(Tracing.off);
  return Tracing.create({ endpoint: config.otlpEndpoint, serviceName: config.traceServiceName, sampleRatio: config.traceSampleRatio, log });
}

/** gRPC metadata as far as tracing reads it (grpc-js's Metadata). */
export interface MetadataLike {
  get(key: string): Array<string | Buffer>;
}

/**
 * A gRPC call's trace: the server span `inference.GRPCInferenceService/<method>` from the call's
 * `traceparent`/`tracestate` metadata. End it with the call's status code (0 = OK).
 */
export function startGrpcTrace(tracing: Tracing | undefined, method: string, metadata: MetadataLike, service = 'inference.GRPCInferenceService'): RequestTrace | undefined {
  if (!tracing?.enabled) return undefined;
  const value = (key: string) => {
    const v = metadata.get(key);
    return v.length === 0 ? undefined : v.map((x) => x.toString()).join(',');
  };
  return tracing.startFrom('grpc', `${service}/${method}`, value, { 'rpc.system': 'grpc', 'rpc.service': service, 'rpc.method': method });
}

/** gRPC codes that are the server's fault (OpenTelemetry's gRPC conventions): UNKNOWN, DEADLINE_EXCEEDED, UNIMPLEMENTED, INTERNAL, UNAVAILABLE, DATA_LOSS. */
const GRPC_SERVER_ERRORS = new Set([2, 4, 12, 13, 14, 15]);

const NO_TASK: TaskTrace = { sent() {}, answered() {} };

class ServerTrace implements RequestTrace {
  private readonly span: Span;
  private readonly context: Context;
  /** Clock ms → epoch ms for this request. */
  private readonly offset: number;
  private readonly tasks: TaskSpans[] = [];
  private untraced = 0;
  private ended = false;

  constructor(private readonly api: Api, private readonly tracer: Tracer, private readonly clock: Clock, private readonly kind: RequestKind, route: string, parent: Context, attributes: TraceAttributes) {
    const now = clock.now();
    this.offset = Date.now() - now;
    this.span = tracer.startSpan(route, { kind: api.SpanKind.SERVER, startTime: this.offset + now, attributes }, parent);
    this.context = api.trace.setSpan(parent, this.span);
  }

  task(model: string, at = this.clock.now()): TaskTrace {
    if (!this.span.isRecording()) return NO_TASK;
    if (this.tasks.length >= MAX_TASK_SPANS) {
      this.untraced++;
      return NO_TASK;
    }
    const t = new TaskSpans(this.api, this.tracer, this.context, this.offset, model, at);
    this.tasks.push(t);
    return t;
  }

  cacheHit(model: string): void {
    this.span.addEvent('cache_hit', { 'clipper.model': model }, this.offset + this.clock.now());
  }

  end(status: number | undefined, error?: unknown): void {
    if (this.ended) return;
    this.ended = true;
    const at = this.offset + this.clock.now();
    for (const t of this.tasks) t.requestEnded(at);
    this.tasks.length = 0; // a batch still out keeps its own TaskSpans
    if (this.untraced > 0) this.span.setAttribute('clipper.untraced_inputs', this.untraced);
    if (status !== undefined) this.span.setAttribute(this.kind === 'http' ? 'http.response.status_code' : 'rpc.grpc.status_code', status);
    const failed = status === undefined || (this.kind === 'http' ? status >= 500 : GRPC_SERVER_ERRORS.has(status));
    if (failed) {
      const message = error === undefined ? (status === undefined ? 'no answer was sent' : undefined) : error instanceof Error ? error.message : String(error);
      this.span.setStatus({ code: this.api.SpanStatusCode.ERROR, message });
    }
    this.span.end(at);
  }

  traceparent(): string {
    const c = this.span.spanContext();
    return `00-${c.traceId}-${c.spanId}-${(c.traceFlags & this.api.TraceFlags.SAMPLED ? 1 : 0).toString(16).padStart(2, '0')}`;
  }
}

/** The spans of one queued input (the state machine at the top of this file). */
class TaskSpans implements TaskTrace {
  private queue: Span | undefined;
  private rpc: Span | undefined;
  private rpcStart = 0;
  /** When the last batch came back (epoch ms), until the next send. */
  private answeredAt: number | undefined;
  private attempt = 0;

  constructor(private readonly api: Api, private readonly tracer: Tracer, private readonly parent: Context, private readonly offset: number, private readonly model: string, at: number) {
    this.queue = this.start('queue', offset + at, { 'clipper.model': model });
  }

  sent(at: number, replica: string, size: number): void {
    const t = this.offset + at;
    if (this.rpc) this.finishRpc(t, false); // sent again without an answer: the first send is lost
    this.attempt++;
    if (this.queue) {
      this.queue.end(t);
      this.queue = undefined;
    } else if (this.answeredAt !== undefined) {
      this.start('queue', this.answeredAt, { 'clipper.model': this.model, 'clipper.attempt': this.attempt }).end(t);
    }
    this.answeredAt = undefined;
    this.rpcStart = t;
    this.rpc = this.start('rpc', t, { 'clipper.model': this.model, 'clipper.replica': replica, 'clipper.batch_size': size, 'clipper.attempt': this.attempt }, this.api.SpanKind.CLIENT);
  }

  answered(at: number, ok: boolean, computeMs?: number): void {
    if (!this.rpc) return;
    const t = this.offset + at;
    if (computeMs !== undefined && computeMs >= 0) {
      // Inside its rpc span even when the container's clock says it took longer.
      const start = Math.max(this.rpcStart, t - computeMs);
      this.tracer.startSpan('container', { startTime: start, attributes: { 'clipper.model': this.model, 'clipper.compute_ms': computeMs } }, this.api.trace.setSpan(this.parent, this.rpc)).end(t);
    }
    this.finishRpc(t, ok);
    this.answeredAt = t;
  }

  /** The request was answered: an input still queued is not going to be waited for. */
  requestEnded(at: number): void {
    if (!this.queue) return;
    this.queue.setAttribute('clipper.unsent', true);
    this.queue.end(at);
    this.queue = undefined;
  }

  private finishRpc(at: number, ok: boolean): void {
    if (!ok) this.rpc!.setStatus({ code: this.api.SpanStatusCode.ERROR, message: 'the batch failed' });
    this.rpc!.end(at);
    this.rpc = undefined;
  }

  private start(name: string, at: number, attributes: TraceAttributes, kind = this.api.SpanKind.INTERNAL): Span {
    return this.tracer.startSpan(name, { kind, startTime: at, attributes }, this.parent);
  }
}

/** Passes spans on, and says (once per change) when the collector stops or starts taking them. */
class ReportingExporter implements SpanExporter {
  private failing = false;

  constructor(private readonly inner: SpanExporter, private readonly endpoint: string, private readonly success: number, private readonly log?: (msg: string) => void) {}

  export(spans: ReadableSpan[], done: (result: ExportResult) => void): void {
    this.inner.export(spans, (result) => {
      const failed = result.code !== this.success;
      if (failed !== this.failing) {
        this.failing = failed;
        this.log?.(failed
          ? `traces cannot be exported to ${this.endpoint}: ${result.error?.message ?? 'export failed'} (spans are dropped until it answers)`
          : `traces are exported to ${this.endpoint} again`);
      }
      done(result);
    });
  }

  shutdown(): Promise<void> {
    return this.inner.shutdown();
  }

  forceFlush(): Promise<void> {
    return this.inner.forceFlush?.() ?? Promise.resolve();
  }
}
