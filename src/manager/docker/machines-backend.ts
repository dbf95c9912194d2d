/**
 * Replicas on several machines, one Docker engine each: a ReplicaBackend over one DockerBackend
 * per machine. Where a replica goes is decided by placement.ts from what each engine reports
 * (cores, memory, every container's limits and use) and what this backend has placed but the
 * engine does not show yet. A machine that is down (its DockerBackend's health check) is skipped,
 * and its replicas end with cause 'killed', so the supervisor restarts them on the others.
 *
 * Soft avoidance (placement's `penalised`): a replica the supervisor stopped and starts again
 * within `penaltyMs` (it went unresponsive, e.g. its machine is cut off from the frontend while
 * its engine still answers) avoids the machine it was on; a machine where a start just failed is
 * avoided by every start for `penaltyMs`. Either is used still when nothing else fits.
 *
 * The runtime image (or a model's image) missing on a machine is copied there once from a
 * machine that has it (`docker save` → `docker load` between the engines) before the first start.
 */
import { errorMessage, ServingError } from '../../errors.ts';
import type { MachineUsage } from '../../measure/usage.ts';
import { versionKey, type ModelVersion } from '../../registry/types.ts';
import type { Discovered, ReplicaBackend, ReplicaHandle, ReplicaSpec } from '../backend.ts';
import type { MachineConfig } from '../machines.ts';
import { place, type MachineView, type Placement } from '../placement.ts';
import { DockerBackend, type EngineSample, type MachineState } from './docker-backend.ts';

export interface MachinesBackendOptions {
  machines: MachineConfig[];
  /** Image of the built-in runtimes; default clipper-runtime:<package.json version>. */
  image?: string;
  /** Identifies this frontend's data directory (container labels). */
  owner: string;
  logDir: string;
  /** Each engine's health check (default every 2 s, down after 10 s without an answer). */
  health?: { intervalMs: number; downAfterMs: number };
  /** How long a machine is avoided after a failed start there, or by a replica stopped there (default 60 s). */
  penaltyMs?: number;
  /** Deadline of each engine call (default 60 s). */
  callTimeoutMs?: number;
  log?: (msg: string) => void;
}

/** A machine as machines() reports it: its usage, and whether its engine answers. */
export type MachineReport = MachineUsage & { state: MachineState; reason?: string };

interface Member {
  name: string;
  backend: DockerBackend;
  sampling: Promise<EngineSample> | undefined;
  images: Map<string, Promise<void>>;
  failedAt: number;
}

/** A replica placed on a machine, from the decision until its exit. */
interface Placed {
  machine: string;
  versionKey: string;
  cpus: number;
  memoryBytes: number;
}

export class MachinesBackend implements ReplicaBackend {
  readonly kind = 'docker';
  private readonly members: Member[];
  private readonly placed = new Map<string, Placed>();
  /** replica id → the machine it was last stopped on, and when. */
  private readonly stoppedOn = new Map<string, { machine: string; at: number }>();
  private readonly penaltyMs: number;
  private closed = false;

  constructor(private readonly opts: MachinesBackendOptions) {
    if (!opts.machines.length) throw new Error('MachinesBackend: no machine configured');
    this.penaltyMs = opts.penaltyMs ?? 60_000;
    this.members = opts.machines.map((m) => ({
      name: m.name,
      backend: new DockerBackend({
        dockerHost: { host: m.host, tls: m.tls, timeoutMs: opts.callTimeoutMs }, image: opts.image, owner: opts.owner, logDir: opts.logDir,
        machineName: m.name, copyArtifacts: m.copyArtifacts, health: opts.health, log: opts.log,
      }),
      sampling: undefined, images: new Map(), failedAt: -Infinity,
    }));
  }

  /** The per-machine backends (for tests and status). */
  machine(name: string): DockerBackend | undefined {
    return this.members.find((m) => m.name === name)?.backend;
  }

  async start(spec: ReplicaSpec): Promise<ReplicaHandle> {
    if (this.closed) throw new Error('the Docker backend is closed');
    const req = { versionKey: versionKey(spec.version.name, spec.version.version), cpus: spec.limits.cpus, memoryMb: spec.limits.memoryMb };
    const views = await this.views(spec.replicaId);
    // Decided and reserved in one synchronous step, so concurrent starts see each other.
    const decision = place(req, this.withPlaced(views, spec.replicaId));
    if (!decision.ok) throw new ServingError('UNAVAILABLE', decision.reason);
    const m = this.members.find((x) => x.name === decision.machine)!;
    const entry: Placed = { machine: m.name, versionKey: req.versionKey, cpus: spec.limits.cpus, memoryBytes: spec.limits.memoryMb * 1024 * 1024 };
    this.placed.set(spec.replicaId, entry);
    this.log(`docker: placing ${spec.replicaId} on ${m.name} (${decision.why})`);
    try {
      await this.ensureImage(m, spec.version);
      const h = await m.backend.start(spec);
      return this.follow(h, entry);
    } catch (e) {
      if (this.placed.get(spec.replicaId) === entry) this.placed.delete(spec.replicaId);
      m.failedAt = Date.now();
      throw e;
    }
  }

  /** The placement decision for `spec` now, without placing it (for status and tests). */
  async decide(spec: ReplicaSpec): Promise<Placement> {
    const views = this.withPlaced(await this.views(spec.replicaId), spec.replicaId);
    return place({ versionKey: versionKey(spec.version.name, spec.version.version), cpus: spec.limits.cpus, memoryMb: spec.limits.memoryMb }, views);
  }

  async discover(): Promise<Discovered[]> {
    const found = await Promise.all(this.members.map(async (m) => {
      if (m.backend.state === 'down') return [];
      try {
        return (await m.backend.discover()).map((d): Discovered => ({
          ...d,
          adopt: () => {
            const entry: Placed = {
              machine: m.name, versionKey: versionKey(d.modelName, d.modelVersion), cpus: d.limits.cpus, memoryBytes: d.limits.memoryMb * 1024 * 1024,
            };
            this.placed.set(d.replicaId, entry);
            return this.follow(d.adopt(), entry);
          },
        }));
      } catch (e) {
        this.log(`docker: machine ${m.name} did not answer while looking for replicas left running: ${errorMessage(e)}; whatever is there is removed when it answers again`);
        return [];
      }
    }));
    return found.flat();
  }

  pastLogs(modelName: string, modelVersion: string, replicaId: string, tail: number): Promise<string[] | undefined> {
    // Every machine keeps its replicas' logs in the same log directory.
    return this.members[0]!.backend.pastLogs(modelName, modelVersion, replicaId, tail);
  }

  /** Every configured machine, down ones included (with zero capacity). */
  async machines(): Promise<MachineReport[]> {
    return Promise.all(this.members.map(async (m): Promise<MachineReport> => {
      const idle: MachineReport = {
        name: m.name, cores: 0, cpuBusyCores: 0, memoryTotalBytes: 0, memoryAvailableBytes: 0, load1: 0, state: m.backend.state,
      };
      if (m.backend.state === 'down') return { ...idle, reason: m.backend.whyDown };
      try {
        return { ...(await this.sample(m)).usage, name: m.name, state: m.backend.state === 'unknown' ? 'up' : m.backend.state };
      } catch (e) {
        return { ...idle, reason: `no answer: ${errorMessage(e)}` };
      }
    }));
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.all(this.members.map((m) => m.backend.close()));
  }

  // ---------- placement ----------

  private async views(placing: string): Promise<MachineView[]> {
    const now = Date.now();
    const avoid = this.stoppedOn.get(placing);
    const samples = await Promise.all(this.members.map(async (m) => {
      if (m.backend.state === 'down') return { m, sample: undefined, why: m.backend.whyDown.split(':')[0] };
      try {
        return { m, sample: await this.sample(m), why: '' };
      } catch (e) {
        return { m, sample: undefined, why: `engine did not answer: ${errorMessage(e)}` };
      }
    }));
    return samples.map(({ m, sample, why }): MachineView => {
      if (!sample) return { name: m.name, up: false, downReason: why, cores: 0, memoryTotalBytes: 0, containers: [] };
      const penalised = now - m.failedAt < this.penaltyMs || (avoid?.machine === m.name && now - avoid.at < this.penaltyMs);
      return { name: m.name, up: true, cores: sample.usage.cores, memoryTotalBytes: sample.usage.memoryTotalBytes, containers: sample.containers, penalised };
    });
  }

  /** Adds what is placed but not (yet) seen in a machine's sample; leaves out the replica being placed. Synchronous. */
  private withPlaced(views: MachineView[], placing: string): MachineView[] {
    return views.map((v) => {
      if (!v.up) return v;
      const containers = (v.containers as EngineSample['containers']).filter((c) => c.replicaId !== placing);
      const seen = new Set(containers.map((c) => c.replicaId).filter(Boolean));
      for (const [id, p] of this.placed) {
        if (p.machine !== v.name || id === placing || seen.has(id)) continue;
        containers.push({ cpus: p.cpus, memoryBytes: p.memoryBytes, usedCores: 0, usedBytes: 0, versionKey: p.versionKey });
      }
      return { ...v, containers };
    });
  }

  /** One sample at a time per machine; concurrent callers share it. */
  private sample(m: Member): Promise<EngineSample> {
    m.sampling ??= m.backend.sample().finally(() => { m.sampling = undefined; });
    return m.sampling;
  }

  /** The handle as the supervisor sees it: stops remembered, the placement released on exit. */
  private follow(h: ReplicaHandle, entry: Placed): ReplicaHandle {
    void h.exited.then(() => {
      if (this.placed.get(h.replicaId) === entry) this.placed.delete(h.replicaId);
    });
    return {
      replicaId: h.replicaId, exited: h.exited, enforcement: h.enforcement, machine: h.machine, ref: h.ref,
      stop: (graceMs) => {
        this.stoppedOn.set(h.replicaId, { machine: entry.machine, at: Date.now() });
        return h.stop(graceMs);
      },
      kill: () => h.kill(),
      stats: () => h.stats(),
      logs: (tail) => h.logs(tail),
    };
  }

  // ---------- images ----------

  private ensureImage(m: Member, v: ModelVersion): Promise<void> {
    const ref = v.runtime === 'image' ? v.containerName : m.backend.image;
    let p = m.images.get(ref);
    if (!p) {
      p = this.bringImage(m, ref);
      m.images.set(ref, p);
      p.catch(() => m.images.delete(ref));
    }
    return p;
  }

  /** Copies `ref` to `m` from a machine that has it; when none has it, the machine's backend says what to do (pull, or build). */
  private async bringImage(m: Member, ref: string): Promise<void> {
    if (await m.backend.engine.inspectImage(ref)) return;
    for (const src of this.members) {
      if (src === m || src.backend.state === 'down') continue;
      if (!(await src.backend.engine.inspectImage(ref).catch(() => undefined))) continue;
      const started = Date.now();
      this.log(`docker: image ${ref} is not on ${m.name}; copying it from ${src.name}`);
      const tar = await src.backend.engine.exportImage(ref);
      try {
        await m.backend.engine.loadImage(tar);
      } catch (e) {
        throw new ServingError('UNAVAILABLE', `could not copy image ${ref} from ${src.name} to ${m.name}: ${errorMessage(e)}`);
      } finally {
        tar.destroy();
      }
      this.log(`docker: image ${ref} copied from ${src.name} to ${m.name} in ${((Date.now() - started) / 1000).toFixed(1)} s`);
      return;
    }
    m.images.delete(ref); // look again next time: it may have been built or pulled meanwhile
  }

  private log(msg: string): void {
    this.opts.log?.(msg);
  }
}
