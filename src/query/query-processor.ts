/**
 * The hot path: an application's query → selected model version → its queue → answer,
 * within the application's latency SLO or the default output with the reason.
 * Learns about replicas from events that app.ts passes on — addReplica/removeReplica from the RPC,
 * replicaExited from the resource manager — and calls neither.
 */
import { ServingError, type ErrorCode } from '../errors.ts';
import { checkDepth, encodeInput } from '../registry/input-types.ts';
import type { RegistryService } from '../registry/registry-service.ts';
import { versionKey, type Application, type ModelVersion } from '../registry/types.ts';
import type { Replica } from '../rpc/replica.ts';
import { DEFAULT_BATCH_CONFIG } from './batching/batch-size-policy.ts';
import type { LossCause } from './batching/loss-policy.ts';
import { VersionQueue, type SendBatch, type VersionQueueOptions } from './batching/version-queue.ts';
import { PredictionCache } from './cache/prediction-cache.ts';
import { InputFlights, type FlightTrace } from './input-flights.ts';
import { DEFAULT_QUARANTINE, Quarantine, type QuarantineOptions } from './quarantine.ts';
import type { SelectionService } from './selection-service.ts';
import { appMetrics, modelMetrics, type AppMetrics, type ModelMetrics, type QueryMetrics } from './metrics.ts';
import { systemClock, type Clock, type TimerHandle } from '../clock.ts';
import type { VersionInterval } from './batching/version-load.ts';
import type { TaskResult } from './task.ts';
import { ModelOutput } from './output.ts';

/** One input's answer. */
export interface Answer {
  queryId: number;
  output: ModelOutput;
  /** The application's default output (`explanation` says why), not a model's. */
  isDefault: boolean;
  explanation?: string;
  /** The model versions ("name:version") whose outputs made the answer. */
  models: string[];
  /** Ensembles: agreement among the models that contributed. */
  confidence?: number;
}
/** An input that got no answer: for an application, only when it is invalid; for a model, any failure. */
export interface EntryError { error: ErrorCode; cause?: string }

/** What `infer` answers: an application (its SLO, default output and selection policy) or a model version directly. */
export type InferTarget =
  | { app: string; version?: string; uid?: string }
  | { model: string; version?: string };

/** Inputs as JS values (encoded by the target's input type) or already encoded bytes (binary transports). */
export type InferInputs = { values: unknown[] } | { encoded: Buffer[] };

/**
 * A request's trace (../observability/tracing.ts): one TaskTrace per input queued, an event per
 * input answered from the cache. An input that joins an identical one in flight records neither:
 * the other request's spans cover its model call.
 */
export type InferTrace = FlightTrace;

export interface InferOptions {
  trace?: InferTrace;
}

export interface QueryOptions {
  queue: Omit<VersionQueueOptions, 'batch'> & { maxBatchSize: number };
  /** Prediction cache size per server; 0 turns the cache (and in-flight sharing) off. */
  cacheBytes: number;
  /** Queries of death remembered (see quarantine.ts). */
  quarantine?: QuarantineOptions;
  /** Latency objective (ms) of an inference sent to a model directly, not through an application. */
  modelSloMs?: number;
}

/** What the query processor may learn about replicas it does not have yet (from the resource manager, through app.ts). */
export interface ReplicaProspects {
  /** Work arrived for a version with no ready replica (scale from zero, a pinned cold version). */
  demand(name: string, version: string): void;
  /** True while a replica of the version is starting or about to restart. */
  starting(name: string, version: string): boolean;
}

/** One version's load over the last interval, with its queue's state now. */
export interface VersionLoadSample {
  name: string;
  version: string;
  depth: number;
  readyReplicas: number;
  batchSizes: number[];
  profile: Array<{ batchSize: number; ms: number }>;
  /** Batches in flight now, per replica id. */
  inflight: Record<string, number>;
  interval: VersionInterval;
}

/** Latency objective of an inference sent to a model without an application, unless configured. */
export const DEFAULT_MODEL_SLO_MS = 1000;

export const DEFAULT_QUERY_OPTIONS: QueryOptions = {
  queue: { maxBatchSize: DEFAULT_BATCH_CONFIG.max, maxInflightPerReplica: 1, maxQueue: 100_000, maxQueueBytes: 256 * 1024 * 1024, maxAttempts: 3, budgetFraction: 0.45, maxBatchWaitMs: 0 },
  cacheBytes: 64 * 1024 * 1024,
};


export class QueryProcessor {
  private readonly queues = new Map<string, VersionQueue>();
  private readonly queueMetrics = new Map<string, ModelMetrics>();
  private readonly appMetricsCache = new Map<string, AppMetrics>();
  private readonly flights: InputFlights;
  private readonly cache: PredictionCache;
  private readonly quarantine: Quarantine;
  private nextQueryId = 0;
  private readonly keysOf = new WeakMap<ModelVersion, string[]>();
  private readonly defaults = new WeakMap<Application, ModelOutput>();

  constructor(
    private readonly registry: RegistryService,
    private readonly send: SendBatch,
    private readonly metrics: QueryMetrics,
    private readonly selection: SelectionService,
    private readonly opts: QueryOptions = DEFAULT_QUERY_OPTIONS,
    private readonly clock: Clock = systemClock,
    private readonly prospects: ReplicaProspects = { demand: () => {}, starting: () => false },
  ) {
    this.cache = new PredictionCache(opts.cacheBytes);
    this.quarantine = new Quarantine(clock, opts.quarantine ?? DEFAULT_QUARANTINE);
    this.flights = new InputFlights(this.cache, this.quarantine);
    registry.on('version-deleted', (v: ModelVersion) => {
      const key = versionKey(v.name, v.version);
      this.queues.get(key)?.close(`model version ${key} was deleted`);
      this.queues.delete(key);
      this.cache.dropVersion(key);
      this.quarantine.dropVersion(key);
    });
    registry.on('version-added', (v: ModelVersion) => {
      this.cache.dropVersion(versionKey(v.name, v.version));
      this.quarantine.dropVersion(versionKey(v.name, v.version));
    });
  }

  addReplica(r: Replica): void {
    const q = this.queueFor(r.modelName, r.modelVersion);
    q.addReplica(r);
    this.modelMetricsFor(q.key).replicas.set(q.replicaCount);
  }

  removeReplica(r: Replica): void {
    const q = this.queues.get(versionKey(r.modelName, r.modelVersion));
    if (!q) return;
    q.removeReplica(r);
    this.modelMetricsFor(q.key).replicas.set(q.replicaCount);
    if (q.replicaCount === 0 && !this.prospects.starting(r.modelName, r.modelVersion)) {
      q.failWaiting(`no replica of ${q.key} is running and none is starting`);
    }
  }

  /**
   * A replica's process ended (`cause` from the resource manager, `reason` its exit text). Call
   * before the RPC lets it go, so the batches of a replica that crashed or was killed are judged
   * as possible queries of death (batching/loss-policy.ts) rather than retried on the next one.
   */
  replicaExited(replicaId: string, reason: string, cause: LossCause | 'stopped'): void {
    if (cause === 'stopped') return;
    for (const q of this.queues.values()) q.replicaLost(replicaId, cause, reason);
  }

  queueStats(): Array<{ model: string; depth: number; replicas: number; batchSizes: number[] }> {
    return [...this.queues.values()].map((q) => ({ model: q.key, depth: q.depth, replicas: q.replicaCount, batchSizes: q.batchSizes() }));
  }

  /** Each version's load since the previous call (the measurements read this once per interval). */
  takeLoad(): VersionLoadSample[] {
    const now = this.clock.now();
    return [...this.queues.entries()].map(([key, q]) => {
      // Model names cannot hold ':' (registry/validation.ts), so the first one separates the version.
      const sep = key.indexOf(':');
      return {
        name: key.slice(0, sep), version: key.slice(sep + 1),
        depth: q.depth, readyReplicas: q.replicaCount, batchSizes: q.batchSizes(), profile: q.profile.table(),
        inflight: Object.fromEntries(q.replicaLoads().map((r) => [r.replicaId, r.inflight])), interval: q.load.take(now),
      };
    });
  }

  /**
   * Answers every input (order kept). Through an application: invalid entries become EntryError,
   * the rest predictions or the default output. To a model directly: there is no default, so every
   * failure is an EntryError. Throws ServingError only for request-level problems.
   */
  async infer(target: InferTarget, inputs: InferInputs, opts: InferOptions = {}): Promise<Array<Answer | EntryError>> {
    if ('model' in target) return this.inferModel(target, inputs, opts);
    const started = this.clock.now();
    const app = this.registry.requireApp(target.app);
    const sloMs = app.latencySloMicros / 1000;
    const deadline = started + sloMs;
    const am = this.appMetricsFor(app.name);
    const encoded = this.encodeAll(app.inputType, inputs);
    am.requests.inc(encoded.length);
    if (encoded.length === 1 && encoded[0] instanceof ServingError) throw encoded[0];

    const models = this.registry.linkedModels(app.name);
    if (models.length === 0) {
      if (target.version !== undefined) throw new ServingError('MODEL_NOT_FOUND', `no model is linked to application ${app.name}`);
      return this.answer(app, encoded.map((e) => (e instanceof ServingError ? e : this.defaultResult(`no model is linked to application ${app.name}`))), []);
    }
    // The common case (one model, or the single policy) stays synchronous: no policy state to read.
    const sel = target.version !== undefined || app.policy === 'single' || models.length === 1
      ? { primary: [models[0]!], shadow: [] }
      : await this.selection.select(app, models, target.uid);
    const versions = sel.primary.map((m) => this.registry.requireVersion(m, target.version));
    const runs = await Promise.all(versions.map((v) => this.runOnVersion(v, encoded, deadline, sloMs, app.overloadDefault, opts.trace)));
    am.latency.observe((this.clock.now() - started) / 1000);

    if (versions.length === 1) {
      const answers = runs[0]!;
      if (encoded.length === 1 && answers[0] instanceof ServingError) throw answers[0];
      const out = this.answer(app, answers, this.versionKeys(versions[0]!));
      if (sel.shadow.length) this.runShadow(app, sel.shadow, encoded, out, sel.primary[0]!);
      return out;
    }
    return this.answerEnsemble(app, models, target.uid, encoded, versions, runs);
  }

  /** A model version without an application: its input type, the model SLO, no default output. */
  private async inferModel(target: { model: string; version?: string }, inputs: InferInputs, opts: InferOptions): Promise<Array<Answer | EntryError>> {
    const v = this.registry.requireVersion(target.model, target.version);
    const sloMs = this.opts.modelSloMs ?? DEFAULT_MODEL_SLO_MS;
    const encoded = this.encodeAll(v.inputType, inputs);
    if (encoded.length === 1 && encoded[0] instanceof ServingError) throw encoded[0];
    const run = await this.runOnVersion(v, encoded, this.clock.now() + sloMs, sloMs, false, opts.trace);
    const models = this.versionKeys(v);
    return run.map((r) => {
      if (r instanceof ServingError) return { error: r.code, cause: r.message };
      if (r.ok) return { queryId: this.nextQueryId++, output: r.output, isDefault: false, models };
      return { error: r.code === 'QUARANTINED' ? 'MODEL_ERROR' : r.code, cause: r.error };
    });
  }

  /** Feedback for the selection policy: every linked model's output for the input against the label. */
  async feedback(appName: string, input: unknown, label: unknown, uid: string | undefined): Promise<{ feedback: Array<{ model: string; output: unknown }> }> {
    const app = this.registry.requireApp(appName);
    const models = this.registry.linkedModels(app.name);
    if (models.length === 0) throw new ServingError('NO_LINKED_MODEL', `no model is linked to application ${app.name}`);
    const [encoded] = this.encodeAll(app.inputType, { values: [input] });
    if (encoded instanceof ServingError) throw encoded;
    checkDepth(label, 'label');
    const waitMs = Math.max(1000, (app.latencySloMicros / 1000) * 10);
    const deadline = this.clock.now() + waitMs;
    const results = await Promise.all(models.map((m) => this.runOnVersion(this.registry.requireVersion(m), [encoded!], deadline, waitMs, app.overloadDefault)));
    const feedback = results.flatMap((r, k) => {
      const a = r[0];
      return a && !(a instanceof ServingError) && a.ok ? [{ model: models[k]!, output: a.output.value }] : [];
    });
    if (feedback.length === 0) throw new ServingError('UNAVAILABLE', 'no linked model answered for this input; feedback not recorded');
    await this.selection.update(app, models, uid, feedback, label);
    return { feedback };
  }

  private encodeAll(inputType: Application['inputType'], inputs: InferInputs): Array<Buffer | ServingError> {
    if ('encoded' in inputs) return inputs.encoded;
    return inputs.values.map((x) => {
      try {
        return encodeInput(inputType, x);
      } catch (e) {
        return e instanceof ServingError ? e : new ServingError('INVALID_INPUT', `input could not be read: ${(e as Error).message}`);
      }
    });
  }

  /** ["name:version"], one array per version (answers share it; nobody changes it). */
  private versionKeys(v: ModelVersion): string[] {
    let k = this.keysOf.get(v);
    if (!k) this.keysOf.set(v, (k = [versionKey(v.name, v.version)]));
    return k;
  }

  /** The application's default output, read once per application record. */
  private defaultOutput(app: Application): ModelOutput {
    let d = this.defaults.get(app);
    if (!d) this.defaults.set(app, (d = ModelOutput.fromText(app.defaultOutput)));
    return ModelOutput.known(d.text!, d.isJson);
  }

  private answer(app: Application, answers: Array<TaskResult | ServingError>, models: string[]): Array<Answer | EntryError> {
    const am = this.appMetricsFor(app.name);
    return answers.map((a) => {
      if (a instanceof ServingError) return { error: a.code, cause: a.message };
      const id = this.nextQueryId++;
      if (a.ok) return { queryId: id, output: a.output, isDefault: false, models };
      am.defaults(a.code).inc();
      return { queryId: id, output: this.defaultOutput(app), isDefault: true, explanation: a.error, models };
    });
  }

  /** Several models answered (an ensemble): combine what arrived by the deadline, per input. */
  private async answerEnsemble(app: Application, models: string[], uid: string | undefined, encoded: Array<Buffer | ServingError>, versions: ModelVersion[], runs: Array<Array<TaskResult | ServingError>>): Promise<Array<Answer | EntryError>> {
    const am = this.appMetricsFor(app.name);
    const threshold = typeof app.policyParams.confidence_threshold === 'number' ? app.policyParams.confidence_threshold : 0;
    const out: Array<Answer | EntryError> = [];
    for (let i = 0; i < encoded.length; i++) {
      const e = encoded[i]!;
      if (e instanceof ServingError) {
        out.push({ error: e.code, cause: e.message });
        continue;
      }
      const arrived: Array<{ model: string; output: unknown }> = [];
      const failures: string[] = [];
      versions.forEach((v, k) => {
        const r = runs[k]![i]!;
        if (!(r instanceof ServingError) && r.ok) arrived.push({ model: v.name, output: r.output.value });
        else failures.push(`${versionKey(v.name, v.version)}: ${r instanceof ServingError ? r.message : r.error}`);
      });
      const id = this.nextQueryId++;
      if (arrived.length === 0) {
        am.defaults('NO_ANSWER').inc();
        out.push({ queryId: id, output: this.defaultOutput(app), isDefault: true, explanation: failures.join('; '), models: [] });
        continue;
      }
      const c = await this.selection.combine(app, models, uid, arrived);
      const keys = c.contributors.map((m) => versionKey(m, versions.find((v) => v.name === m)!.version));
      if (c.confidence < threshold) {
        am.defaults('LOW_CONFIDENCE').inc();
        out.push({ queryId: id, output: this.defaultOutput(app), isDefault: true, explanation: `ensemble confidence ${c.confidence.toFixed(3)} is below the threshold ${threshold}`, models: keys, confidence: c.confidence });
        continue;
      }
      out.push({ queryId: id, output: ModelOutput.fromValue(c.output), isDefault: false, models: keys, confidence: c.confidence });
    }
    return out;
  }

  /** Shadow models get the same inputs; their outputs are recorded beside the primary's, never returned. */
  private runShadow(app: Application, shadow: string[], encoded: Array<Buffer | ServingError>, answered: Array<Answer | EntryError>, primary: string): void {
    const sloMs = app.latencySloMicros / 1000;
    const deadline = this.clock.now() + sloMs;
    void Promise.all(shadow.map((m) => this.runOnVersion(this.registry.requireVersion(m), encoded, deadline, sloMs, app.overloadDefault))).then((runs) => {
      answered.forEach((a, i) => {
        if (!('queryId' in a)) return;
        this.selection.recordShadow(app.name, {
          at: new Date().toISOString(),
          query_id: a.queryId,
          primary: { model: primary, output: a.output.value },
          candidates: shadow.map((m, k) => {
            const r = runs[k]![i]!;
            return !(r instanceof ServingError) && r.ok ? { model: m, output: r.output.value } : { model: m, error: r instanceof ServingError ? r.message : r.error };
          }),
        });
      });
    }).catch(() => {});
  }

  private defaultResult(reason: string): TaskResult {
    return { ok: false, code: 'UNAVAILABLE', error: reason };
  }

  /**
   * Runs the inputs on one version until `deadline`. `overloadDefault`: a shed or refused input
   * (OVERLOADED, QUEUE_FULL) becomes a failed result (→ the default output) instead of an error.
   */
  private runOnVersion(v: ModelVersion, encoded: Array<Buffer | ServingError>, deadline: number, sloMs: number, overloadDefault: boolean, trace?: InferTrace): Promise<Array<TaskResult | ServingError>> {
    const q = this.queueFor(v.name, v.version);
    const mm = this.modelMetricsFor(q.key);
    const started = this.clock.now();
    const settle = (results: Array<TaskResult | ServingError>) => {
      mm.requestDuration.observe((this.clock.now() - started) / 1000);
      for (const r of results) {
        if (r instanceof ServingError) {
          if (r.code === 'QUEUE_FULL' || r.code === 'OVERLOADED') mm.failure(r.code).inc();
        } else if (r.ok) mm.success.inc();
        else mm.failure(r.code).inc();
      }
      return results;
    };
    if (q.replicaCount === 0) {
      this.prospects.demand(v.name, v.version);
      if (!this.prospects.starting(v.name, v.version)) {
        const reason = `no replica of ${q.key} is running and none is starting`;
        return Promise.resolve(settle(encoded.map((e) => (e instanceof ServingError ? e : { ok: false, code: 'UNAVAILABLE', error: reason }))));
      }
    }
    const timing = { deadline, now: started, budgetMs: Math.max(0.1, sloMs * this.opts.queue.budgetFraction) };
    const results: Array<TaskResult | ServingError | undefined> = encoded.map((e) => (e instanceof ServingError ? e : undefined));
    const cancels: Array<() => void> = [];
    let pending = 0;

    return new Promise((resolve) => {
      let timer: TimerHandle | undefined;
      let finished = false;
      let submitting = true;
      const finish = () => {
        finished = true;
        this.clock.clearTimeout(timer);
        for (const c of cancels) c();
        resolve(settle(results as Array<TaskResult | ServingError>));
      };
      encoded.forEach((e, i) => {
        if (e instanceof ServingError) return;
        pending++;
        const done = (r: TaskResult) => {
          if (results[i] !== undefined) return;
          results[i] = r;
          if (--pending === 0 && !submitting && !finished) finish();
        };
        try {
          const cancel = this.flights.submit(q, mm, e, timing, trace, done);
          if (cancel) cancels.push(cancel);
        } catch (err) {
          const se = err as ServingError;
          const overload = se.code === 'QUEUE_FULL' || se.code === 'OVERLOADED';
          results[i] = overload && overloadDefault ? { ok: false, code: se.code as 'QUEUE_FULL' | 'OVERLOADED', error: se.message } : se;
          pending--;
        }
      });
      submitting = false;
      if (pending === 0) return finish();
      timer = this.clock.setTimeout(() => {
        const reason = q.replicaCount === 0
          ? `no replica of ${q.key} is ready`
          : `no prediction from ${q.key} within the latency SLO of ${sloMs} ms`;
        let late = 0;
        for (let i = 0; i < results.length; i++) {
          if (results[i] !== undefined) continue;
          results[i] = { ok: false, code: 'DEADLINE_EXCEEDED', error: reason };
          late++;
        }
        q.load.late(late);
        finish();
        if (q.replicaCount === 0) q.releaseDead(false);
      }, Math.max(0, deadline - this.clock.now()));
    });
  }

  private modelMetricsFor(key: string): ModelMetrics {
    let m = this.queueMetrics.get(key);
    if (!m) this.queueMetrics.set(key, (m = modelMetrics(this.metrics, key)));
    return m;
  }

  private appMetricsFor(app: string): AppMetrics {
    let m = this.appMetricsCache.get(app);
    if (!m) this.appMetricsCache.set(app, (m = appMetrics(this.metrics, app)));
    return m;
  }

  private queueFor(name: string, version: string): VersionQueue {
    const key = versionKey(name, version);
    let q = this.queues.get(key);
    if (!q) {
      const v = this.registry.getVersion(name, version);
      const { maxBatchSize, ...rest } = this.opts.queue;
      const mm = this.modelMetricsFor(key);
      q = new VersionQueue(key, this.send, { ...rest, batch: { ...DEFAULT_BATCH_CONFIG, fixed: v?.batchSize ?? 0, max: maxBatchSize } }, this.clock, {
        batchSent: (n) => { mm.batchSize.observe(n); mm.inferCount.inc(n); mm.execCount.inc(); },
        batchDone: (_n, ms) => { mm.computeDuration.observe(ms / 1000); },
        dropped: (reason, n) => mm.dropped(reason).inc(n),
        queued: (ms) => mm.queueDuration.observe(ms / 1000),
        depth: (n) => mm.depth.set(n),
      });
      this.queues.set(key, q);
    }
    return q;
  }
}

