/**
 * Local backend: each replica is a child process of this server.
 *   STARTING → READY (registered over RPC) → STOPPING → STOPPED
 *   STARTING/READY → BACKOFF (exited unasked) → STARTING (after 0.25 s, doubling to 10 s; reset after 30 s up)
 * It signals only processes it spawned. Each replica's stdout/stderr go to
 * <data>/logs/<model>/<version>/<replica>.log. Emits 'replica-stopping' (replicaId) and
 * 'replica-exit' (replicaId, reason).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ServingError } from '../errors.ts';
import type { ModelVersion } from '../registry/types.ts';
import type { ContainerManager, ReplicaInfo, ReplicaProcessState } from './container-manager.ts';
import { launchSpec } from './launch.ts';

interface Slot {
  info: ReplicaInfo;
  version: ModelVersion;
  child: ChildProcess | undefined;
  backoffMs: number;
  timer: NodeJS.Timeout | undefined;
  exited: Promise<void> | undefined;
}

export interface LocalManagerOptions {
  dataDir: string;
  rpc: { host: string; port: number };
  stopGraceMs: number;
  log?: (msg: string) => void;
}

const MIN_BACKOFF = 250;
const MAX_BACKOFF = 10_000;
const HEALTHY_AFTER = 30_000;

export class LocalManager extends EventEmitter implements ContainerManager {
  private readonly slots = new Map<string, Slot>();
  private readonly waiters = new Set<() => void>();
  private closing = false;

  constructor(private readonly opts: LocalManagerOptions) {
    super();
  }

  async reconcile(model: string, versions: ModelVersion[], current: string | undefined): Promise<void> {
    if (this.closing) return;
    const stops: Array<Promise<void>> = [];
    for (const v of versions.filter((x) => x.name === model)) {
      const want = v.version === current ? v.replicas : 0;
      const have = this.slotsOf(v.name, v.version).filter((s) => s.info.state !== 'STOPPING' && s.info.state !== 'STOPPED');
      for (let i = 0; i < want; i++) {
        const id = replicaId(v, i);
        const slot = this.slots.get(id);
        if (!slot || slot.info.state === 'STOPPED') this.startSlot(id, v);
      }
      for (const s of have) if (indexOf(s.info.replicaId) >= want) stops.push(this.stopSlot(s));
    }
    // Versions no longer registered at all.
    for (const s of this.slots.values()) {
      if (s.info.modelName === model && !versions.some((v) => v.name === model && v.version === s.info.modelVersion)) stops.push(this.stopSlot(s));
    }
    await Promise.all(stops);
  }

  markReady(id: string | undefined, name: string, version: string): string | undefined {
    // A container that does not announce its replica id (a plain v3 container) is matched
    // to the longest-starting replica of its model version.
    const s = id !== undefined
      ? this.slots.get(id)
      : this.slotsOf(name, version).filter((x) => x.info.state === 'STARTING').sort((a, b) => (a.info.startedAt ?? 0) - (b.info.startedAt ?? 0))[0];
    if (!s || s.info.state !== 'STARTING') return undefined;
    s.info.state = 'READY';
    this.notify();
    return s.info.replicaId;
  }

  private notify(): void {
    for (const w of [...this.waiters]) w();
  }

  waitReady(name: string, version: string, count: number, timeoutMs: number): Promise<boolean> {
    return this.waitUntil(() => this.slotsOf(name, version).filter((s) => s.info.state === 'READY').length >= count, timeoutMs);
  }

  waitStopped(name: string, version: string, keep: number, timeoutMs: number): Promise<boolean> {
    return this.waitUntil(() => this.slotsOf(name, version).filter((s) => s.info.state !== 'STOPPED').length <= keep, timeoutMs);
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

  replicas(): ReplicaInfo[] {
    return [...this.slots.values()].filter((s) => s.info.state !== 'STOPPED').map((s) => ({ ...s.info }));
  }

  logs(name: string, version: string, id: string | undefined, tail: number): Array<{ replica_id: string; lines: string[] }> {
    const dir = this.logDir(name, version);
    const slots = this.slotsOf(name, version).map((s) => s.info.replicaId);
    const ids = id ? [id] : slots;
    if (id && !slots.includes(id) && !existsSync(join(dir, `${fileSafe(id)}.log`))) {
      throw new ServingError('REPLICA_NOT_FOUND', `model ${name}:${version} has no replica ${JSON.stringify(id)}`);
    }
    return ids.map((rid) => {
      const file = join(dir, `${fileSafe(rid)}.log`);
      const text = existsSync(file) ? readFileSync(file, 'utf8') : '';
      const lines = text.split('\n');
      if (lines[lines.length - 1] === '') lines.pop();
      return { replica_id: rid, lines: lines.slice(-tail) };
    });
  }

  async close(): Promise<void> {
    this.closing = true;
    await Promise.all([...this.slots.values()].map((s) => this.stopSlot(s)));
  }

  private slotsOf(name: string, version: string): Slot[] {
    return [...this.slots.values()].filter((s) => s.info.modelName === name && s.info.modelVersion === version);
  }

  private logDir(name: string, version: string): string {
    return join(this.opts.dataDir, 'logs', name, version);
  }

  private startSlot(id: string, v: ModelVersion): void {
    const existing = this.slots.get(id);
    const slot: Slot = existing ?? {
      info: { replicaId: id, modelName: v.name, modelVersion: v.version, state: 'STARTING', pid: undefined, restarts: 0, startedAt: undefined, logFile: '' },
      version: v, child: undefined, backoffMs: MIN_BACKOFF, timer: undefined, exited: undefined,
    };
    slot.version = v;
    this.slots.set(id, slot);
    this.spawnSlot(slot);
  }

  private spawnSlot(slot: Slot): void {
    const { info, version } = slot;
    const dir = this.logDir(info.modelName, info.modelVersion);
    mkdirSync(dir, { recursive: true });
    info.logFile = join(dir, `${fileSafe(info.replicaId)}.log`);
    const fd = openSync(info.logFile, 'a');
    const spec = launchSpec(version, this.opts.rpc, info.replicaId);
    let child: ChildProcess;
    try {
      child = spawn(spec.command, spec.args, { cwd: spec.cwd, env: { ...process.env, ...spec.env }, stdio: ['ignore', fd, fd] });
    } finally {
      closeSync(fd);
    }
    slot.child = child;
    info.state = 'STARTING';
    info.pid = child.pid;
    info.startedAt = Date.now();
    slot.exited = new Promise((resolve) => {
      child.once('error', (e) => {
        this.opts.log?.(`replica ${info.replicaId}: could not start ${spec.command}: ${e.message}`);
      });
      child.once('exit', (code, signal) => {
        resolve();
        this.onExit(slot, child, code, signal);
      });
    });
  }

  private onExit(slot: Slot, child: ChildProcess, code: number | null, signal: NodeJS.Signals | null): void {
    if (slot.child !== child) return;
    slot.child = undefined;
    const { info } = slot;
    info.pid = undefined;
    const reason = signal ? `killed by ${signal}` : `exited with code ${code}`;
    this.emit('replica-exit', info.replicaId, reason);
    if (info.state === 'STOPPING' || this.closing) {
      info.state = 'STOPPED';
      this.notify();
      return;
    }
    const upFor = Date.now() - (info.startedAt ?? 0);
    if (upFor > HEALTHY_AFTER) slot.backoffMs = MIN_BACKOFF;
    info.state = 'BACKOFF';
    info.restarts++;
    this.opts.log?.(`replica ${info.replicaId} ${reason}; restarting in ${slot.backoffMs} ms`);
    slot.timer = setTimeout(() => {
      slot.timer = undefined;
      if (info.state === 'BACKOFF') this.spawnSlot(slot);
    }, slot.backoffMs);
    slot.backoffMs = Math.min(MAX_BACKOFF, slot.backoffMs * 2);
  }

  private async stopSlot(slot: Slot): Promise<void> {
    const { info } = slot;
    if (slot.timer) clearTimeout(slot.timer);
    slot.timer = undefined;
    const child = slot.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) {
      info.state = 'STOPPED';
      return;
    }
    info.state = 'STOPPING';
    // Take it out of rotation first, so no new batch is sent to a replica that is going away.
    this.emit('replica-stopping', info.replicaId);
    child.kill('SIGTERM');
    const forced = setTimeout(() => child.kill('SIGKILL'), this.opts.stopGraceMs);
    await slot.exited;
    clearTimeout(forced);
    info.state = 'STOPPED';
    this.notify();
  }
}

function replicaId(v: ModelVersion, i: number): string {
  return `${v.name}:${v.version}#${i}`;
}
function indexOf(id: string): number {
  return Number(id.slice(id.lastIndexOf('#') + 1));
}
function fileSafe(id: string): string {
  return id.replace(/[^A-Za-z0-9._-]/g, '_');
}

export type { ReplicaProcessState };
