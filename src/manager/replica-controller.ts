/**
 * Decides how many replicas each model version runs, and tells the supervisor:
 *   - the current version: its replica count, or the autoscaler's decision when autoscaling is on;
 *   - the `warmVersions` most recently superseded versions: one replica each, so a pinned query or
 *     a rollback is answered at once;
 *   - any other version that a query asked for: one replica started on demand, stopped after
 *     `onDemandIdleMs` without queries.
 * Once per tick it samples the measurements, runs the autoscaler (autoscale-policy.ts) for every
 * model that has it on, and re-applies every model's targets, so a missed event heals by itself.
 * Each scaling decision that changes a count is logged ('autoscaler scaled', docs/observability.md).
 */
import { systemClock, unrefTimer, type Clock, type TimerHandle } from '../clock.ts';
import type { Measurements } from '../measure/measurements.ts';
import { errorFields, silentLogger, type Logger } from '../observability/log.ts';
import type { RegistryService } from '../registry/registry-service.ts';
import { versionKey, type ModelVersion } from '../registry/types.ts';
import { decideReplicas, resolveAutoscaleSettings, type AutoscaleDecision, type AutoscaleSettings } from './autoscale-policy.ts';
import type { ContainerManager, VersionTarget } from './container-manager.ts';

export interface ControllerOptions {
  warmVersions: number;
  onDemandIdleMs: number;
  tickMs: number;
  clock?: Clock;
  logger?: Logger;
  /** In a cluster, only the frontend holding the leader lease decides and applies (default: always). */
  leads?: () => boolean;
  /** The lease's fencing token, sent with the autoscaler's writes so a deposed leader's are refused. */
  fence?: () => number | undefined;
}

export interface ScalingEvent { at: string; model: string; version: string; from: number; to: number; reason: string }

export interface ModelScaling {
  autoscaling: AutoscaleSettings | undefined;
  /** Replicas the current version should have now. */
  desired: number;
  /** The autoscaler's last word (also when it held). */
  decision: (AutoscaleDecision & { at: string }) | undefined;
  warm: string[];
  onDemand: string[];
}

const MAX_EVENTS = 200;

export class ReplicaController {
  private readonly clock: Clock;
  private readonly log: Logger;
  private readonly autoTarget = new Map<string, { count: number; changedAt: number }>();
  private readonly lastDecision = new Map<string, AutoscaleDecision & { at: string }>();
  /** Per model, versions that were current before, most recent first. */
  private readonly superseded = new Map<string, string[]>();
  private readonly lastDemand = new Map<string, number>();
  private readonly eventLog: ScalingEvent[] = [];
  private timer: TimerHandle | undefined;
  private closed = false;
  private ticking: Promise<void> | undefined;

  constructor(
    private readonly registry: RegistryService,
    private readonly manager: ContainerManager,
    private readonly measurements: Measurements,
    private readonly opts: ControllerOptions,
  ) {
    this.clock = opts.clock ?? systemClock;
    this.log = opts.logger ?? silentLogger;
    for (const model of registry.modelNames()) {
      const current = registry.currentVersion(model);
      this.superseded.set(model, registry.versionsOf(model).filter((v) => v.version !== current).sort((a, b) => b.createdAt - a.createdAt).map((v) => v.version));
    }
    registry.on('current-changed', (model: string, _version: string | undefined, previous: string | undefined) => {
      const list = (this.superseded.get(model) ?? []).filter((v) => v !== previous && v !== registry.currentVersion(model));
      if (previous !== undefined && registry.getVersion(model, previous)) list.unshift(previous);
      this.superseded.set(model, list);
      this.replan(model);
    });
    // No replan on 'version-added': the registry follows it with 'current-changed' at once, and a
    // plan made in between would stop the previous version before it is known to be superseded.
    registry.on('version-deleted', (v: ModelVersion) => {
      this.superseded.set(v.name, (this.superseded.get(v.name) ?? []).filter((x) => x !== v.version));
      this.lastDemand.delete(versionKey(v.name, v.version));
      this.replan(v.name);
    });
    registry.on('version-changed', (v: ModelVersion) => this.replan(v.name));
    registry.on('autoscaling-changed', (model: string) => {
      this.autoTarget.delete(model);
      this.lastDecision.delete(model);
      this.replan(model);
    });
  }

  /** Adopts what an earlier run left, starts every model's replicas, and begins ticking. */
  async start(): Promise<void> {
    await this.manager.start(this.allTargets());
    await this.measurements.collect(this.clock.now());
    this.schedule();
  }

  /** A query needs a version that has no ready replica. */
  demand(name: string, version: string): void {
    const current = this.registry.currentVersion(name);
    const settings = this.settings(name);
    if (version === current) {
      if (settings && this.desiredCount(name) === 0) {
        this.setAutoTarget(name, 1, { desired: 1, demand: 1, reason: 'scale up: a query arrived while scaled to zero → 1' });
        this.replan(name);
      }
      return;
    }
    const key = versionKey(name, version);
    const first = !this.lastDemand.has(key);
    this.lastDemand.set(key, this.clock.now());
    if (first) this.replan(name);
  }

  starting(name: string, version: string): boolean {
    return this.manager.isStarting(name, version);
  }

  scaling(model: string): ModelScaling {
    const t = this.targets(model);
    const current = this.registry.currentVersion(model);
    return {
      autoscaling: this.settings(model),
      desired: this.desiredCount(model),
      decision: this.lastDecision.get(model),
      warm: this.warmVersions(model),
      onDemand: t.filter((x) => x.version.version !== current && !this.warmVersions(model).includes(x.version.version)).map((x) => x.version.version),
    };
  }

  events(): ScalingEvent[] {
    return [...this.eventLog];
  }

  /** One tick: sample, decide, apply. Exposed so tests drive it without timers. */
  async tick(): Promise<void> {
    const now = this.clock.now();
    const snap = await this.measurements.collect(now);
    if (!this.leads()) return;
    // The pool replicas can be placed on: every machine that answers, added up.
    const up = snap.machines.filter((x) => x.state !== 'down');
    const m = up.length ? { cores: up.reduce((t, x) => t + x.cores, 0), cpuBusyCores: up.reduce((t, x) => t + x.cpuBusyCores, 0) } : undefined;
    for (const model of this.registry.modelNames()) {
      const settings = this.settings(model);
      const current = this.registry.currentVersion(model);
      if (settings && current !== undefined) {
        const t = this.autoTarget.get(model) ?? { count: this.registry.getVersion(model, current)?.replicas ?? settings.minReplicas, changedAt: -Infinity };
        const d = decideReplicas({
          settings, current: t.count, lastChangeAt: t.changedAt, now, samples: this.measurements.samples(model, current),
          machine: m ? { cores: m.cores, cpuBusyCores: m.cpuBusyCores } : undefined,
        });
        this.lastDecision.set(model, { ...d, at: new Date().toISOString() });
        if (d.desired !== t.count) this.setAutoTarget(model, d.desired, d);
      }
      for (const [key, at] of this.lastDemand) {
        if (key.startsWith(`${model}:`) && now - at > this.opts.onDemandIdleMs) this.lastDemand.delete(key);
      }
      void this.applyModel(model);
    }
  }

  replan(model: string): void {
    if (!this.closed && this.leads()) void this.applyModel(model);
  }

  /** Every model's targets, for a frontend that has just taken the lead. */
  allTargets(): Map<string, VersionTarget[]> {
    return new Map(this.registry.modelNames().map((m) => [m, this.targets(m)]));
  }

  private leads(): boolean {
    return this.opts.leads?.() ?? true;
  }

  async close(): Promise<void> {
    this.closed = true;
    this.clock.clearTimeout(this.timer);
    await this.ticking;
  }

  // ---------- targets ----------

  private targets(model: string): VersionTarget[] {
    const current = this.registry.currentVersion(model);
    const out: VersionTarget[] = [];
    const seen = new Set<string>();
    const add = (version: string, replicas: number) => {
      const v = this.registry.getVersion(model, version);
      if (!v || seen.has(version)) return;
      seen.add(version);
      out.push({ version: v, replicas });
    };
    if (current !== undefined) add(current, this.desiredCount(model));
    for (const v of this.warmVersions(model)) add(v, 1);
    for (const key of this.lastDemand.keys()) {
      if (key.startsWith(`${model}:`)) add(key.slice(model.length + 1), 1);
    }
    return out;
  }

  private warmVersions(model: string): string[] {
    return (this.superseded.get(model) ?? []).filter((v) => this.registry.getVersion(model, v)).slice(0, this.opts.warmVersions);
  }

  private desiredCount(model: string): number {
    const current = this.registry.currentVersion(model);
    if (current === undefined) return 0;
    const fixed = this.registry.getVersion(model, current)?.replicas ?? 0;
    const settings = this.settings(model);
    if (!settings) return fixed;
    const auto = this.autoTarget.get(model)?.count ?? fixed;
    return Math.min(settings.maxReplicas, Math.max(settings.minReplicas, auto));
  }

  private settings(model: string): AutoscaleSettings | undefined {
    const raw = this.registry.autoscaling(model);
    if (!raw) return undefined;
    try {
      return resolveAutoscaleSettings(raw as unknown as AutoscaleSettings);
    } catch (e) {
      this.log.warn({ model, ...errorFields(e) }, 'autoscaling settings are invalid: ignored');
      return undefined;
    }
  }

  private setAutoTarget(model: string, count: number, d: Pick<AutoscaleDecision, 'desired' | 'reason' | 'demand'>): void {
    const current = this.registry.currentVersion(model);
    if (current === undefined) return;
    const before = this.autoTarget.get(model)?.count ?? this.registry.getVersion(model, current)?.replicas ?? 0;
    this.autoTarget.set(model, { count, changedAt: this.clock.now() });
    this.eventLog.push({ at: new Date().toISOString(), model, version: current, from: before, to: count, reason: d.reason });
    if (this.eventLog.length > MAX_EVENTS) this.eventLog.shift();
    this.log.info({ model, version: current, from: before, to: count, reason: d.reason, demand: d.demand }, 'autoscaler scaled');
    // Persisted so a restarted frontend resumes at the same size.
    this.registry.setReplicas(model, current, count, { byAutoscaler: true, fence: this.opts.fence?.() })
      .catch((e) => this.log.error({ model, version: current, replicas: count, ...errorFields(e) }, 'autoscaler: could not persist the replica count'));
  }

  private async applyModel(model: string): Promise<void> {
    try {
      await this.manager.apply(model, this.targets(model));
    } catch (e) {
      this.log.error({ model, ...errorFields(e, true) }, 'applying the replica targets failed');
    }
  }

  private schedule(): void {
    if (this.closed) return;
    this.timer = unrefTimer(this.clock.setTimeout(() => {
      this.ticking = this.tick().catch((e) => this.log.error(errorFields(e, true), 'controller tick failed')).finally(() => {
        this.ticking = undefined;
        this.schedule();
      });
    }, this.opts.tickMs));
  }
}
