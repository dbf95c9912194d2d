/**
 * Prometheus metrics of the query path, in one registry served at GET /metrics.
 *
 * The per-model inference metrics are shaped as Triton's (`nv_inference_*`): success and failure
 * counts per request, inputs and batches executed, and request, queue and compute durations, per
 * model and version — as Prometheus-conventional names (`_total` counters, histograms in seconds)
 * so that `promtool check metrics` passes. The mapping is in docs/observability.md.
 * They are hot-metrics.ts's: an update is an addition or an assignment, read at scrape time.
 */
import { Registry } from 'prom-client';
import { HotCounter as Counter, HotGauge as Gauge, HotHistogram as Histogram } from './hot-metrics.ts';

const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];
const BATCH_BUCKETS = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512];

export class QueryMetrics {
  readonly registry = new Registry();
  readonly appRequests = new Counter({ name: 'clipper_app_requests_total', help: 'Predictions asked of an application (one per input)', labelNames: ['app'], registers: [this.registry] });
  readonly appDefaults = new Counter({ name: 'clipper_app_default_outputs_total', help: 'Answers that were the default output', labelNames: ['app', 'reason'], registers: [this.registry] });
  readonly appLatency = new Histogram({ name: 'clipper_app_latency_seconds', help: 'Request latency per application', labelNames: ['app'], buckets: LATENCY_BUCKETS, registers: [this.registry] });

  readonly success = new Counter({ name: 'clipper_inference_request_success_total', help: 'Requests a model version answered (Triton: nv_inference_request_success)', labelNames: ['model', 'version'], registers: [this.registry] });
  readonly failure = new Counter({ name: 'clipper_inference_request_failure_total', help: 'Requests a model version did not answer, by reason (Triton: nv_inference_request_failure)', labelNames: ['model', 'version', 'reason'], registers: [this.registry] });
  readonly inferCount = new Counter({ name: 'clipper_inference_count_total', help: 'Inputs sent to a model version, batched or not (Triton: nv_inference_count)', labelNames: ['model', 'version'], registers: [this.registry] });
  readonly execCount = new Counter({ name: 'clipper_inference_exec_count_total', help: 'Batches a model version executed (Triton: nv_inference_exec_count)', labelNames: ['model', 'version'], registers: [this.registry] });
  readonly requestDuration = new Histogram({ name: 'clipper_inference_request_duration_seconds', help: 'Time from a request reaching a model version to its answers (Triton: nv_inference_request_duration_us)', labelNames: ['model', 'version'], buckets: LATENCY_BUCKETS, registers: [this.registry] });
  readonly queueDuration = new Histogram({ name: 'clipper_inference_queue_duration_seconds', help: 'Time an input waited in its version queue (Triton: nv_inference_queue_duration_us)', labelNames: ['model', 'version'], buckets: LATENCY_BUCKETS, registers: [this.registry] });
  readonly computeDuration = new Histogram({ name: 'clipper_inference_compute_duration_seconds', help: 'Time from sending a batch to a replica to its answer (Triton: nv_inference_compute_infer_duration_us)', labelNames: ['model', 'version'], buckets: LATENCY_BUCKETS, registers: [this.registry] });

  readonly batchSize = new Histogram({ name: 'clipper_batch_size', help: 'Inputs per batch sent to a replica', labelNames: ['model'], buckets: BATCH_BUCKETS, registers: [this.registry] });
  readonly queueDepth = new Gauge({ name: 'clipper_queue_depth', help: 'Inputs waiting in a version queue', labelNames: ['model'], registers: [this.registry] });
  readonly dropped = new Counter({ name: 'clipper_dropped_total', help: 'Inputs not sent to a model: deadline passed, queue full, shed under overload, or quarantined as a query of death', labelNames: ['model', 'reason'], registers: [this.registry] });
  readonly cacheHits = new Counter({ name: 'clipper_cache_hits_total', help: 'Prediction cache hits', labelNames: ['model'], registers: [this.registry] });
  readonly cacheMisses = new Counter({ name: 'clipper_cache_misses_total', help: 'Prediction cache misses', labelNames: ['model'], registers: [this.registry] });
  readonly replicas = new Gauge({ name: 'clipper_ready_replicas', help: 'Replicas registered and ready', labelNames: ['model'], registers: [this.registry] });
}

/** Label children resolved once per app / model version: the hot path skips prom-client's label hashing. */
export function appMetrics(m: QueryMetrics, app: string) {
  return {
    requests: m.appRequests.labels(app),
    latency: m.appLatency.labels(app),
    defaults: (reason: string) => m.appDefaults.labels(app, reason),
  };
}

/** `key` is "name:version" (model names cannot hold ':'). */
export function modelMetrics(m: QueryMetrics, key: string) {
  const sep = key.indexOf(':');
  const name = key.slice(0, sep);
  const version = key.slice(sep + 1);
  const failures = new Map<string, ReturnType<typeof m.failure.labels>>();
  return {
    success: m.success.labels(name, version),
    failure: (reason: string) => {
      let c = failures.get(reason);
      if (!c) failures.set(reason, (c = m.failure.labels(name, version, reason)));
      return c;
    },
    inferCount: m.inferCount.labels(name, version),
    execCount: m.execCount.labels(name, version),
    requestDuration: m.requestDuration.labels(name, version),
    queueDuration: m.queueDuration.labels(name, version),
    computeDuration: m.computeDuration.labels(name, version),
    batchSize: m.batchSize.labels(key),
    depth: m.queueDepth.labels(key),
    cacheHits: m.cacheHits.labels(key),
    cacheMisses: m.cacheMisses.labels(key),
    replicas: m.replicas.labels(key),
    dropped: (reason: string) => m.dropped.labels(key, reason),
  };
}
export type ModelMetrics = ReturnType<typeof modelMetrics>;
export type AppMetrics = ReturnType<typeof appMetrics>;
