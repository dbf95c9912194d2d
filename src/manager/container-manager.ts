/**
 * What the rest of the system needs from the resource manager, whatever runs the replicas
 * (local processes, Docker containers, Kubernetes). Callers see replica ids, states and
 * measurements — never a pid, a container id or a local path.
 *
 * Replica states, and the transitions the supervisor allows:
 *   STARTING → READY          registered over RPC
 *   STARTING → UNRESPONSIVE   did not register within the start timeout
 *   READY    → UNRESPONSIVE   silent past the heartbeat timeout, or a batch stuck past the predict timeout
 *   UNRESPONSIVE → BACKOFF    killed (SIGKILL after grace); restarted after the backoff
 *   STARTING/READY → BACKOFF  exited unasked (crash, out of memory)
 *   BACKOFF  → STARTING       the backoff delay passed
 *   any      → STOPPING → STOPPED   asked to stop (scale down, version superseded or deleted)
 */
import type { EventEmitter } from 'node:events';
import type { MachineUsage, ReplicaUsage } from '../measure/usage.ts';
import type { ModelVersion } from '../registry/types.ts';
import type { ExitCause } from './backend.ts';

export type ReplicaExitCause = ExitCause | 'stopped';

export type ReplicaState = 'STARTING' | 'READY' | 'UNRESPONSIVE' | 'BACKOFF' | 'STOPPING' | 'STOPPED';

export interface ResourceLimits {
  /** Cores (fractional allowed); 0 = no limit. */
  cpus: number;
  /** MiB; 0 = no limit. */
  memoryMb: number;
}

/** How a limit is enforced: 'cgroup', 'docker', 'watchdog' (RSS polled, killed over the limit), or 'not enforced: <why>'. */
export interface Enforcement { cpu: string; memory: string }

export interface ReplicaInfo {
  replicaId: string;
  modelName: string;
  modelVersion: string;
  state: ReplicaState;
  /** The machine it runs on. */
  machine: string;
  restarts: number;
  /** Epoch ms of the current (or last) start. */
  startedAt: number | undefined;
  /** Why it last exited or was killed, e.g. "out of memory (limit 64 MiB)". */
  lastExit: { reason: string; at: number } | undefined;
  limits: ResourceLimits;
  enforcement: Enforcement;
}

/** How many replicas of each version of one model should run; versions not listed run none. */
export interface VersionTarget { version: ModelVersion; replicas: number }

export interface ContainerManagerEvents {
  /** About to stop a replica: take it out of rotation before it goes. */
  'replica-stopping': [replicaId: string];
  /**
   * A replica's process or container is gone. `cause`: 'stopped' when the manager ended it (scaled
   * down, superseded, unresponsive); otherwise how it ended by itself or from outside (backend.ts).
   */
  'replica-exit': [replicaId: string, reason: string, cause: ReplicaExitCause];
}

export interface ContainerManager extends EventEmitter<ContainerManagerEvents> {
  /** 'local' | 'docker' | 'kubernetes' */
  readonly backend: string;
  /** Adopts or removes replicas left by an earlier run, then applies every model's targets. Called once, first. */
  start(targets: Map<string, VersionTarget[]>): Promise<void>;
  /** Makes the running replicas of `model` match `targets`. */
  apply(model: string, targets: VersionTarget[]): Promise<void>;
  /** RPC saw a replica register (by id, or by model version when it sent none); returns the replica id it matched. */
  markReady(replicaId: string | undefined, name: string, version: string): string | undefined;
  /** RPC gave up on a replica (silent, or a batch stuck): kill it and start it again. */
  markUnresponsive(replicaId: string, reason: string): void;
  /** True while a replica of the version is STARTING or in BACKOFF: work for it has a prospect. */
  isStarting(name: string, version: string): boolean;
  /** Resolves when `count` replicas of the version are READY, false on timeout. */
  waitReady(name: string, version: string, count: number, timeoutMs: number): Promise<boolean>;
  /** Resolves when at most `keep` replicas of the version are left running, false on timeout. */
  waitStopped(name: string, version: string, keep: number, timeoutMs: number): Promise<boolean>;
  replicas(): ReplicaInfo[];
  logs(name: string, version: string, replicaId: string | undefined, tail: number): Promise<Array<{ replica_id: string; lines: string[] }>>;
  /** CPU and memory of each running replica (cumulative counters turned into rates by the backend). */
  usage(): Promise<ReplicaUsage[]>;
  /** The machine(s) replicas run on. */
  machines(): Promise<MachineUsage[]>;
  close(): Promise<void>;
}
