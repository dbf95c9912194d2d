/**
 * Docker backend: each replica is a container of one Docker engine (one machine), reached over
 * its Engine API. Containers use the host's network (the replica dials the frontend's RPC
 * address), see the model artifact read-only at /model/<name> — bind-mounted when the engine
 * shares our filesystem (a unix socket), copied into the container before it starts otherwise
 * (tcp://, ssh://) — and carry labels (owner, model, version, replica, fingerprint) so a later
 * frontend on the same data directory finds and adopts them, while a frontend with another data
 * directory never touches them. Docker enforces the CPU and memory limits. There is no Docker
 * restart policy: the supervisor restarts. When a container exits, its output is appended to
 * <logDir>/<model>/<version>/<replica>.log and the container is removed.
 *
 * The engine is pinged every `health.intervalMs`. The machine's state:
 *   unknown ──answers──▶ up ──no answer for downAfterMs──▶ down ──answers──▶ up
 * Going down, every replica there ends at once (`machine m2 unreachable (…)`, cause 'killed'),
 * so the supervisor restarts it (on another machine, when there is one). Coming back up from
 * down, containers of ours the backend no longer tracks are removed: their replicas were
 * replaced meanwhile, and must not run twice.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, appendFile } from 'node:fs/promises';
import { constants } from 'node:os';
import { basename, join } from 'node:path';
import { errorMessage, ServingError } from '../../errors.ts';
import type { MachineUsage } from '../../measure/usage.ts';
import { versionKey, type ModelVersion } from '../../registry/types.ts';
import { exitCause, fingerprint, replicaLogFile, type Discovered, type ExitInfo, type ReplicaBackend, type ReplicaHandle, type ReplicaSpec } from '../backend.ts';
import type { Enforcement, ResourceLimits } from '../container-manager.ts';
import { replicaEnv } from '../launch.ts';
import type { PlacedContainer } from '../placement.ts';
import { tailFile } from '../process-backend.ts';
import {
  DockerEngine, isEngineStatus, isLocalEngine, type ContainerCreate, type ContainerInspect, type ContainerStats, type EngineEndpoint, type HostConfig,
} from './engine-client.ts';
import { IMAGE_APP_DIR, IMAGE_PYTHON_LABEL, TS_LOADER_IN_IMAGE, runtimeImageTag } from './image-build.ts';
import { hostTreeEntries, tarReadable } from './tar.ts';

export interface DockerBackendOptions {
  /** unix:///var/run/docker.sock, tcp://host:port, ssh://user@host, or an endpoint with TLS files. */
  dockerHost: string | EngineEndpoint;
  /** Image of the built-in runtimes; default clipper-runtime:<package.json version>. */
  image?: string;
  /** Identifies this frontend's data directory; only containers labelled with it are ever touched. */
  owner: string;
  /** Logs of exited containers are kept under here. */
  logDir: string;
  /** The machine's name in handles and machines(); default the engine's own `Name`. */
  machineName?: string;
  /** Copy artifacts into containers instead of bind-mounting them; default: when the engine is not a unix socket. */
  copyArtifacts?: boolean;
  /** Health check: ping every `intervalMs` (0 = never), down after `downAfterMs` without an answer. Default 2 s / 10 s. */
  health?: { intervalMs: number; downAfterMs: number };
  /** Told when the machine goes up or down. */
  onState?: (state: MachineState, reason: string) => void;
  log?: (msg: string) => void;
}

export type MachineState = 'unknown' | 'up' | 'down';

export const DEFAULT_HEALTH = { intervalMs: 2000, downAfterMs: 10_000 } as const;

export const LABELS = {
  owner: 'clipper.owner', model: 'clipper.model', version: 'clipper.version', replica: 'clipper.replica', fingerprint: 'clipper.fingerprint',
} as const;

const MODEL_DIR = '/model';

/** A container this backend watches. */
interface Tracked {
  id: string;
  name: string;
  replicaId: string;
  model: string;
  version: string;
  limits: ResourceLimits;
  /** Removed from the engine (its logs are in the log file now), or its machine went down. */
  gone: boolean;
  /** The exit has been reported. */
  settled: boolean;
  settle: (exit: ExitInfo) => void;
  waitAbort: AbortController;
  handle: ReplicaHandle;
}

/** A replica discover() found, with the limits its container was created with. */
export interface DockerDiscovered extends Discovered {
  limits: ResourceLimits;
}

/** What placement needs of one engine: its usage and every running container's limits and use. */
export interface EngineSample {
  usage: MachineUsage;
  containers: Array<PlacedContainer & { replicaId?: string }>;
}

export class DockerBackend implements ReplicaBackend {
  readonly kind = 'docker';
  readonly engine: DockerEngine;
  readonly image: string;
  private readonly copyArtifacts: boolean;
  private readonly health: { intervalMs: number; downAfterMs: number };
  private readonly tracked = new Map<string, Tracked>();
  private readonly busy = new Set<Promise<unknown>>();
  private readonly cpuSamples = new Map<string, { ns: number; at: number }>();
  private readonly limitsOf = new Map<string, { cpus: number; memoryBytes: number }>();
  /** Names of containers being created: neither discover() nor the clean-up after a partition may take them for leftovers. */
  private readonly starting = new Set<string>();
  /** Containers discover() offered and the supervisor has not adopted or removed yet. */
  private readonly offered = new Set<string>();
  private engineName: Promise<string> | undefined;
  private stateNow: MachineState = 'unknown';
  private downReason = '';
  private lastAnswer = Date.now();
  private healthTimer: NodeJS.Timeout | undefined;
  private closed = false;
  private signalClosed!: () => void;
  private readonly closedPromise = new Promise<void>((r) => { this.signalClosed = r; });
  private warnedLoopback = false;

  constructor(private readonly opts: DockerBackendOptions) {
    this.engine = new DockerEngine(opts.dockerHost);
    this.image = opts.image ?? runtimeImageTag();
    this.copyArtifacts = opts.copyArtifacts ?? !isLocalEngine(this.engine.dockerHost);
    this.health = opts.health ?? DEFAULT_HEALTH;
    if (this.health.intervalMs > 0) this.scheduleHealth(0);
  }

  get state(): MachineState { return this.stateNow; }
  /** Why the machine is down ('' when it is not). */
  get whyDown(): string { return this.stateNow === 'down' ? this.downReason : ''; }
  get name(): string { return this.opts.machineName ?? this.engine.dockerHost; }

  async start(spec: ReplicaSpec): Promise<ReplicaHandle> {
    if (this.closed) throw new Error('the Docker backend is closed');
    if (this.stateNow === 'down') throw new ServingError('UNAVAILABLE', `machine ${this.name} is down (${this.downReason})`);
    const v = spec.version;
    const body = await this.containerSpec(spec);
    const machine = await this.machineName();
    const name = containerName(v, spec.replicaId);
    this.starting.add(name);
    try {
      const id = await this.engine.createContainer(name, body);
      try {
        if (this.copyArtifacts && v.artifactPath) {
          // PUT /archive needs an existing directory: '/' is one, and the tar makes /model itself.
          await this.engine.putArchive(id, '/', tarReadable(hostTreeEntries(v.artifactPath, `${MODEL_DIR}/${basename(v.artifactPath)}`)));
        }
        await this.engine.startContainer(id);
      } catch (e) {
        await this.engine.removeContainer(id).catch(() => {});
        throw e;
      }
      this.log(`docker: started ${name} (${id.slice(0, 12)}) on ${machine} for replica ${spec.replicaId}${this.copyArtifacts && v.artifactPath ? ' (artifact copied in)' : ''}`);
      return this.track(id, name, spec.replicaId, v.name, v.version, spec.limits, machine).handle;
    } finally {
      this.starting.delete(name);
    }
  }

  async discover(): Promise<DockerDiscovered[]> {
    const found: DockerDiscovered[] = [];
    const list = await this.engine.listContainers({ all: true, labels: [`${LABELS.owner}=${this.opts.owner}`] });
    for (const c of list) {
      const labels = c.Labels ?? {};
      const cname = (c.Names[0] ?? c.Id).replace(/^\//, '');
      if (this.tracked.has(c.Id) || this.starting.has(cname)) continue;
      const meta = {
        id: c.Id, name: cname,
        replicaId: labels[LABELS.replica] ?? '', model: labels[LABELS.model] ?? '', version: labels[LABELS.version] ?? '',
      };
      if (c.State !== 'running' || !meta.replicaId || !meta.model || !meta.version) {
        await this.retire(meta, `found ${c.State} (${c.Status}) after a restart of the frontend; removed`);
        continue;
      }
      const inspect = await this.engine.inspectContainer(c.Id);
      const limits = { cpus: (inspect.HostConfig.NanoCpus ?? 0) / 1e9, memoryMb: (inspect.HostConfig.Memory ?? 0) / 1048576 };
      const machine = await this.machineName();
      this.offered.add(c.Id);
      found.push({
        replicaId: meta.replicaId,
        modelName: meta.model,
        modelVersion: meta.version,
        fingerprint: labels[LABELS.fingerprint] ?? '',
        limits,
        adopt: () => {
          this.offered.delete(meta.id);
          return this.track(meta.id, meta.name, meta.replicaId, meta.model, meta.version, limits, machine).handle;
        },
        remove: async () => {
          this.offered.delete(meta.id);
          await this.retire(meta, 'removed: left running by an earlier frontend and not wanted');
        },
      });
    }
    return found;
  }

  async pastLogs(modelName: string, modelVersion: string, replicaId: string, tail: number): Promise<string[] | undefined> {
    const lines = await tailFile(this.logFile(modelName, modelVersion, replicaId), tail);
    return lines.length ? lines : undefined;
  }

  /**
   * The engine reports its cores and memory but not the host's CPU time or load, so busy cores
   * are the sum of every running container's CPU rate since the previous sample (not only ours),
   * available memory is the total less the containers' usage, and load1 is 0 (unknown).
   */
  async machines(): Promise<MachineUsage[]> {
    return [(await this.sample()).usage];
  }

  /** Usage of the machine and each running container's limits and use (ours and others'). */
  async sample(): Promise<EngineSample> {
    const info = await this.engine.info();
    const running = await this.engine.listContainers();
    const now = Date.now();
    let busy = 0;
    let used = 0;
    const containers: EngineSample['containers'] = [];
    await Promise.all(running.map(async (c) => {
      const [s, limits] = await Promise.all([
        this.engine.containerStats(c.Id).catch(() => undefined),
        this.containerLimits(c.Id).catch(() => undefined),
      ]);
      const ns = s?.cpu_stats?.cpu_usage?.total_usage;
      let cores = 0;
      const bytes = s ? memoryInUse(s) : 0;
      if (s && ns !== undefined) {
        used += bytes;
        const prev = this.cpuSamples.get(c.Id);
        if (prev && now > prev.at) cores = Math.max(0, (ns - prev.ns) / 1e6 / (now - prev.at));
        busy += cores;
        this.cpuSamples.set(c.Id, { ns, at: now });
      }
      const labels = c.Labels ?? {};
      const ours = labels[LABELS.owner] === this.opts.owner;
      containers.push({
        cpus: limits?.cpus ?? 0, memoryBytes: limits?.memoryBytes ?? 0, usedCores: cores, usedBytes: bytes,
        ...(ours && labels[LABELS.model] ? { versionKey: versionKey(labels[LABELS.model]!, labels[LABELS.version] ?? ''), replicaId: labels[LABELS.replica] } : {}),
      });
    }));
    for (const id of this.cpuSamples.keys()) if (!running.some((c) => c.Id === id)) this.cpuSamples.delete(id);
    for (const id of this.limitsOf.keys()) if (!running.some((c) => c.Id === id)) this.limitsOf.delete(id);
    return {
      usage: {
        name: this.opts.machineName ?? info.Name, cores: info.NCPU, cpuBusyCores: Math.min(info.NCPU, Math.max(0, busy)),
        memoryTotalBytes: info.MemTotal, memoryAvailableBytes: Math.max(0, info.MemTotal - used), load1: 0,
      },
      containers,
    };
  }

  /** Pings the engine now (the health check does this on its own every interval). */
  async checkHealth(): Promise<MachineState> {
    try {
      await this.engine.ping(Math.min(5000, Math.max(1000, this.health.downAfterMs / 2)));
      this.lastAnswer = Date.now();
      if (this.stateNow !== 'up') await this.cameUp();
    } catch (e) {
      if (this.closed) return this.stateNow;
      const silent = Date.now() - this.lastAnswer;
      if (this.stateNow !== 'down' && silent >= this.health.downAfterMs) {
        this.wentDown(`engine did not answer for ${Math.round(silent / 1000)} s: ${errorMessage(e)}`);
      }
    }
    return this.stateNow;
  }

  /** Stops watching and closes sockets; containers keep running (the supervisor stops them first). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.healthTimer);
    this.signalClosed();
    for (const t of this.tracked.values()) t.waitAbort.abort();
    while (this.busy.size) await Promise.allSettled([...this.busy]);
    this.engine.close();
  }

  // ---------- health ----------

  private scheduleHealth(ms: number): void {
    if (this.closed) return;
    this.healthTimer = setTimeout(() => {
      void this.checkHealth().finally(() => this.scheduleHealth(this.health.intervalMs));
    }, ms);
    this.healthTimer.unref();
  }

  /** Every replica there ends now: the supervisor restarts them where it can. */
  private wentDown(why: string): void {
    this.stateNow = 'down';
    this.downReason = why;
    const reason = `machine ${this.name} unreachable (${why.split(':')[0]})`;
    this.log(`docker: machine ${this.name} is down: ${why}; ${this.tracked.size} replica(s) there are lost`);
    for (const t of [...this.tracked.values()]) {
      t.gone = true;
      t.waitAbort.abort();
      this.tracked.delete(t.id);
      this.settle(t, { reason, oom: false, cause: 'killed' });
    }
    // Whatever else waits on this engine (a start, an image transfer) fails now instead of hanging.
    this.engine.abortInflight(reason);
    this.opts.onState?.('down', why);
  }

  private async cameUp(): Promise<void> {
    const was = this.stateNow;
    this.stateNow = 'up';
    this.downReason = '';
    if (was === 'down') {
      this.log(`docker: machine ${this.name} answers again`);
      await this.removeLeftovers().catch((e: unknown) => this.log(`docker: could not clean up ${this.name} after it came back: ${errorMessage(e)}`));
    }
    this.opts.onState?.('up', was === 'down' ? 'answers again' : 'answers');
  }

  /** After a partition: our containers there that nothing tracks were replaced elsewhere. */
  private async removeLeftovers(): Promise<void> {
    const list = await this.engine.listContainers({ all: true, labels: [`${LABELS.owner}=${this.opts.owner}`] });
    for (const c of list) {
      const name = (c.Names[0] ?? c.Id).replace(/^\//, '');
      if (this.tracked.has(c.Id) || this.starting.has(name) || this.offered.has(c.Id)) continue;
      const labels = c.Labels ?? {};
      this.log(`docker: removing ${name} from ${this.name}: its replica ${labels[LABELS.replica] ?? '?'} was replaced while the machine was unreachable`);
      await this.retire(
        { id: c.Id, name, replicaId: labels[LABELS.replica] ?? '', model: labels[LABELS.model] ?? '', version: labels[LABELS.version] ?? '' },
        `removed when machine ${this.name} answered again: its replica was replaced while the machine was unreachable`,
      );
    }
  }

  // ---------- containers ----------

  private async containerSpec(spec: ReplicaSpec): Promise<ContainerCreate> {
    const v = spec.version;
    const modelPath = v.artifactPath ? `${MODEL_DIR}/${basename(v.artifactPath)}` : '';
    // The RPC endpoint goes to the replica as given: a remote machine needs the frontend's advertised address.
    const env = replicaEnv(v, spec.rpc, spec.replicaId, spec.limits, modelPath);
    if (this.copyArtifacts && !this.warnedLoopback && /^(127\.|localhost$|::1$|0\.0\.0\.0$)/.test(spec.rpc.host)) {
      this.warnedLoopback = true;
      this.log(`docker: warning: replicas on ${this.name} (${this.engine.dockerHost}) are told to reach the frontend at ${spec.rpc.host}, which is this machine only if the engine runs here`);
    }
    const { image, cmd } = await this.command(v, env);
    const host: HostConfig = {
      NetworkMode: 'host',
      // docker-init as PID 1 forwards SIGTERM to programs that install no handler of their own.
      Init: true,
      Binds: v.artifactPath && !this.copyArtifacts ? [`${v.artifactPath}:${modelPath}:ro`] : [],
      LogConfig: { Type: 'json-file', Config: { 'max-size': '10m', 'max-file': '2' } },
    };
    if (spec.limits.cpus > 0) host.NanoCpus = Math.round(spec.limits.cpus * 1e9);
    if (spec.limits.memoryMb > 0) host.Memory = host.MemorySwap = spec.limits.memoryMb * 1024 * 1024;
    return {
      Image: image,
      Cmd: cmd,
      Env: Object.entries(env).map(([k, val]) => `${k}=${val}`),
      Labels: {
        [LABELS.owner]: this.opts.owner, [LABELS.model]: v.name, [LABELS.version]: v.version,
        [LABELS.replica]: spec.replicaId, [LABELS.fingerprint]: fingerprint(spec),
      },
      // Locally a replica runs in its artifact's directory; the same here.
      WorkingDir: v.artifactPath ? MODEL_DIR : undefined,
      Tty: false,
      HostConfig: host,
    };
  }

  private async command(v: ModelVersion, env: Record<string, string>): Promise<{ image: string; cmd: string[] | undefined }> {
    const node = (runtime: string) => ['node', '--import', TS_LOADER_IN_IMAGE, `${IMAGE_APP_DIR}/src/runtimes/${runtime}/main.ts`];
    if (v.runtime === 'image') {
      if (!(await this.engine.inspectImage(v.containerName))) {
        this.log(`docker: image ${v.containerName} is not in the engine of ${this.name}; pulling it`);
        await this.engine.pullImage(v.containerName).catch((e: unknown) => {
          throw new ServingError('UNAVAILABLE', `image ${v.containerName} is not in the Docker engine at ${this.engine.dockerHost} and could not be pulled: ${errorMessage(e)}`);
        });
      }
      return { image: v.containerName, cmd: undefined };
    }
    const runtimeImage = await this.engine.inspectImage(this.image);
    if (!runtimeImage) {
      throw new ServingError('UNAVAILABLE', `the runtime image ${this.image} is not in the Docker engine at ${this.engine.dockerHost}: build it with \`clipper image build\``);
    }
    switch (v.runtime) {
      case 'js':
      case 'onnx':
      case 'spark':
        return { image: this.image, cmd: node(v.runtime) };
      case 'python':
        if (!runtimeImage.Config?.Labels?.[IMAGE_PYTHON_LABEL]) {
          throw new ServingError('INVALID_INPUT', `runtime python: the runtime image ${this.image} was built without python3: rebuild it with \`clipper image build\` on a machine with Debian's python3, python3-numpy and python3-zmq`);
        }
        Object.assign(env, { PYTHONPATH: `${IMAGE_APP_DIR}/python`, PYTHONUNBUFFERED: '1' });
        return { image: this.image, cmd: ['python3', '-m', 'clipper_container'] };
      case 'command':
        // `exec` so signals reach the program itself, not a shell.
        return { image: this.image, cmd: ['/bin/sh', '-c', `exec ${v.containerName}`] };
    }
  }

  private track(id: string, name: string, replicaId: string, model: string, version: string, limits: ResourceLimits, machine: string): Tracked {
    const existing = this.tracked.get(id);
    if (existing) return existing;
    let settle!: (exit: ExitInfo) => void;
    const exited = new Promise<ExitInfo>((r) => { settle = r; });
    const t = { id, name, replicaId, model, version, limits, gone: false, settled: false, settle, waitAbort: new AbortController() } as Tracked;
    const engine = this.engine;
    const ignorable = (e: unknown) => this.closed || t.gone || isEngineStatus(e, 304, 404, 409);
    t.handle = {
      replicaId, exited, enforcement: enforcementOf(limits), machine, ref: { container: id.slice(0, 12) },
      stop: async (graceMs) => {
        if (!t.gone) {
          const stopping = engine.stopContainer(id, Math.max(0, Math.ceil(graceMs / 1000))).catch((e: unknown) => {
            if (!ignorable(e)) this.log(`docker: stopping ${name} failed: ${errorMessage(e)}`);
          });
          // An engine that stops answering must not hold the caller past the machine going down.
          await Promise.race([stopping, exited, this.closedPromise]);
        }
        await Promise.race([exited, this.closedPromise]);
      },
      kill: () => {
        if (t.gone) return;
        engine.killContainer(id).catch((e: unknown) => {
          if (!ignorable(e)) this.log(`docker: killing ${name} failed: ${errorMessage(e)}`);
        });
      },
      stats: async () => {
        if (t.gone) return undefined;
        let s: ContainerStats;
        try {
          s = await engine.containerStats(id);
        } catch (e) {
          if (ignorable(e)) return undefined;
          throw e;
        }
        const ns = s.cpu_stats?.cpu_usage?.total_usage;
        if (ns === undefined || s.memory_stats?.usage === undefined) return undefined; // not running
        return { cpuSeconds: ns / 1e9, rssBytes: memoryInUse(s) };
      },
      logs: async (tail) => {
        if (!t.gone) {
          try {
            return toLines(await engine.containerLogs(id, { tail })).slice(-tail);
          } catch (e) {
            if (!ignorable(e)) throw e;
          }
        }
        return tailFile(this.logFile(model, version, replicaId), tail);
      },
    };
    this.tracked.set(id, t);
    if (this.stateNow === 'down') {
      // Went down while it was being started.
      t.gone = true;
      this.tracked.delete(id);
      this.settle(t, { reason: `machine ${this.name} unreachable (${this.downReason.split(':')[0]})`, oom: false, cause: 'killed' });
    } else {
      void this.watch(t);
    }
    return t;
  }

  private settle(t: Tracked, exit: ExitInfo): void {
    if (t.settled) return;
    t.settled = true;
    t.settle(exit);
  }

  /** Reports the exit once the container has exited and been retired; never if the backend closes or the machine goes down first. */
  private async watch(t: Tracked): Promise<void> {
    let status: number | undefined;
    for (let attempt = 0; ; attempt++) {
      try {
        status = (await this.engine.waitContainer(t.id, t.waitAbort.signal)).StatusCode;
        break;
      } catch (e) {
        if (this.closed || t.settled) return;
        if (isEngineStatus(e, 404)) break; // removed behind our back
        this.log(`docker: lost the wait on ${t.name} (${errorMessage(e)}); waiting again`);
        await new Promise((r) => setTimeout(r, Math.min(5000, 250 * 2 ** attempt)));
        if (this.closed || t.settled) return;
      }
    }
    if (t.settled) return;
    await this.whileBusy(async () => {
      const exit = await this.engine.inspectContainer(t.id).then(
        (c) => describeExit(c),
        (): ExitInfo => (status === undefined
          ? { reason: 'container removed outside Clipper', oom: false, cause: 'killed' }
          : { reason: `exited with code ${status}`, oom: false, cause: exitCause({ code: status }) }),
      );
      await this.retire(t, exit.reason);
      if (t.settled) return;
      t.gone = true;
      this.tracked.delete(t.id);
      this.log(`docker: ${t.name} ${exit.reason}`);
      this.settle(t, exit);
    });
  }

  /** Appends the container's output to its replica's log file, then removes the container. */
  private retire(c: { id: string; name: string; replicaId: string; model: string; version: string }, note: string): Promise<void> {
    return this.whileBusy(async () => {
      try {
        const text = await this.engine.containerLogs(c.id);
        const file = this.logFile(c.model || 'unknown', c.version || 'unknown', c.replicaId || c.name);
        await mkdir(join(file, '..'), { recursive: true });
        await appendFile(file, `=== container ${c.name} (${c.id.slice(0, 12)}): ${note} ===\n${text}${text && !text.endsWith('\n') ? '\n' : ''}`);
      } catch (e) {
        if (!isEngineStatus(e, 404)) this.log(`docker: could not save the logs of ${c.name}: ${errorMessage(e)}`);
      }
      await this.engine.removeContainer(c.id).catch((e: unknown) => {
        if (!isEngineStatus(e, 404, 409)) this.log(`docker: could not remove ${c.name}: ${errorMessage(e)}`);
      });
    });
  }

  private whileBusy<T>(work: () => Promise<T>): Promise<T> {
    const p = work();
    this.busy.add(p);
    void p.finally(() => this.busy.delete(p)).catch(() => {});
    return p;
  }

  /** Limits of a running container (ours or not), read once. */
  private async containerLimits(id: string): Promise<{ cpus: number; memoryBytes: number }> {
    const known = this.limitsOf.get(id);
    if (known) return known;
    const c = await this.engine.inspectContainer(id);
    const l = { cpus: (c.HostConfig.NanoCpus ?? 0) / 1e9, memoryBytes: c.HostConfig.Memory ?? 0 };
    this.limitsOf.set(id, l);
    return l;
  }

  private machineName(): Promise<string> {
    if (this.opts.machineName) return Promise.resolve(this.opts.machineName);
    this.engineName ??= this.engine.info().then((i) => i.Name).catch((e: unknown) => {
      this.engineName = undefined;
      throw e;
    });
    return this.engineName;
  }

  private logFile(model: string, version: string, replicaId: string): string {
    return replicaLogFile(this.opts.logDir, model, version, replicaId);
  }

  private log(msg: string): void {
    this.opts.log?.(msg);
  }
}

function enforcementOf(limits: ResourceLimits): Enforcement {
  return { cpu: limits.cpus > 0 ? 'docker' : 'none set', memory: limits.memoryMb > 0 ? 'docker' : 'none set' };
}

/** `clipper-<model>-<version>-<index>-<random>`, within Docker's [a-zA-Z0-9][a-zA-Z0-9_.-]* */
export function containerName(v: Pick<ModelVersion, 'name' | 'version'>, replicaId: string): string {
  const index = /(\d+)$/.exec(replicaId)?.[1] ?? '0';
  const part = (s: string) => s.replace(/[^a-zA-Z0-9_.-]+/g, '-').slice(0, 40);
  return `clipper-${part(v.name)}-${part(v.version)}-${index}-${randomBytes(3).toString('hex')}`;
}

export function describeExit(c: Pick<ContainerInspect, 'State' | 'HostConfig'>): ExitInfo {
  const { State: s, HostConfig: h } = c;
  if (s.OOMKilled) return { reason: h.Memory ? `out of memory (limit ${Math.round(h.Memory / 1048576)} MiB)` : 'out of memory', oom: true, cause: 'killed' };
  const signal = s.ExitCode > 128 ? Object.entries(constants.signals).find(([, n]) => n === s.ExitCode - 128)?.[0] : undefined;
  return { reason: `exited with code ${s.ExitCode}${signal ? ` (${signal})` : ''}${s.Error ? `: ${s.Error}` : ''}`, oom: false, cause: exitCause({ code: s.ExitCode }) };
}

/** Memory in use less the page cache the kernel can drop (cgroup v1: total_inactive_file, v2: inactive_file). */
function memoryInUse(s: ContainerStats): number {
  const usage = s.memory_stats?.usage ?? 0;
  const st = s.memory_stats?.stats ?? {};
  const inactive = st.total_inactive_file ?? st.inactive_file ?? st.cache ?? 0;
  return inactive < usage ? usage - inactive : usage;
}

function toLines(text: string): string[] {
  const lines = text.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  return lines;
}
