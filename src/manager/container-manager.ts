/** What the rest of the system needs from a resource manager backend (local processes, Kubernetes). */
import type { ModelVersion } from '../registry/types.ts';

export type ReplicaProcessState = 'STARTING' | 'READY' | 'BACKOFF' | 'STOPPING' | 'STOPPED';

export interface ReplicaInfo {
  replicaId: string;
  modelName: string;
  modelVersion: string;
  state: ReplicaProcessState;
  pid: number | undefined;
  restarts: number;
  startedAt: number | undefined;
  logFile: string;
}

export interface ContainerManager {
  /** Makes the running replicas of `model` match the registry: the current version at its count, others none. */
  reconcile(model: string, versions: ModelVersion[], current: string | undefined): Promise<void>;
  /** RPC saw a replica register (by id, or by model version when it sent none); returns the replica id it matched. */
  markReady(replicaId: string | undefined, name: string, version: string): string | undefined;
  /** Resolves when `count` replicas of the version are READY, false on timeout. */
  waitReady(name: string, version: string, count: number, timeoutMs: number): Promise<boolean>;
  /** Resolves when at most `keep` replicas of the version are left running, false on timeout. */
  waitStopped(name: string, version: string, keep: number, timeoutMs: number): Promise<boolean>;
  replicas(): ReplicaInfo[];
  logs(name: string, version: string, replicaId: string | undefined, tail: number): Array<{ replica_id: string; lines: string[] }>;
  close(): Promise<void>;
}
