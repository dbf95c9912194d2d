/**
 * The hot path: an application's query → selected model version → its queue → answer,
 * within the application's latency SLO or the default output with the reason.
 * Learns about replicas from events that app.ts passes on — addReplica/removeReplica from the RPC,
 * replicaExited from the resource manager — and calls neither.
 */
import { ServingError } from '../errors.ts';
import { checkDepth, encodeInput } from '../registry/input-types.ts';
import type { RegistryService } from '../registry/registry-service.ts';
import { versionKey, type Application, type ModelVersion } from '../registry/types.ts';
import type { Replica } from '../rpc/replica.ts';
import { DEFAULT_BATCH_CONFIG } from './batching/batch-size-policy.ts';
import type { LossCause } from './batching/loss-policy.ts';
import { VersionQueue, type SendBatch, type VersionQueueOptions } from './batching/version-queue.ts';
import { PredictionCache } from './cache/prediction-cache.ts';
import { InputFlights } from './input-flights.ts';
import { DEFAULT_QUARANTINE, Quarantine, type QuarantineOptions } from './quarantine.ts';
import type { SelectionService } from './selection-service.ts';
import { appMetrics, modelMetrics, type AppMetrics, type ModelMetrics, type QueryMetrics } from './metrics.ts';
import { systemClock, type Clock, type TimerHandle } from '../clock.ts';
import type { VersionInterval } from './batching/version-load.ts';
import type { TaskResult } from './task.ts';

export interface Prediction {
  query_id: number;
  output: unknown;
  default: boolean;
  default_explanation?: string;
  models: string[];
  /** Ensembles: agreement among the models that contributed. */
  confidence?: number;
}
export interface EntryError { error: string; cause?: string }

export interface QueryOptions {
  queue: Omit<VersionQueueOptions, 'batch'> & { maxBatchSize: number };
  /** Prediction cache size per server; 0 turns the cache (and in-flight sharing) off. */
  cacheBytes: number;
  /** Queries of death remembered (see quarantine.ts). */
  quarantine?: QuarantineOptions;
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

export const DEFAULT_QUERY_OPTIONS: QueryOptions = {
  queue: { maxBatchSize: DEFAULT_BATCH_CONFIG.max, maxInflightPerReplica: 1, maxQueue: 100_000, maxQueueBytes: 256 * 1024 * 1024, maxAttempts: 3, budgetFraction: 0.45, maxBatchWaitMs: 0 },
  cacheBytes: 64 * 1024 * 1024,
};

export interface PredictRequest { app: string; inputs: unknown[]; version?: string; uid?: string }

export class QueryProcessor {
  private readonly queues = new Map<string, VersionQueue>();
  private readonly queueMetrics = new Map<string, ModelMetrics>();
  private readonly appMetricsCache = new Map<string, AppMetrics>();
  private readonly flights: InputFlights;
  private readonly cache: PredictionCache;
  private readonly quarantine: Quarantine;
  private nextQueryId = 0;

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
   * Answers every input (order kept). Invalid entries become EntryError; the rest become
   * predictions or default outputs. Throws ServingError only for request-level problems.
   */
  async predict(req: PredictRequest): Promise<Array<Prediction | EntryError>> {
    const started = this.clock.now();
    const app = this.registry.requireApp(req.app);
    const sloMs = app.latencySloMicros / 1000;
    const deadline = started + sloMs;
    const am = this.appMetricsFor(app.name);
    am.requests.inc(req.inputs.length);

    const encoded = this.encodeAll(app, req.inputs);
    if (req.inputs.length === 1 && encoded[0] instanceof ServingError) throw encoded[0];

    const models = this.registry.linkedModels(app.name);
    if (models.length === 0) {
      if (req.version !== undefined) throw new ServingError('MODEL_NOT_FOUND', `no model is linked to application ${app.name}`);
      return this.answer(app, encoded.map((e) => (e instanceof ServingError ? e : this.defaultResult(`no model is linked to application ${app.name}`))), []);
    }
    // The common case (one model, or the single policy) stays synchronous: no policy state to read.
    const sel = req.version !== undefined || app.policy === 'single' || models.length === 1
      ? { primary: [models[0]!], shadow: [] }
      : await this.selection.select(app, models, req.uid);
    const versions = sel.primary.map((m) => this.registry.requireVersion(m, req.version));
    const runs = await Promise.all(versions.map((v) => this.runOnVersion(app, v, encoded, deadline, sloMs)));
    am.latency.observe((this.clock.now() - started) / 1000);

    if (versions.length === 1) {
      const answers = runs[0]!;
      if (req.inputs.length === 1 && answers[0] instanceof ServingError) throw answers[0];
      const out = this.answer(app, answers, [versionKey(versions[0]!.name, versions[0]!.version)]);
      if (sel.shadow.length) this.runShadow(app, sel.shadow, encoded, out, sel.primary[0]!);
      return out;
    }
    return this.answerEnsemble(app, models, req.uid, encoded, versions, runs);
  }

  /** Feedback for the selection policy: every linked model's output for the input against the label. */
  async feedback(appName: string, input: unknown, label: unknown, uid: string | undefined): Promise<{ feedback: Array<{ model: string; output: unknown }> }> {
    const app = this.registry.requireApp(appName);
    const models = this.registry.linkedModels(app.name);
    if (models.length === 0) throw new ServingError('NO_LINKED_MODEL', `no model is linked to application ${app.name}`);
    const [encoded] = this.encodeAll(app, [input]);
    if (encoded instanceof ServingError) throw encoded;
    checkDepth(label, 'label');
    const waitMs = Math.max(1000, (app.latencySloMicros / 1000) * 10);
    const deadline = this.clock.now() + waitMs;
    const results = await Promise.all(models.map((m) => this.runOnVersion(app, this.registry.requireVersion(m), [encoded!], deadline, waitMs)));
    const feedback = results.flatMap((r, k) => {
      const a = r[0];
      return a && !(a instanceof ServingError) && a.ok ? [{ model: models[k]!, output: a.value }] : [];
    });
    if (feedback.length === 0) throw new ServingError('UNAVAILABLE', 'no linked model answered for this input; feedback not recorded');
    await this.selection.update(app, models, uid, feedback, label);
    return { feedback };
  }

  private encodeAll(app: Application, inputs: unknown[]): Array<Buffer | ServingError> {
    return inputs.map((x) => {
      try {
        return encodeInput(app.inputType, x);
      } catch (e) {
        return e instanceof ServingError ? e : new ServingError('INVALID_INPUT', `input could not be read: ${(e as Error).message}`);
      }
    });
  }

  private answer(app: Application, answers: Array<TaskResult | ServingError>, models: string[]): Array<Prediction | EntryError> {
    const am = this.appMetricsFor(app.name);
    return answers.map((a) => {
      if (a instanceof ServingError) return { error: a.code, cause: a.message };
      const id = this.nextQueryId++;
      if (a.ok) return { query_id: id, output: a.value, default: false, models };
      am.defaults(a.code).inc();
      return { query_id: id, output: parseDefault(app.defaultOutput), default: true, default_explanation: a.error, models };
    });
  }

  /** Several models answered (an ensemble): combine what arrived by the deadline, per input. */
  private async answerEnsemble(app: Application, models: string[], uid: string | undefined, encoded: Array<Buffer | ServingError>, versions: ModelVersion[], runs: Array<Array<TaskResult | ServingError>>): Promise<Array<Prediction | EntryError>> {
    const am = this.appMetricsFor(app.name);
    const threshold = typeof app.policyParams.confidence_threshold === 'number' ? app.policyParams.confidence_threshold : 0;
    const out: Array<Prediction | EntryError> = [];
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
        if (!(r instanceof ServingError) && r.ok) arrived.push({ model: v.name, output: r.value });
        else failures.push(`${versionKey(v.name, v.version)}: ${r instanceof ServingError ? r.message : r.error}`);
      });
      const id = this.nextQueryId++;
      if (arrived.length === 0) {
        am.defaults('NO_ANSWER').inc();
        out.push({ query_id: id, output: parseDefault(app.defaultOutput), default: true, default_explanation: failures.join('; '), models: [] });
        continue;
      }
      const c = await this.selection.combine(app, models, uid, arrived);
      const keys = c.contributors.map((m) => versionKey(m, versions.find((v) => v.name === m)!.version));
      if (c.confidence < threshold) {
        am.defaults('LOW_CONFIDENCE').inc();
        out.push({ query_id: id, output: parseDefault(app.defaultOutput), default: true, default_explanation: `ensemble confidence ${c.confidence.toFixed(3)} is below the threshold ${threshold}`, models: keys, confidence: c.confidence });
        continue;
      }
      out.push({ query_id: id, output: c.output, default: false, models: keys, confidence: c.confidence });
    }
    return out;
  }

  /** Shadow models get the same inputs; their outputs are recorded beside the primary's, never returned. */
  private runShadow(app: Application, shadow: string[], encoded: Array<Buffer | ServingError>, answered: Array<Prediction | EntryError>, primary: string): void {
    const sloMs = app.latencySloMicros / 1000;
    const deadline = this.clock.now() + sloMs;
    void Promise.all(shadow.map((m) => this.runOnVersion(app, this.registry.requireVersion(m), encoded, deadline, sloMs))).then((runs) => {
      answered.forEach((a, i) => {
        if (!('query_id' in a)) return;
        this.selection.recordShadow(app.name, {
          at: new Date().toISOString(),
          query_id: a.query_id,
          primary: { model: primary, output: a.output },
          candidates: shadow.map((m, k) => {
            const r = runs[k]![i]!;
            return !(r instanceof ServingError) && r.ok ? { model: m, output: r.value } : { model: m, error: r instanceof ServingError ? r.message : r.error };
          }),
        });
      });
    }).catch(() => {});
  }

  private defaultResult(reason: string): TaskResult {
    return { ok: false, code: 'UNAVAILABLE', error: reason };
  }

  private runOnVersion(app: Application, v: ModelVersion, encoded: Array<Buffer | ServingError>, deadline: number, sloMs: number): Promise<Array<TaskResult | ServingError>> {
    const q = this.queueFor(v.name, v.version);
    q.setLatencyBudget(sloMs);
    if (q.replicaCount === 0) {
      this.prospects.demand(v.name, v.version);
      if (!this.prospects.starting(v.name, v.version)) {
        const reason = `no replica of ${q.key} is running and none is starting`;
        return Promise.resolve(encoded.map((e) => (e instanceof ServingError ? e : { ok: false, code: 'UNAVAILABLE', error: reason })));
      }
    }
    const now = this.clock.now();
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
        resolve(results as Array<TaskResult | ServingError>);
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
          const cancel = this.flights.submit(q, this.modelMetricsFor(q.key), e, deadline, now, done);
          if (cancel) cancels.push(cancel);
        } catch (err) {
          const se = err as ServingError;
          const overload = se.code === 'QUEUE_FULL' || se.code === 'OVERLOADED';
          results[i] = overload && app.overloadDefault ? { ok: false, code: se.code as 'QUEUE_FULL' | 'OVERLOADED', error: se.message } : se;
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
        batchSent: (n) => { mm.batchSize.observe(n); mm.requests.inc(n); },
        batchDone: (_n, ms, failed) => { mm.latency.observe(ms / 1000); if (failed) mm.errors.inc(failed); },
        dropped: (reason, n) => mm.dropped(reason).inc(n),
        queued: (ms) => mm.queueTime.observe(ms / 1000),
        depth: (n) => mm.depth.set(n),
      });
      this.queues.set(key, q);
    }
    return q;
  }
}

function parseDefault(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}
