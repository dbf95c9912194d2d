/** Prometheus metrics of the query path, in one registry served at GET /metrics. */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';

const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];
const BATCH_BUCKETS = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512];

export class QueryMetrics {
  readonly registry = new Registry();
  readonly appRequests = new Counter({ name: 'clipper_app_requests_total', help: 'Predictions asked of an application (one per input)', labelNames: ['app'], registers: [this.registry] });
  readonly appDefaults = new Counter({ name: 'clipper_app_default_outputs_total', help: 'Answers that were the default output', labelNames: ['app', 'reason'], registers: [this.registry] });
  readonly appLatency = new Histogram({ name: 'clipper_app_latency_seconds', help: 'Request latency per application', labelNames: ['app'], buckets: LATENCY_BUCKETS, registers: [this.registry] });
  readonly modelRequests = new Counter({ name: 'clipper_model_requests_total', help: 'Inputs sent to a model version', labelNames: ['model'], registers: [this.registry] });
  readonly modelErrors = new Counter({ name: 'clipper_model_errors_total', help: 'Inputs a model version failed', labelNames: ['model'], registers: [this.registry] });
  readonly modelLatency = new Histogram({ name: 'clipper_model_batch_latency_seconds', help: 'Time from sending a batch to its answer', labelNames: ['model'], buckets: LATENCY_BUCKETS, registers: [this.registry] });
  readonly queueTime = new Histogram({ name: 'clipper_queue_time_seconds', help: 'Time an input waited in its version queue', labelNames: ['model'], buckets: LATENCY_BUCKETS, registers: [this.registry] });
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

export function modelMetrics(m: QueryMetrics, model: string) {
  return {
    requests: m.modelRequests.labels(model),
    errors: m.modelErrors.labels(model),
    latency: m.modelLatency.labels(model),
    queueTime: m.queueTime.labels(model),
    batchSize: m.batchSize.labels(model),
    depth: m.queueDepth.labels(model),
    cacheHits: m.cacheHits.labels(model),
    cacheMisses: m.cacheMisses.labels(model),
    replicas: m.replicas.labels(model),
    dropped: (reason: string) => m.dropped.labels(model, reason),
  };
}
export type ModelMetrics = ReturnType<typeof modelMetrics>;
export type AppMetrics = ReturnType<typeof appMetrics>;
