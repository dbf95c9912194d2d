/**
 * The resource manager's supervisor: keeps each model version's replicas at the count it is
 * told, whatever backend runs them (see backend.ts). States and transitions are written down in
 * container-manager.ts; this file enforces them. It restarts replicas that exit or stop
 * answering (after a backoff from restart-policy.ts), replaces replicas whose artifact or limits
 * changed, enforces memory limits by watchdog where the backend cannot, and adopts or removes
 * replicas an earlier frontend left running.
 *
 * Log (docs/observability.md): replica started / restarted / adopted (with its pid or container),
 * ready, unresponsive, exited (with the reason, and the delay before it restarts).
 */
import { EventEmitter } from 'node:events';
import { systemClock, type Clock, type TimerHandle } from '../clock.ts';
import { ServingError } from '../errors.ts';
import { errorFields, silentLogger, type Logger } from '../observability/log.ts';
import { CpuRate } from '../measure/proc.ts';
import type { MachineUsage, ReplicaUsage } from '../measure/usage.ts';
import { versionKey, type ModelVersion } from '../registry/types.ts';
import { fingerprint, type ExitCause, type ExitInfo, type ReplicaBackend, type ReplicaHandle, type ReplicaSpec } from './backend.ts';
import type {
  ContainerManager, ContainerManagerEvents, ReplicaExitCause, ReplicaInfo, ReplicaState, ResourceLimits, VersionTarget,
} from './container-manager.ts';
import { DEFAULT_RESTART_POLICY, INITIAL_BACKOFF, nextRestart, type BackoffState, type RestartPolicyConfig } from './restart-policy.ts';

export interface SupervisorOptions {
  rpc: { host: string; port: number };
  stopGraceMs: number;
  /** A replica that has not registered over RPC this long after it started is killed and restarted. */
  startTimeoutMs: number;
  restart?: RestartPolicyConfig;
  clock?: Clock;
  logger?: Logger;
  /** Where this machine finds the version's artifact (a shared store may have to fetch it first). */
  localArtifact?: (v: ModelVersion) => Promise<string>;
}

interface Slot {
  info: ReplicaInfo;
  version: ModelVersion;
  handle: ReplicaHandle | undefined;
  /** What the running replica was started with. */
  fingerprint: string;
  backoff: BackoffState;
  timer: TimerHandle | undefined;
  /** Set while we are the ones ending it: the reason it is going (`cause` when not simply 'stopped'). */
  ending: { reason: string; restart: boolean; cause?: ExitCause } | undefined;
  /** Bumped on every start, so a late callback of an earlier run is ignored. */
  generation: number;
  startedAtMono: number;
  /** Set when the backoff timer relaunches it, so its start is logged as a restart. */
  restarting: boolean;
}

const LIVE: ReadonlySet<ReplicaState> = new Set(['STARTING', 'READY', 'UNRESPONSIVE', 'BACKOFF']);

export class Supervisor extends EventEmitter<ContainerManagerEvents> implements ContainerManager {
  private readonly slots = new Map<string, Slot>();
  private readonly waiters = new Set<() => void>();
  private readonly cpu = new CpuRate();
  private readonly clock: Clock;
  private readonly log: Logger;
  private closing = false;
  /** Starts still in the backend: close() waits for them, so no replica is created after it returns. */
  private readonly pendingStarts = new Set<Promise<unknown>>();

  constructor(private readonly backendImpl: ReplicaBackend, private readonly opts: SupervisorOptions) {
    super();
    this.clock = opts.clock ?? systemClock;
    this.log = opts.logger ?? silentLogger;
  }

  get backend(): string { return this.backendImpl.kind; }
  /** Containers outlive this process and the next leader adopts them; local processes do not. */
  get adoptable(): boolean { return this.backendImpl.kind !== 'local'; }

  async start(targets: Map<string, VersionTarget[]>): Promise<void> {
    for (const d of await this.backendImpl.discover()) {
      const target = targets.get(d.modelName)?.find((t) => t.version.version === d.modelVersion);
      const index = indexOf(d.replicaId);
      const wanted = target && index < target.replicas && !this.slots.has(d.replicaId)
        && d.fingerprint === fingerprint({ version: target.version, limits: limitsOf(target.version) });
      if (!wanted) {
        this.log.info({ replica: d.replicaId, model: d.modelName, version: d.modelVersion }, 'removing a replica left by an earlier run');
        await d.remove().catch((e) => this.log.warn({ replica: d.replicaId, ...errorFields(e) }, 'could not remove a replica left by an earlier run'));
        continue;
      }
      const slot = this.newSlot(d.replicaId, target.version);
      this.slots.set(d.replicaId, slot);
      this.attach(slot, d.adopt());
    }
    await Promise.all([...targets].map(([model, t]) => this.apply(model, t)));
  }

  async apply(model: string, targets: VersionTarget[]): Promise<void> {
    if (this.closing) return;
    const stops: Array<Promise<void>> = [];
    for (const { version: v, replicas } of targets) {
      if (v.name !== model) continue;
      const print = fingerprint({ version: v, limits: limitsOf(v) });
      for (let i = 0; i < replicas; i++) {
        const id = `${v.name}:${v.version}#${i}`;
        let slot = this.slots.get(id);
        if (slot && LIVE.has(slot.info.state) && slot.fingerprint !== print) {
          // Artifact or limits changed: replace the replica.
          stops.push(this.end(slot, 'replaced: its artifact or limits changed', false).then(() => this.launch(slot!, v)));
          continue;
        }
        if (!slot) this.slots.set(id, (slot = this.newSlot(id, v)));
        if (slot.info.state === 'STOPPED') this.launch(slot, v);
      }
      for (const s of this.slotsOf(v.name, v.version)) {
        if (indexOf(s.info.replicaId) >= replicas && LIVE.has(s.info.state)) stops.push(this.end(s, 'scaled down', false));
      }
    }
    for (const s of this.slots.values()) {
      if (s.info.modelName === model && LIVE.has(s.info.state) && !targets.some((t) => t.version.version === s.info.modelVersion && t.version.name === model)) {
        stops.push(this.end(s, 'version no longer served', false));
      }
    }
    await Promise.all(stops);
  }

  markReady(id: string | undefined, name: string, version: string): string | undefined {
    // A container that does not announce its replica id (a plain v3 container) is matched
    // to the longest-starting replica of its model version.
    const s = id !== undefined
      ? this.slots.get(id)
      : this.slotsOf(name, version).filter((x) => x.info.state === 'STARTING').sort((a, b) => a.startedAtMono - b.startedAtMono)[0];
    if (!s || s.info.state !== 'STARTING') return undefined;
    s.info.state = 'READY';
    this.log.info({ ...where(s.info), startupMs: Math.round(this.clock.now() - s.startedAtMono) }, 'replica ready');
    this.clearTimer(s);
    this.notify();
    return s.info.replicaId;
  }

  markUnresponsive(id: string, reason: string): void {
    const s = this.slots.get(id);
    if (!s || (s.info.state !== 'READY' && s.info.state !== 'STARTING')) return;
    this.log.warn({ ...where(s.info), reason }, 'replica unresponsive: killing it');
    s.info.state = 'UNRESPONSIVE';
    void this.end(s, `unresponsive: ${reason}`, true);
  }

  isStarting(name: string, version: string): boolean {
    return this.slotsOf(name, version).some((s) => s.info.state === 'STARTING' || s.info.state === 'BACKOFF' || s.info.state === 'UNRESPONSIVE');
  }

  waitReady(name: string, version: string, count: number, timeoutMs: number): Promise<boolean> {
    return this.waitUntil(() => this.slotsOf(name, version).filter((s) => s.info.state === 'READY').length >= count, timeoutMs);
  }

  waitStopped(name: string, version: string, keep: number, timeoutMs: number): Promise<boolean> {
    return this.waitUntil(() => this.slotsOf(name, version).filter((s) => s.info.state !== 'STOPPED').length <= keep, timeoutMs);
  }

  replicas(): ReplicaInfo[] {
    return [...this.slots.values()].filter((s) => s.info.state !== 'STOPPED')
      .sort((a, b) => a.info.replicaId.localeCompare(b.info.replicaId))
      .map((s) => ({ ...s.info, limits: { ...s.info.limits }, enforcement: { ...s.info.enforcement } }));
  }

  /** Every replica the supervisor knows, stopped ones included (for logs and last exit reasons). */
  allReplicas(): ReplicaInfo[] {
    return [...this.slots.values()].map((s) => ({ ...s.info }));
  }

  async logs(name: string, version: string, id: string | undefined, tail: number): Promise<Array<{ replica_id: string; lines: string[] }>> {
    const slots = this.slotsOf(name, version);
    if (id !== undefined && !slots.some((s) => s.info.replicaId === id)) {
      const past = await this.backendImpl.pastLogs(name, version, id, tail);
      if (!past) throw new ServingError('REPLICA_NOT_FOUND', `model ${name}:${version} has no replica ${JSON.stringify(id)}`);
      return [{ replica_id: id, lines: past }];
    }
    const chosen = slots.filter((s) => id === undefined || s.info.replicaId === id);
    return Promise.all(chosen.map(async (s) => ({
      replica_id: s.info.replicaId,
      lines: (s.handle ? await s.handle.logs(tail).catch(() => undefined) : undefined)
        ?? (await this.backendImpl.pastLogs(name, version, s.info.replicaId, tail)) ?? [],
    })));
  }

  async usage(): Promise<ReplicaUsage[]> {
    const now = this.clock.now();
    const out: ReplicaUsage[] = [];
    await Promise.all([...this.slots.values()].map(async (s) => {
      const h = s.handle;
      if (!h || !LIVE.has(s.info.state)) return;
      const st = await h.stats().catch(() => undefined);
      if (!st) return;
      out.push({ replicaId: s.info.replicaId, cpuCores: this.cpu.rate(s.info.replicaId, st.cpuSeconds, now), rssBytes: st.rssBytes });
      this.watchMemory(s, st.rssBytes);
    }));
    return out.sort((a, b) => a.replicaId.localeCompare(b.replicaId));
  }

  machines(): Promise<MachineUsage[]> {
    return this.backendImpl.machines();
  }

  /**
   * Lets go of the replicas without stopping them, for the next leader to adopt (backend.discover);
   * a backend whose replicas die with this process (local) stops them instead.
   */
  async release(): Promise<void> {
    if (!this.adoptable) return this.close();
    this.closing = true;
    for (const s of this.slots.values()) this.clearTimer(s);
    while (this.pendingStarts.size) await Promise.allSettled([...this.pendingStarts]);
    this.slots.clear();
    await this.backendImpl.close();
  }

  async close(): Promise<void> {
    this.closing = true;
    await Promise.all([...this.slots.values()].map((s) => this.end(s, 'frontend shutting down', false)));
    while (this.pendingStarts.size) await Promise.allSettled([...this.pendingStarts]);
    await this.backendImpl.close();
  }

  // ---------- lifecycle ----------

  private newSlot(id: string, v: ModelVersion): Slot {
    return {
      info: {
        replicaId: id, modelName: v.name, modelVersion: v.version, state: 'STOPPED', machine: '', restarts: 0,
        startedAt: undefined, lastExit: undefined, limits: limitsOf(v), enforcement: { cpu: 'none set', memory: 'none set' },
      },
      version: v, handle: undefined, fingerprint: '', backoff: INITIAL_BACKOFF, timer: undefined, ending: undefined, generation: 0, startedAtMono: 0,
      restarting: false,
    };
  }

  private launch(slot: Slot, v: ModelVersion): void {
    if (this.closing) return;
    slot.version = v;
    slot.info.limits = limitsOf(v);
    slot.info.state = 'STARTING';
    slot.info.startedAt = Date.now();
    slot.startedAtMono = this.clock.now();
    slot.ending = undefined;
    const gen = ++slot.generation;
    const spec: ReplicaSpec = { replicaId: slot.info.replicaId, version: v, limits: slot.info.limits, rpc: this.opts.rpc };
    slot.fingerprint = fingerprint(spec);
    const local = this.opts.localArtifact && v.artifactPath ? this.opts.localArtifact(v) : Promise.resolve(v.artifactPath);
    const started = local.then((artifactPath) => this.backendImpl.start({ ...spec, version: { ...v, artifactPath } }));
    const pending: Promise<unknown> = started.then(
      async (h) => {
        if (slot.generation !== gen || slot.ending) {
          // Asked to stop while it was being created.
          await h.stop(this.opts.stopGraceMs);
          await h.exited;
          return;
        }
        this.attach(slot, h);
      },
      (e) => {
        if (slot.generation !== gen) return;
        this.onExit(slot, gen, { reason: `could not start: ${e instanceof Error ? e.message : String(e)}`, oom: false, cause: 'crashed' });
      },
    ).catch((e) => this.log.warn({ replica: slot.info.replicaId, ...errorFields(e) }, 'could not stop a replica after an abandoned start'))
      .finally(() => this.pendingStarts.delete(pending));
    this.pendingStarts.add(pending);
  }

  /** Watches a started (or adopted) replica: start timeout, exit. */
  private attach(slot: Slot, h: ReplicaHandle): void {
    const gen = slot.generation;
    slot.handle = h;
    slot.info.machine = h.machine;
    slot.info.enforcement = { ...h.enforcement };
    const adopted = slot.info.state === 'STOPPED';
    const ref = h.ref && ('pid' in h.ref ? { replicaPid: h.ref.pid } : h.ref); // `pid` is the server's own
    this.log.info({ ...where(slot.info), machine: h.machine, ...ref, restarts: slot.info.restarts },
      adopted ? 'replica adopted' : slot.restarting ? 'replica restarted' : 'replica started');
    slot.restarting = false;
    if (adopted) {
      // Adopted: it will re-register over RPC.
      slot.info.state = 'STARTING';
      slot.info.startedAt = Date.now();
      slot.startedAtMono = this.clock.now();
      slot.fingerprint = fingerprint({ version: slot.version, limits: slot.info.limits });
    }
    this.setTimer(slot, this.opts.startTimeoutMs, () => {
      if (slot.generation === gen && slot.info.state === 'STARTING') this.markUnresponsive(slot.info.replicaId, `did not register within ${this.opts.startTimeoutMs} ms of starting`);
    });
    void h.exited.then((exit) => this.onExit(slot, gen, exit));
  }

  private onExit(slot: Slot, gen: number, exit: ExitInfo): void {
    if (slot.generation !== gen) return;
    slot.handle = undefined;
    this.cpu.forget(slot.info.replicaId);
    this.clearTimer(slot);
    const { info } = slot;
    const ending = slot.ending;
    const reason = exit.oom ? exit.reason : ending ? `${ending.reason} (${exit.reason})` : exit.reason;
    const cause: ReplicaExitCause = ending ? (ending.cause ?? 'stopped') : exit.cause;
    info.lastExit = { reason, at: Date.now() };
    slot.ending = undefined;
    if ((ending && !ending.restart) || this.closing) {
      info.state = 'STOPPED';
      this.log.info({ ...where(info), reason, cause }, 'replica exited');
      this.emit('replica-exit', info.replicaId, reason, cause);
      this.notify();
      return;
    }
    const upFor = this.clock.now() - slot.startedAtMono;
    const next = nextRestart(slot.backoff, upFor, this.opts.restart ?? DEFAULT_RESTART_POLICY);
    slot.backoff = next.state;
    info.state = 'BACKOFF';
    info.restarts++;
    this.log.warn({ ...where(info), reason, cause, upMs: Math.round(upFor), restarts: info.restarts, restartInMs: next.delayMs }, 'replica exited');
    this.emit('replica-exit', info.replicaId, reason, cause);
    this.notify();
    this.setTimer(slot, next.delayMs, () => {
      if (info.state !== 'BACKOFF' || slot.generation !== gen) return;
      slot.restarting = true;
      this.launch(slot, slot.version);
    });
  }

  /** Ends a replica: out of rotation first, then SIGTERM, SIGKILL after the grace period. */
  private async end(slot: Slot, reason: string, restart: boolean): Promise<void> {
    this.clearTimer(slot);
    const h = slot.handle;
    slot.ending = { reason, restart };
    if (!h) {
      // Not running (backoff, or still being created): nothing to signal.
      slot.generation++;
      slot.ending = undefined;
      if (restart) return;
      slot.info.state = 'STOPPED';
      this.notify();
      return;
    }
    if (!restart) slot.info.state = 'STOPPING';
    this.emit('replica-stopping', slot.info.replicaId);
    await h.stop(this.opts.stopGraceMs);
    await h.exited;
  }

  private watchMemory(s: Slot, rssBytes: number): void {
    const limit = s.info.limits.memoryMb * 1024 * 1024;
    if (limit <= 0 || !s.info.enforcement.memory.startsWith('watchdog') || rssBytes <= limit || s.ending) return;
    const reason = `out of memory: resident ${mib(rssBytes)} MiB over the limit of ${s.info.limits.memoryMb} MiB (killed by the watchdog)`;
    this.log.warn({ ...where(s.info), rssBytes, limitMb: s.info.limits.memoryMb }, 'replica over its memory limit: killing it');
    s.ending = { reason, restart: true, cause: 'killed' };
    this.emit('replica-stopping', s.info.replicaId);
    s.handle?.kill();
  }

  // ---------- helpers ----------

  private setTimer(slot: Slot, ms: number, fn: () => void): void {
    this.clearTimer(slot);
    slot.timer = this.clock.setTimeout(() => { slot.timer = undefined; fn(); }, ms);
  }

  private clearTimer(slot: Slot): void {
    this.clock.clearTimeout(slot.timer);
    slot.timer = undefined;
  }

  private slotsOf(name: string, version: string): Slot[] {
    const key = versionKey(name, version);
    return [...this.slots.values()].filter((s) => versionKey(s.info.modelName, s.info.modelVersion) === key);
  }

  private notify(): void {
    for (const w of [...this.waiters]) w();
  }

  private waitUntil(done: () => boolean, timeoutMs: number): Promise<boolean> {
    if (done()) return Promise.resolve(true);
    return new Promise((resolve) => {
      const check = () => {
        if (!done()) return;
        cleanup();
        resolve(true);
      };
      const timer = setTimeout(() => { cleanup(); resolve(false); }, timeoutMs);
      const cleanup = () => { clearTimeout(timer); this.waiters.delete(check); };
      this.waiters.add(check);
    });
  }
}

/** The fields that say which replica a record is about. */
function where(info: ReplicaInfo): { replica: string; model: string; version: string } {
  return { replica: info.replicaId, model: info.modelName, version: info.modelVersion };
}

export function limitsOf(v: ModelVersion): ResourceLimits {
  return { cpus: v.cpus ?? 0, memoryMb: v.memoryMb ?? 0 };
}

function indexOf(id: string): number {
  return Number(id.slice(id.lastIndexOf('#') + 1));
}

function mib(bytes: number): string {
  return (bytes / 1024 / 1024).toFixed(0);
}
