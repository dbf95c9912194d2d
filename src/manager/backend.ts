/**
 * The outside world of the supervisor: how a replica is started, stopped, measured and read.
 * The supervisor (states, restarts, limits, reconciling) is the same for every backend;
 * a backend only adapts an outside system (child processes, a Docker engine).
 */
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

export interface ExitInfo {
  /** Human-readable: "exited with code 1", "killed by SIGKILL", "out of memory (limit 64 MiB)". */
  reason: string;
  /** Killed by the kernel's OOM killer (or Docker's OOMKilled). */
  oom: boolean;
}

export interface ReplicaHandle {
  readonly replicaId: string;
  /** Resolves once when the process/container has exited. */
  readonly exited: Promise<ExitInfo>;
  readonly enforcement: Enforcement;
  readonly machine: string;
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

/** What a replica was started with; a discovered replica whose fingerprint differs is replaced. */
export function fingerprint(spec: Pick<ReplicaSpec, 'version' | 'limits'>): string {
  return `${spec.version.artifactHash}|${spec.version.runtime}|${spec.version.containerName}|${spec.limits.cpus}|${spec.limits.memoryMb}`;
}
