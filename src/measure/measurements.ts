/**
 * The one source of measurements: once per interval it reads the query processor's per-version
 * load, the replicas' CPU and memory and the machines' utilization, keeps the latest snapshot
 * for status, `clipper top` and /metrics, and a short history per version for the autoscaler.
 */
import type { LoadSample } from '../manager/autoscale-policy.ts';
import type { VersionLoadSample } from '../query/query-processor.ts';
import { versionKey } from '../registry/types.ts';
import type { MachineUsage, ReplicaUsage } from './usage.ts';

export interface MeasurementSources {
  load(): VersionLoadSample[];
  usage(): Promise<ReplicaUsage[]>;
  machines(): Promise<MachineUsage[]>;
}

export interface VersionMeasure {
  model: string;
  version: string;
  /** Inputs/s that needed the model (admitted + shed). */
  arrivalRate: number;
  shedRate: number;
  /** Admitted inputs/s not answered by their deadline. */
  lateRate: number;
  /** Share of arrivals answered by the model within the SLO; undefined with no arrivals. */
  sloAttainment: number | undefined;
  queueDelayP50Ms: number | undefined;
  queueDelayP99Ms: number | undefined;
  serviceMsPerInput: number | undefined;
  depth: number;
  readyReplicas: number;
  batchSizes: number[];
  /** Learned batch latency per batch size. */
  profile: Array<{ batchSize: number; ms: number }>;
}

export interface ReplicaMeasure {
  replicaId: string;
  cpuCores: number | undefined;
  rssBytes: number | undefined;
  batchesPerS: number;
  meanBatchMs: number | undefined;
  busyFraction: number;
  inflight: number;
}

export interface Snapshot {
  /** Epoch ms. */
  at: number;
  machines: MachineUsage[];
  versions: VersionMeasure[];
  replicas: ReplicaMeasure[];
}

const HISTORY_MS = 5 * 60_000;

export class Measurements {
  private last: Snapshot = { at: Date.now(), machines: [], versions: [], replicas: [] };
  private readonly history = new Map<string, LoadSample[]>();

  constructor(private readonly sources: MeasurementSources) {}

  latest(): Snapshot {
    return this.last;
  }

  /** Samples of one version, oldest first (the autoscaler's window). */
  samples(name: string, version: string): LoadSample[] {
    return this.history.get(versionKey(name, version)) ?? [];
  }

  /** Takes one sample of everything; `now` is the clock's ms (monotonic). */
  async collect(now: number): Promise<Snapshot> {
    const loads = this.sources.load();
    const [usage, machines] = await Promise.all([
      this.sources.usage().catch(() => [] as ReplicaUsage[]),
      this.sources.machines().catch(() => [] as MachineUsage[]),
    ]);
    const byReplica = new Map(usage.map((u) => [u.replicaId, u]));
    const replicas: ReplicaMeasure[] = [];
    const versions: VersionMeasure[] = [];
    const live = new Set<string>();
    for (const l of loads) {
      const i = l.interval;
      const key = versionKey(l.name, l.version);
      live.add(key);
      let cpu = 0;
      let busy = 0;
      for (const r of i.replicas) {
        const u = byReplica.get(r.replicaId);
        cpu += u?.cpuCores ?? 0;
        busy += r.busyFraction;
        replicas.push({
          replicaId: r.replicaId, cpuCores: u?.cpuCores, rssBytes: u?.rssBytes, batchesPerS: r.batchesPerS, meanBatchMs: r.meanBatchMs,
          busyFraction: r.busyFraction, inflight: l.inflight[r.replicaId] ?? 0,
        });
        byReplica.delete(r.replicaId);
      }
      versions.push({
        model: l.name, version: l.version,
        arrivalRate: i.arrivalRate, shedRate: i.shed / i.seconds, lateRate: i.late / i.seconds,
        sloAttainment: i.arrivals > 0 ? Math.min(1, i.inTime / i.arrivals) : undefined,
        queueDelayP50Ms: i.queueDelayP50Ms, queueDelayP99Ms: i.queueDelayP99Ms, serviceMsPerInput: i.serviceMsPerInput,
        depth: l.depth, readyReplicas: l.readyReplicas, batchSizes: l.batchSizes, profile: l.profile,
      });
      const h = this.history.get(key) ?? [];
      h.push({
        at: now, arrivalRate: i.arrivalRate, serviceMsPerInput: i.serviceMsPerInput, readyReplicas: l.readyReplicas,
        replicaCpuCores: cpu, busyFraction: i.replicas.length ? busy / i.replicas.length : 0,
      });
      while (h.length && h[0]!.at < now - HISTORY_MS) h.shift();
      this.history.set(key, h);
    }
    for (const key of this.history.keys()) if (!live.has(key)) this.history.delete(key);
    // Replicas that have not registered (starting, stuck) still have CPU and memory.
    for (const u of byReplica.values()) replicas.push({ replicaId: u.replicaId, cpuCores: u.cpuCores, rssBytes: u.rssBytes, batchesPerS: 0, meanBatchMs: undefined, busyFraction: 0, inflight: 0 });
    this.last = { at: Date.now(), machines, versions, replicas };
    return this.last;
  }
}
