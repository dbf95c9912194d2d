/**
 * Local backend: each replica is a child process of this server. Output goes to
 * <data>/logs/<model>/<version>/<replica>.log. Limits go through cgroups where this server can
 * write them; memory falls back to the supervisor's watchdog, CPU is then reported as not
 * enforced. Replicas exit by themselves when the frontend that started them dies
 * (CLIPPER_PARENT_PID), so there is nothing to discover after a restart.
 *
 * A log file that cannot be opened (read-only or full data directory, no permission) does not
 * stop a replica: it starts anyway with its output piped into memory (the last MEMORY_LOG_LINES
 * lines, which `get_replica_logs` shows, headed by why the file was not used), and the server
 * logs the reason once. A replica that cannot log is still worth serving with; one that never
 * starts leaves its model without capacity over a disk problem it does not share.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, openSync } from 'node:fs';
import type { Readable } from 'node:stream';
import { appendFile, open } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { MachineSampler, readProcess } from '../measure/proc.ts';
import type { MachineUsage } from '../measure/usage.ts';
import { exitCause, replicaLogFile, type Discovered, type ExitInfo, type ReplicaBackend, type ReplicaHandle, type ReplicaSpec } from './backend.ts';
import { createCgroupLimiter, type CgroupLimiter } from './cgroups.ts';
import type { Enforcement } from './container-manager.ts';
import { launchSpec } from './launch.ts';

/** Lines of output kept per replica when its log file cannot be written. */
export const MEMORY_LOG_LINES = 1000;
const MAX_LINE_CHARS = 4096;

export class ProcessBackend implements ReplicaBackend {
  readonly kind = 'local';
  private readonly machineName = hostname();
  private readonly machine = new MachineSampler(this.machineName);
  private limiter: Promise<CgroupLimiter>;
  /** Output of replicas whose log file could not be opened, by replica id (the latest run of each). */
  private readonly memoryLogs = new Map<string, MemoryLog>();

  constructor(private readonly dataDir: string, private readonly log: (msg: string) => void = () => {}) {
    const id = createHash('sha1').update(dataDir).digest('hex').slice(0, 8);
    this.limiter = createCgroupLimiter(`clipper-${id}`);
  }

  async start(spec: ReplicaSpec): Promise<ReplicaHandle> {
    const launch = launchSpec(spec.version, spec.rpc, spec.replicaId, spec.limits);
    const limiter = await this.limiter;
    const wanted = spec.limits.cpus > 0 || spec.limits.memoryMb > 0;
    let refused: string | undefined;
    const cgroup = wanted ? await limiter.create(spec.replicaId, spec.limits).catch((e: Error) => { refused = e.message; return undefined; }) : undefined;
    const enforcement: Enforcement = {
      cpu: spec.limits.cpus > 0 ? (cgroup ? limiter.cpuEnforcement : `not enforced: ${refused ?? 'no writable cgroup'}`) : 'none set',
      memory: spec.limits.memoryMb > 0
        ? (cgroup && !limiter.memoryEnforcement.startsWith('not enforced') ? limiter.memoryEnforcement : 'watchdog (no writable memory cgroup)')
        : 'none set',
    };
    const { command, args } = cgroup ? cgroup.wrap(launch.command, launch.args) : launch;
    const logFile = this.logFile(spec.version.name, spec.version.version, spec.replicaId);
    const output = openLog(logFile);
    let memory: MemoryLog | undefined;
    if (typeof output === 'string') {
      memory = new MemoryLog(`[clipper] output of ${spec.replicaId} is kept in memory (last ${MEMORY_LOG_LINES} lines): cannot write ${logFile}: ${output}`);
      this.memoryLogs.set(spec.replicaId, memory);
      this.log(`replica ${spec.replicaId}: cannot write its log file ${logFile} (${output}); keeping its output in memory`);
    } else this.memoryLogs.delete(spec.replicaId);
    let child;
    try {
      const stdio = typeof output === 'number' ? output : 'pipe';
      child = spawn(command, args, { cwd: launch.cwd, env: { ...process.env, ...launch.env }, stdio: ['ignore', stdio, stdio] });
    } finally {
      if (typeof output === 'number') closeSync(output);
    }
    if (memory) {
      memory.follow(child.stdout!);
      memory.follow(child.stderr!);
    }
    const exited = new Promise<ExitInfo>((resolve) => {
      child.once('error', (e) => resolve({ reason: `could not start ${launch.command}: ${e.message}`, oom: false, cause: 'crashed' }));
      child.once('exit', (code, signal) => {
        void (async () => {
          const oom = cgroup ? (await cgroup.oomKills().catch(() => 0)) > 0 : false;
          await cgroup?.remove().catch(() => {});
          const reason = oom
            ? `out of memory (limit ${spec.limits.memoryMb} MiB; killed by the kernel)`
            : signal ? `killed by ${signal}` : `exited with code ${code}`;
          // The reason goes into the replica's own log too, where an operator looks first.
          if (memory) memory.push(`[clipper] replica ${spec.replicaId}: ${reason}`);
          else await appendFile(logFile, `[clipper] replica ${spec.replicaId}: ${reason}\n`).catch(() => {});
          resolve({ reason, oom, cause: exitCause({ code, signal, oom }) });
        })();
      });
    });
    const pid = child.pid;
    return {
      replicaId: spec.replicaId,
      exited,
      enforcement,
      machine: this.machineName,
      ref: pid === undefined ? undefined : { pid },
      kill: () => { child.kill('SIGKILL'); },
      stop: async (graceMs) => {
        if (child.exitCode !== null || child.signalCode !== null) return;
        child.kill('SIGTERM');
        const forced = setTimeout(() => child.kill('SIGKILL'), graceMs);
        await exited;
        clearTimeout(forced);
      },
      stats: async () => (pid === undefined || child.exitCode !== null || child.signalCode !== null ? undefined : readProcess(pid)),
      logs: async (tail) => (memory ? memory.tail(tail) : tailFile(logFile, tail)),
    };
  }

  async discover(): Promise<Discovered[]> {
    return [];
  }

  async pastLogs(name: string, version: string, replicaId: string, tail: number): Promise<string[] | undefined> {
    const memory = this.memoryLogs.get(replicaId);
    if (memory) return memory.tail(tail);
    const file = this.logFile(name, version, replicaId);
    return existsSync(file) ? tailFile(file, tail) : undefined;
  }

  async machines(): Promise<MachineUsage[]> {
    return [await this.machine.sample()];
  }

  async close(): Promise<void> {
    await (await this.limiter).close().catch(() => {});
  }

  private logFile(name: string, version: string, replicaId: string): string {
    return replicaLogFile(join(this.dataDir, 'logs'), name, version, replicaId);
  }
}

/** Opens a replica's log file for appending; on a disk error, says why instead (EROFS, ENOSPC, EACCES...). */
function openLog(file: string): number | string {
  try {
    mkdirSync(join(file, '..'), { recursive: true });
    return openSync(file, 'a');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (!code) throw e;
    return code === 'EROFS' ? 'the data directory is read-only (EROFS)' : code === 'ENOSPC' ? 'the disk is full (ENOSPC)' : `${code}: ${(e as Error).message}`;
  }
}

/** A replica's output lines, bounded, for when its log file cannot be written. */
class MemoryLog {
  private lines: string[] = [];

  constructor(first: string) {
    this.push(first);
  }

  follow(stream: Readable): void {
    let partial = '';
    stream.setEncoding('utf8');
    stream.on('data', (chunk: string) => {
      const parts = (partial + chunk).split('\n');
      partial = parts.pop() ?? '';
      if (partial.length > MAX_LINE_CHARS) {
        parts.push(partial);
        partial = '';
      }
      for (const p of parts) this.push(p);
    });
    stream.on('end', () => { if (partial) this.push(partial); });
  }

  push(line: string): void {
    this.lines.push(line.length > MAX_LINE_CHARS ? `${line.slice(0, MAX_LINE_CHARS)}…` : line);
    if (this.lines.length > MEMORY_LOG_LINES * 2) this.lines = this.lines.slice(-MEMORY_LOG_LINES);
  }

  tail(n: number): string[] {
    return this.lines.slice(-Math.min(n, MEMORY_LOG_LINES));
  }
}

/** The last `tail` lines of a file, reading at most its last 4 MiB. */
export async function tailFile(file: string, tail: number): Promise<string[]> {
  let fh;
  try {
    fh = await open(file, 'r');
  } catch {
    return [];
  }
  try {
    const { size } = await fh.stat();
    const len = Math.min(size, 4 * 1024 * 1024);
    const buf = Buffer.alloc(len);
    await fh.read(buf, 0, len, size - len);
    const lines = buf.toString('utf8').split('\n');
    if (lines[lines.length - 1] === '') lines.pop();
    return lines.slice(-tail);
  } finally {
    await fh.close();
  }
}
