/**
 * The resource manager of one frontend in a cluster. Only the frontend holding the leader lease
 * starts, stops and watches replicas (its Supervisor); every other frontend sees the replicas
 * connected to its own RPC port, which — since every replica connects to every frontend — are
 * the replicas that can answer its queries. This class is that switch: while leading it is the
 * supervisor (and forwards its events); while following it is a read-only view of the RPC port.
 *
 *   follow ──lead(supervisor)──▶ lead ──follow()──▶ follow
 *
 * Handing over: a leader that loses the lease releases its supervisor — containers keep running
 * for the next leader to adopt. Local processes, which no other frontend can adopt, keep running
 * too ("parked") until another frontend is seen leading (it starts its own), so a Redis outage
 * that costs this frontend its lease costs no replica; if this frontend leads again, it takes
 * its parked supervisor back. A frontend that shuts down stops them.
 */
import { EventEmitter } from 'node:events';
import { ServingError } from '../errors.ts';
import type { MachineUsage, ReplicaUsage } from '../measure/usage.ts';
import type { RegistryService } from '../registry/registry-service.ts';
import type { ContainerManager, ContainerManagerEvents, ReplicaInfo, VersionTarget } from './container-manager.ts';

/** What a follower knows of replicas: those registered with its own RPC port. */
export interface ConnectedReplica { replicaId: string | undefined; modelName: string; modelVersion: string }

export interface LeaderGateOptions {
  backend: string;
  registry: RegistryService;
  connected: () => ConnectedReplica[];
  /** Where the leader's admin API is, for messages that send the caller there. */
  leaderAdmin: () => string | undefined;
  log: (msg: string) => void;
  pollMs?: number;
}

/** A supervisor that can also let go of its replicas without stopping them. */
export interface LeadingManager extends ContainerManager {
  release(): Promise<void>;
  /** Whether the next leader can adopt its replicas (containers, pods), or they end with this process. */
  readonly adoptable: boolean;
}

export class LeaderGatedManager extends EventEmitter<ContainerManagerEvents> implements ContainerManager {
  readonly backend: string;
  private leader: LeadingManager | undefined;
  private parked: LeadingManager | undefined;
  private readonly forward = {
    stopping: (id: string) => this.emit('replica-stopping', id),
    exit: (...a: ContainerManagerEvents['replica-exit']) => this.emit('replica-exit', ...a),
  };

  constructor(private readonly opts: LeaderGateOptions) {
    super();
    this.backend = opts.backend;
  }

  get leading(): boolean {
    return this.leader !== undefined;
  }

  /**
   * Takes over: a parked supervisor of this frontend is taken back; otherwise a new one adopts
   * what the previous leader left. Either then applies every target.
   */
  async lead(create: () => Promise<LeadingManager>, targets: Map<string, VersionTarget[]>): Promise<void> {
    if (this.leader) return;
    const parked = this.parked;
    this.parked = undefined;
    if (parked) {
      this.leader = parked;
      for (const [model, t] of targets) await parked.apply(model, t);
      return;
    }
    const m = await create();
    m.on('replica-stopping', this.forward.stopping);
    m.on('replica-exit', this.forward.exit);
    this.leader = m;
    await m.start(targets);
    // Replicas already registered here (with the previous leader too) are ready now.
    for (const r of this.opts.connected()) m.markReady(r.replicaId, r.modelName, r.modelVersion);
  }

  /** The lease is lost (`park`: keep replicas nobody else can adopt running), or this frontend is stopping. */
  async follow(opts: { park?: boolean } = {}): Promise<void> {
    const m = this.leader;
    if (!m) return;
    this.leader = undefined;
    if (opts.park && !m.adoptable) {
      this.parked = m;
      return;
    }
    await this.letGo(m);
  }

  /** Another frontend leads and starts its own replicas: a parked supervisor stops this one's. */
  async otherLeads(): Promise<void> {
    const m = this.parked;
    this.parked = undefined;
    if (m) await this.letGo(m);
  }

  get hasParked(): boolean {
    return this.parked !== undefined;
  }

  private async letGo(m: LeadingManager): Promise<void> {
    // Still heard while it lets go: replicas it stops must leave rotation here at once.
    await m.release();
    m.off('replica-stopping', this.forward.stopping);
    m.off('replica-exit', this.forward.exit);
  }

  async start(targets: Map<string, VersionTarget[]>): Promise<void> {
    await this.leader?.start(targets);
  }

  async apply(model: string, targets: VersionTarget[]): Promise<void> {
    await this.leader?.apply(model, targets);
  }

  markReady(replicaId: string | undefined, name: string, version: string): string | undefined {
    // A parked supervisor still watches its replicas: one that reconnects is ready, not late.
    const m = this.leader ?? this.parked;
    return m ? m.markReady(replicaId, name, version) : replicaId;
  }

  markUnresponsive(replicaId: string, reason: string): void {
    // A follower that cannot hear a replica may be the one cut off: only the leader kills.
    if (this.leader) this.leader.markUnresponsive(replicaId, reason);
    else this.opts.log(`replica ${replicaId} is silent here (${reason}); the leader decides whether it is unresponsive`);
  }

  isStarting(name: string, version: string): boolean {
    if (this.leader) return this.leader.isStarting(name, version);
    // The leader may be starting it; a query waits for it within its SLO rather than failing now.
    const v = this.opts.registry.getVersion(name, version);
    return v !== undefined && !this.connectedOf(name, version).length;
  }

  async waitReady(name: string, version: string, count: number, timeoutMs: number): Promise<boolean> {
    if (this.leader) return this.leader.waitReady(name, version, count, timeoutMs);
    return this.poll(() => this.connectedOf(name, version).length >= count, timeoutMs);
  }

  async waitStopped(name: string, version: string, keep: number, timeoutMs: number): Promise<boolean> {
    if (this.leader) return this.leader.waitStopped(name, version, keep, timeoutMs);
    return this.poll(() => this.connectedOf(name, version).length <= keep, timeoutMs);
  }

  replicas(): ReplicaInfo[] {
    if (this.leader) return this.leader.replicas();
    return this.opts.connected().map((r, i) => ({
      replicaId: r.replicaId ?? `${r.modelName}:${r.modelVersion}@${i}`, modelName: r.modelName, modelVersion: r.modelVersion,
      state: 'READY' as const, machine: '', restarts: 0, startedAt: undefined, lastExit: undefined,
      limits: { cpus: 0, memoryMb: 0 }, enforcement: { cpu: 'known to the leader', memory: 'known to the leader' },
    })).sort((a, b) => a.replicaId.localeCompare(b.replicaId));
  }

  async logs(name: string, version: string, replicaId: string | undefined, tail: number): Promise<Array<{ replica_id: string; lines: string[] }>> {
    if (this.leader) return this.leader.logs(name, version, replicaId, tail);
    const where = this.opts.leaderAdmin();
    throw new ServingError('UNAVAILABLE', `replica logs are kept by the frontend that leads the resource manager${where ? ` (${where})` : ' (none leads right now)'}: ask it`);
  }

  async usage(): Promise<ReplicaUsage[]> {
    return this.leader ? this.leader.usage() : [];
  }

  async machines(): Promise<MachineUsage[]> {
    return this.leader ? this.leader.machines() : [];
  }

  /** A frontend that shuts down hands over: containers stay for the next leader, local processes stop. */
  async close(): Promise<void> {
    await this.follow();
    await this.otherLeads();
  }

  private connectedOf(name: string, version: string): ConnectedReplica[] {
    return this.opts.connected().filter((r) => r.modelName === name && r.modelVersion === version);
  }

  private async poll(done: () => boolean, timeoutMs: number): Promise<boolean> {
    const end = Date.now() + timeoutMs;
    for (;;) {
      if (done()) return true;
      if (Date.now() >= end) return false;
      await new Promise((r) => setTimeout(r, this.opts.pollMs ?? 100));
    }
  }
}
