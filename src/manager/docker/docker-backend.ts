/**
 * Docker backend: each replica is a container of one Docker engine, reached over its Engine API.
 * Containers use the host's network (the replica dials the frontend's RPC port on the host),
 * mount the model artifact read-only at /model/<name>, and carry labels (owner, model, version,
 * replica, fingerprint) so a later frontend on the same data directory finds and adopts them,
 * while a frontend with another data directory never touches them. Docker enforces the CPU and
 * memory limits. There is no Docker restart policy: the supervisor restarts. When a container
 * exits, its output is appended to <logDir>/<model>/<version>/<replica>.log and the container
 * is removed.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, appendFile } from 'node:fs/promises';
import { constants } from 'node:os';
import { basename, join } from 'node:path';
import { errorMessage, ServingError } from '../../errors.ts';
import type { MachineUsage } from '../../measure/usage.ts';
import type { ModelVersion } from '../../registry/types.ts';
import { exitCause, fingerprint, replicaLogFile, type Discovered, type ExitInfo, type ReplicaBackend, type ReplicaHandle, type ReplicaSpec } from '../backend.ts';
import type { Enforcement, ResourceLimits } from '../container-manager.ts';
import { replicaEnv } from '../launch.ts';
import { tailFile } from '../process-backend.ts';
import { DockerEngine, isEngineStatus, type ContainerCreate, type ContainerInspect, type ContainerStats, type HostConfig } from './engine-client.ts';
import { IMAGE_APP_DIR, IMAGE_PYTHON_LABEL, TSX_IN_IMAGE, runtimeImageTag } from './image-build.ts';

export interface DockerBackendOptions {
  /** unix:///var/run/docker.sock or tcp://host:port */
  dockerHost: string;
  /** Image of the built-in runtimes; default clipper-runtime:<package.json version>. */
  image?: string;
  /** Identifies this frontend's data directory; only containers labelled with it are ever touched. */
  owner: string;
  /** Logs of exited containers are kept under here. */
  logDir: string;
  log?: (msg: string) => void;
}

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
  /** Removed from the engine: its logs are in the log file now. */
  gone: boolean;
  handle: ReplicaHandle;
}

const NEVER = new Promise<never>(() => {});

export class DockerBackend implements ReplicaBackend {
  readonly kind = 'docker';
  private readonly engine: DockerEngine;
  private readonly image: string;
  private readonly tracked = new Map<string, Tracked>();
  private readonly busy = new Set<Promise<unknown>>();
  private readonly watching = new AbortController();
  private readonly cpuSamples = new Map<string, { ns: number; at: number }>();
  /** Replicas being started: discover() must not take their not yet tracked containers for leftovers. */
  private readonly starting = new Set<string>();
  private engineName: Promise<string> | undefined;
  private closed = false;
  private signalClosed!: () => void;
  private readonly closedPromise = new Promise<void>((r) => { this.signalClosed = r; });

  constructor(private readonly opts: DockerBackendOptions) {
    this.engine = new DockerEngine(opts.dockerHost);
    this.image = opts.image ?? runtimeImageTag();
  }

  async start(spec: ReplicaSpec): Promise<ReplicaHandle> {
    if (this.closed) throw new Error('the Docker backend is closed');
    const v = spec.version;
    const body = await this.containerSpec(spec);
    const machine = await this.machineName();
    const name = containerName(v, spec.replicaId);
    this.starting.add(spec.replicaId);
    try {
      const id = await this.engine.createContainer(name, body);
      try {
        await this.engine.startContainer(id);
      } catch (e) {
        await this.engine.removeContainer(id).catch(() => {});
        throw e;
      }
      this.log(`docker: started ${name} (${id.slice(0, 12)}) for replica ${spec.replicaId}`);
      return this.track(id, name, spec.replicaId, v.name, v.version, enforcementOf(spec.limits), machine).handle;
    } finally {
      this.starting.delete(spec.replicaId);
    }
  }

  async discover(): Promise<Discovered[]> {
    const found: Discovered[] = [];
    const list = await this.engine.listContainers({ all: true, labels: [`${LABELS.owner}=${this.opts.owner}`] });
    for (const c of list) {
      const labels = c.Labels ?? {};
      if (this.tracked.has(c.Id) || this.starting.has(labels[LABELS.replica] ?? '')) continue;
      const meta = {
        id: c.Id, name: (c.Names[0] ?? c.Id).replace(/^\//, ''),
        replicaId: labels[LABELS.replica] ?? '', model: labels[LABELS.model] ?? '', version: labels[LABELS.version] ?? '',
      };
      if (c.State !== 'running' || !meta.replicaId || !meta.model || !meta.version) {
        await this.retire(meta, `found ${c.State} (${c.Status}) after a restart of the frontend; removed`);
        continue;
      }
      const inspect = await this.engine.inspectContainer(c.Id);
      const enforcement = enforcementOf({ cpus: (inspect.HostConfig.NanoCpus ?? 0) / 1e9, memoryMb: (inspect.HostConfig.Memory ?? 0) / 1048576 });
      const machine = await this.machineName();
      found.push({
        replicaId: meta.replicaId,
        modelName: meta.model,
        modelVersion: meta.version,
        fingerprint: labels[LABELS.fingerprint] ?? '',
        adopt: () => this.track(meta.id, meta.name, meta.replicaId, meta.model, meta.version, enforcement, machine).handle,
        remove: () => this.retire(meta, 'removed: left running by an earlier frontend and not wanted'),
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
   * are the sum of every running container's CPU rate since the previous call (not only ours),
   * available memory is the total less the containers' usage, and load1 is 0 (unknown).
   */
  async machines(): Promise<MachineUsage[]> {
    const info = await this.engine.info();
    const running = await this.engine.listContainers();
    const now = Date.now();
    let busy = 0;
    let used = 0;
    await Promise.all(running.map(async (c) => {
      const s = await this.engine.containerStats(c.Id).catch(() => undefined);
      const ns = s?.cpu_stats?.cpu_usage?.total_usage;
      if (!s || ns === undefined) return;
      used += memoryInUse(s);
      const prev = this.cpuSamples.get(c.Id);
      if (prev && now > prev.at) busy += (ns - prev.ns) / 1e6 / (now - prev.at);
      this.cpuSamples.set(c.Id, { ns, at: now });
    }));
    for (const id of this.cpuSamples.keys()) if (!running.some((c) => c.Id === id)) this.cpuSamples.delete(id);
    return [{
      name: info.Name, cores: info.NCPU, cpuBusyCores: Math.min(info.NCPU, Math.max(0, busy)),
      memoryTotalBytes: info.MemTotal, memoryAvailableBytes: Math.max(0, info.MemTotal - used), load1: 0,
    }];
  }

  /** Stops watching and closes sockets; containers keep running (the supervisor stops them first). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.signalClosed();
    this.watching.abort();
    while (this.busy.size) await Promise.allSettled([...this.busy]);
    this.engine.close();
  }

  private async containerSpec(spec: ReplicaSpec): Promise<ContainerCreate> {
    const v = spec.version;
    const modelPath = v.artifactPath ? `${MODEL_DIR}/${basename(v.artifactPath)}` : '';
    const env = replicaEnv(v, spec.rpc, spec.replicaId, spec.limits, modelPath);
    const { image, cmd } = await this.command(v, env);
    const host: HostConfig = {
      NetworkMode: 'host',
      // docker-init as PID 1 forwards SIGTERM to programs that install no handler of their own.
      Init: true,
      Binds: v.artifactPath ? [`${v.artifactPath}:${modelPath}:ro`] : [],
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
    const node = (runtime: string) => ['node', '--import', TSX_IN_IMAGE, `${IMAGE_APP_DIR}/src/runtimes/${runtime}/main.ts`];
    if (v.runtime === 'image') {
      if (!(await this.engine.inspectImage(v.containerName))) {
        this.log(`docker: image ${v.containerName} is not in the engine; pulling it`);
        await this.engine.pullImage(v.containerName).catch((e: unknown) => {
          throw new ServingError('UNAVAILABLE', `image ${v.containerName} is not in the Docker engine at ${this.opts.dockerHost} and could not be pulled: ${errorMessage(e)}`);
        });
      }
      return { image: v.containerName, cmd: undefined };
    }
    const runtimeImage = await this.engine.inspectImage(this.image);
    if (!runtimeImage) {
      throw new ServingError('UNAVAILABLE', `the runtime image ${this.image} is not in the Docker engine at ${this.opts.dockerHost}: build it with \`clipper image build\``);
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

  private track(id: string, name: string, replicaId: string, model: string, version: string, enforcement: Enforcement, machine: string): Tracked {
    const existing = this.tracked.get(id);
    if (existing) return existing;
    const t = { id, name, replicaId, model, version, gone: false } as Tracked;
    const exited = this.watch(t);
    const engine = this.engine;
    const ignorable = (e: unknown) => this.closed || isEngineStatus(e, 304, 404, 409);
    t.handle = {
      replicaId, exited, enforcement, machine,
      stop: async (graceMs) => {
        if (!t.gone) {
          await engine.stopContainer(id, Math.max(0, Math.ceil(graceMs / 1000))).catch((e: unknown) => {
            if (!ignorable(e)) this.log(`docker: stopping ${name} failed: ${errorMessage(e)}`);
          });
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
    return t;
  }

  /** Resolves once the container has exited and been retired; never if the backend closes first. */
  private async watch(t: Tracked): Promise<ExitInfo> {
    let status: number | undefined;
    for (let attempt = 0; ; attempt++) {
      try {
        status = (await this.engine.waitContainer(t.id, this.watching.signal)).StatusCode;
        break;
      } catch (e) {
        if (this.closed) return NEVER;
        if (isEngineStatus(e, 404)) break; // removed behind our back
        this.log(`docker: lost the wait on ${t.name} (${errorMessage(e)}); waiting again`);
        await new Promise((r) => setTimeout(r, Math.min(5000, 250 * 2 ** attempt)));
      }
    }
    return this.whileBusy(async () => {
      const exit = await this.engine.inspectContainer(t.id).then(
        (c) => describeExit(c),
        (): ExitInfo => (status === undefined
          ? { reason: 'container removed outside Clipper', oom: false, cause: 'killed' }
          : { reason: `exited with code ${status}`, oom: false, cause: exitCause({ code: status }) }),
      );
      await this.retire(t, exit.reason);
      t.gone = true;
      this.tracked.delete(t.id);
      this.log(`docker: ${t.name} ${exit.reason}`);
      return exit;
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

  private machineName(): Promise<string> {
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
