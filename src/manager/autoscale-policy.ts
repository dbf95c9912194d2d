/**
 * How many replicas one model version should have: the autoscaler's decision as a pure function
 * (fed samples, asked for a count; no clock, no I/O). The caller samples once a second and feeds
 * the answer back as `current` next time.
 *
 * - Demand of a sample = ceil(arrivalRate × serviceMsPerInput / 1000 / targetUtilization): the
 *   replicas needed to serve the arrivals at the target utilization. Arrival rate (admitted + shed)
 *   and service time per input do not fall when replicas are added, so the policy does not chase
 *   its own tail the way a queue-length policy does (Ray Serve issue 18925: 1 ↔ N oscillation
 *   under steady load). No arrivals → 0. No service time measured (nothing answered) → `current`,
 *   or 1 when scaled to zero and something arrived.
 * - Scale up promptly and sized: the MINIMUM demand over the last upscaleDelayS must exceed
 *   `current` (and the samples must reach back that far, so a lone first sample after a restart
 *   is not enough); then go straight to that minimum. A spike shorter than the delay does nothing; a
 *   spike that lasts is sized from its measured demand, never multiplied (no Knative-panic
 *   overshoot). upscaleDelayS = 0 uses the latest sample alone. From zero, the first arrival
 *   scales up at once.
 * - Scale down slowly: only when `current` has not changed for downscaleDelayS, the samples cover
 *   that whole window and EVERY demand in it is below `current`; then go to the MAXIMUM demand of
 *   the window's latest half. This hysteresis is what keeps the count from flapping.
 * - Up needs the load to exceed the current count by UP_TOLERANCE (10%), as Kubernetes' HPA
 *   does: per-input service time creeps up as batches shrink with more replicas, and without a
 *   band a load right on a boundary buys one replica too many.
 * - Limits: the result is clamped to [minReplicas, maxReplicas]. A CPU-bound model (its replicas
 *   use ≥ 0.25 cores each while busy) gets no more extra replicas than the machine's idle cores
 *   can run; a model whose replicas use no CPU (e.g. waiting on I/O) is never held back by this.
 *
 * Windows are measured back from `now` with WINDOW_SLACK_MS of tolerance for sampling jitter, so
 * with one sample a second, upscaleDelayS = 2 looks at the 3 latest samples.
 */

export interface AutoscaleSettings {
  /** ≥ 0 (0 = scale to zero allowed). */
  minReplicas: number;
  /** ≥ minReplicas, ≥ 1. */
  maxReplicas: number;
  /** Demand must exceed capacity this long before scaling up. */
  upscaleDelayS: number;
  /** Slack must last this long before scaling down. */
  downscaleDelayS: number;
  /** 0..1, share of a replica's capacity to plan for. */
  targetUtilization: number;
}

export const DEFAULT_AUTOSCALE: Omit<AutoscaleSettings, 'minReplicas' | 'maxReplicas'> = Object.freeze({
  upscaleDelayS: 2,
  downscaleDelayS: 30,
  targetUtilization: 0.7,
});

/** Validates and fills defaults; throws a plain Error naming the bad field. */
export function resolveAutoscaleSettings(
  input: Partial<AutoscaleSettings> & { minReplicas: number; maxReplicas: number },
): AutoscaleSettings {
  const s = { ...DEFAULT_AUTOSCALE, ...dropUndefined(input) } as AutoscaleSettings;
  const num = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);
  if (!num(s.minReplicas) || !Number.isInteger(s.minReplicas) || s.minReplicas < 0) {
    throw new Error(`min_replicas must be an integer ≥ 0 (got ${String(s.minReplicas)})`);
  }
  if (!num(s.maxReplicas) || !Number.isInteger(s.maxReplicas) || s.maxReplicas < 1) {
    throw new Error(`max_replicas must be an integer ≥ 1 (got ${String(s.maxReplicas)})`);
  }
  if (s.maxReplicas < s.minReplicas) {
    throw new Error(`max_replicas must be ≥ min_replicas (got ${s.maxReplicas} < ${s.minReplicas})`);
  }
  if (!num(s.upscaleDelayS) || s.upscaleDelayS < 0) {
    throw new Error(`upscale_delay_s must be a number ≥ 0 (got ${String(s.upscaleDelayS)})`);
  }
  if (!num(s.downscaleDelayS) || s.downscaleDelayS < 0) {
    throw new Error(`downscale_delay_s must be a number ≥ 0 (got ${String(s.downscaleDelayS)})`);
  }
  if (!num(s.targetUtilization) || s.targetUtilization <= 0 || s.targetUtilization > 1) {
    throw new Error(`target_utilization must be in (0, 1] (got ${String(s.targetUtilization)})`);
  }
  const { minReplicas, maxReplicas, upscaleDelayS, downscaleDelayS, targetUtilization } = s;
  return Object.freeze({ minReplicas, maxReplicas, upscaleDelayS, downscaleDelayS, targetUtilization });
}

/** One sample per second for one model version (the current version of the model). */
export interface LoadSample {
  /** ms (monotonic). */
  at: number;
  /** inputs/s that needed the model (admitted + shed), over the last interval. */
  arrivalRate: number;
  /** Replica busy time per input answered over the interval; undefined if no batch finished. */
  serviceMsPerInput: number | undefined;
  readyReplicas: number;
  /** CPU cores the version's replicas used in total over the interval. */
  replicaCpuCores: number;
  /** 0..1 mean share of time the ready replicas had a batch in flight. */
  busyFraction: number;
}

/** Whole machine incl. the frontend, latest sample. */
export interface MachineState { cores: number; cpuBusyCores: number }

export interface AutoscaleInput {
  settings: AutoscaleSettings;
  /** Replicas the autoscaler asked for last (the target now). */
  current: number;
  /** ms when `current` was last changed (or -Infinity). */
  lastChangeAt: number;
  now: number;
  /** Oldest first, about one per second. */
  samples: LoadSample[];
  machine: MachineState | undefined;
}

export interface AutoscaleDecision {
  desired: number;
  /** Short, for status and logs. */
  reason: string;
  /** Set when the decision is held below the demand by a limit. */
  limitedBy?: 'max_replicas' | 'cpu saturated';
  /** Replicas the demand alone asks for (latest sample). */
  demand: number;
}

/** Tolerance on window edges for sampling jitter (samples come about once a second). */
export const WINDOW_SLACK_MS = 250;
/** A model is CPU-bound when one busy replica uses at least this many cores. */
export const CPU_BOUND_CORES = 0.25;
/** A sample tells the CPU cost of a busy replica only when the replicas were at least this busy. */
export const MIN_BUSY_FOR_CPU = 0.2;
/** How far back the CPU cost of a busy replica is averaged. */
export const CPU_WINDOW_MS = 10_000;

/**
 * A sample asks for more replicas only when its load exceeds the current count by this share.
 * Service time per input rises a little as replicas are added (smaller batches carry the fixed
 * cost of each batch), so a load sitting right on a boundary would otherwise buy one replica more.
 */
export const UP_TOLERANCE = 0.1;

/** Replicas' worth of load in one sample at the target utilization, before rounding up. */
export function sampleLoad(s: LoadSample, targetUtilization: number): number {
  const ms = s.serviceMsPerInput;
  if (!(s.arrivalRate > 0) || ms === undefined || !Number.isFinite(ms) || ms < 0) return 0;
  return (s.arrivalRate * ms) / 1000 / targetUtilization;
}

/** Replicas one sample asks for (see the header). */
export function sampleDemand(s: LoadSample, current: number, targetUtilization: number): number {
  if (!(s.arrivalRate > 0)) return 0;
  const ms = s.serviceMsPerInput;
  if (ms === undefined || !Number.isFinite(ms) || ms < 0) return current > 0 ? current : 1;
  // The epsilon keeps 3.0000000004 (float noise) from asking for a 4th replica.
  return Math.max(0, Math.ceil((s.arrivalRate * ms) / 1000 / targetUtilization - 1e-9));
}

/** Cores one busy replica uses, averaged over the recent samples with ready replicas; 0 if unknown. */
export function cpuPerBusyReplica(samples: LoadSample[], now: number): number {
  // Only samples where the replicas were really busy: an idle replica's background CPU (GC,
  // heartbeats) divided by a tiny busy share would make any model look CPU-bound.
  const recent = samples.filter((s) => s.at >= now - CPU_WINDOW_MS && s.readyReplicas > 0 && s.busyFraction >= MIN_BUSY_FOR_CPU);
  if (recent.length === 0) return 0;
  let sum = 0;
  for (const s of recent) sum += Math.max(0, s.replicaCpuCores) / s.readyReplicas / Math.max(s.busyFraction, 0.05);
  return sum / recent.length;
}

export function decideReplicas(input: AutoscaleInput): AutoscaleDecision {
  const { settings: cfg, current, lastChangeAt, now, samples, machine } = input;
  const clamp = (n: number) => Math.min(cfg.maxReplicas, Math.max(cfg.minReplicas, n));
  const latest = samples[samples.length - 1];
  const demandOf = (s: LoadSample) => sampleDemand(s, current, cfg.targetUtilization);
  const demand = latest ? demandOf(latest) : current;

  if (current > cfg.maxReplicas) return { desired: cfg.maxReplicas, reason: `scale down: max_replicas → ${cfg.maxReplicas}`, demand };
  if (!latest) {
    const desired = clamp(current);
    return { desired, reason: desired > current ? `scale up: min_replicas → ${desired}` : 'hold: no samples', demand };
  }

  // What the load asks for, before limits.
  let target = current;
  let why = 'steady';
  const up = windowOf(samples, now, cfg.upscaleDelayS);
  const upDemands = up.map(demandOf);
  const upMin = Math.min(...upDemands);
  if (current === 0 && latest.arrivalRate > 0) {
    target = Math.max(1, demand);
    why = latest.serviceMsPerInput === undefined ? 'scale up: first arrival' : `scale up: ${sized(latest, cfg)}`;
  } else if (upMin > current && covers(samples, now, cfg.upscaleDelayS)
    && (current === 0 || up.every((s) => s.serviceMsPerInput === undefined || sampleLoad(s, cfg.targetUtilization) > current * (1 + UP_TOLERANCE)))) {
    why = `scale up: ${sized(up[upDemands.indexOf(upMin)]!, cfg)}`;
    target = upMin;
  } else if (now - lastChangeAt >= cfg.downscaleDelayS * 1000 && covers(samples, now, cfg.downscaleDelayS)) {
    // Every sample of the whole window must want fewer; the new size is the most the latest
    // half asked for, so the edge of a load that just stopped does not cost a second down delay.
    const downMax = Math.max(...windowOf(samples, now, cfg.downscaleDelayS).map(demandOf));
    if (downMax < current) {
      target = Math.max(...windowOf(samples, now, cfg.downscaleDelayS / 2).map(demandOf));
      why = `scale down: slack for ${cfg.downscaleDelayS} s`;
    }
  }
  if (target <= current) {
    const desired = clamp(target);
    if (desired === current) return { desired, reason: 'steady', demand };
    if (desired > current) return { desired, reason: `scale up: min_replicas → ${desired}`, demand };
    return { desired, reason: `${why} → ${desired}`, demand };
  }

  // Scaling up: the limits that may hold it back, tightest last.
  let desired = Math.max(clamp(target), current);
  let limitedBy: AutoscaleDecision['limitedBy'];
  if (desired < target) limitedBy = 'max_replicas';
  const perReplica = cpuPerBusyReplica(samples, now);
  if (machine && perReplica >= CPU_BOUND_CORES) {
    const extra = Math.max(0, Math.floor((machine.cores - machine.cpuBusyCores + 0.1) / perReplica));
    const allowed = Math.max(current + extra, current === 0 ? 1 : 0);
    if (allowed < desired) {
      desired = allowed;
      limitedBy = 'cpu saturated';
    }
  }
  desired = Math.max(desired, cfg.minReplicas);
  if (!limitedBy) return { desired, reason: `${why} → ${desired}`, demand };
  if (desired === current) return { desired, reason: limitedBy === 'max_replicas' ? 'hold: at max_replicas' : 'hold: cpu saturated', limitedBy, demand };
  const capped = limitedBy === 'max_replicas' ? 'capped at max_replicas' : 'capped: cpu saturated';
  return { desired, reason: `${why} → ${desired} (${capped})`, limitedBy, demand };
}

/** Samples within the last `delayS` seconds (at least the latest; the latest alone when 0). */
function windowOf(samples: LoadSample[], now: number, delayS: number): LoadSample[] {
  const latest = samples[samples.length - 1]!;
  if (delayS <= 0) return [latest];
  const from = now - delayS * 1000 - WINDOW_SLACK_MS;
  const w = samples.filter((s) => s.at >= from);
  return w.length > 0 ? w : [latest];
}

/** Whether the samples reach back to the start of the last `delayS` seconds. */
function covers(samples: LoadSample[], now: number, delayS: number): boolean {
  return samples.length > 0 && samples[0]!.at <= now - delayS * 1000 + WINDOW_SLACK_MS;
}

function sized(s: LoadSample, cfg: AutoscaleSettings): string {
  return `${Math.round(s.arrivalRate)}/s × ${(s.serviceMsPerInput ?? 0).toFixed(1)} ms at ${Math.round(cfg.targetUtilization * 100)}%`;
}

function dropUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
