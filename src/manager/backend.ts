/**
 * The outside world of the supervisor: how a replica is started, stopped, measured and read.
 * The supervisor (states, restarts, limits, reconciling) is the same for every backend;
 * a backend only adapts an outside system (child processes, a Docker engine).
 */
import { constants } from 'node:os';
import { join } from 'node:path';
import type { MachineUsage } from '../measure/usage.ts';
import type { ModelVersion } from '../registry/types.ts';
import type { Enforcement, ResourceLimits } from './container-manager.ts';

export interface ReplicaSpec {
  replicaId: string;
  version: ModelVersion;
  limits: ResourceLimits;
  /** Where the replica reaches the frontend's RPC port. */
  rpc: { host: string; port: number };
}

/**
 * How a replica's process ended, as far as its inputs are concerned: it `crashed` by itself (an
 * exit, or a fatal signal of its own such as SIGSEGV or SIGABRT), or was `killed` from outside
 * (SIGKILL, SIGTERM, SIGINT, SIGHUP, out of memory, its container removed).
 */
export type ExitCause = 'crashed' | 'killed';

const FROM_OUTSIDE: ReadonlySet<string> = new Set(['SIGKILL', 'SIGTERM', 'SIGINT', 'SIGHUP']);

/** The cause from what the OS or the engine reports: a signal, or an exit code (128 + n is signal n). */
export function exitCause(x: { code?: number | null; signal?: string | null; oom?: boolean }): ExitCause {
  if (x.oom) return 'killed';
  const signal = x.signal ?? (x.code != null && x.code > 128 ? signalName(x.code - 128) : undefined);
  return signal !== undefined && FROM_OUTSIDE.has(signal) ? 'killed' : 'crashed';
}

function signalName(n: number): string | undefined {
  return Object.entries(constants.signals).find(([, v]) => v === n)?.[0];
}

export interface ExitInfo {
  /** Human-readable: "exited with code 1", "killed by SIGKILL", "out of memory (limit 64 MiB)". */
  reason: string;
  /** Killed by the kernel's OOM killer (or Docker's OOMKilled). */
  oom: boolean;
  cause: ExitCause;
}

export interface ReplicaHandle {
  readonly replicaId: string;
  /** Resolves once when the process/container has exited. */
  readonly exited: Promise<ExitInfo>;
  readonly enforcement: Enforcement;
  readonly machine: string;
  /** What names it outside, for the server log only (the API never shows it): its pid, or its container's id. */
  readonly ref?: { pid: number } | { container: string };
  /** SIGTERM (docker stop), then SIGKILL after graceMs; resolves when it has exited. */
  stop(graceMs: number): Promise<void>;
  /** SIGKILL now. */
  kill(): void;
  /** Cumulative CPU seconds and current resident memory; undefined once gone. */
  stats(): Promise<{ cpuSeconds: number; rssBytes: number } | undefined>;
  /** The last `tail` lines of its output. */
  logs(tail: number): Promise<string[]>;
}

/** A replica found from an earlier run of the frontend (Docker: a labelled container). */
export interface Discovered {
  replicaId: string;
  modelName: string;
  modelVersion: string;
  /** artifact hash + limits it was started with, to tell whether it still matches. */
  fingerprint: string;
  adopt(): ReplicaHandle;
  remove(): Promise<void>;
}

export interface ReplicaBackend {
  readonly kind: string;
  start(spec: ReplicaSpec): Promise<ReplicaHandle>;
  /** Replicas left running by an earlier frontend on this data directory. */
  discover(): Promise<Discovered[]>;
  /** Logs of a replica that is no longer running (kept by the backend after exit). */
  pastLogs(modelName: string, modelVersion: string, replicaId: string, tail: number): Promise<string[] | undefined>;
  machines(): Promise<MachineUsage[]>;
  close(): Promise<void>;
}

/** Where a replica's output is kept, whatever runs it: <logRoot>/<model>/<version>/<replica>.log. */
export function replicaLogFile(logRoot: string, model: string, version: string, replicaId: string): string {
  return join(logRoot, model, version, `${replicaId.replace(/[^A-Za-z0-9._-]/g, '_')}.log`);
}

/** What a replica was started with; a discovered replica whose fingerprint differs is replaced. */
export function fingerprint(spec: Pick<ReplicaSpec, 'version' | 'limits'>): string {
  return `${spec.version.artifactHash}|${spec.version.runtime}|${spec.version.containerName}|${spec.limits.cpus}|${spec.limits.memoryMb}`;
}
