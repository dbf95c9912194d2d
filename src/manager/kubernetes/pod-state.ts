/**
 * What a pod says about its replica, as pure functions of the pod object (from a list or a
 * watch event) and what the manager itself knows (registered over RPC, judged unresponsive).
 *
 *   Pending (scheduling, pulling, initContainer)      → STARTING
 *   Running, not ready and not registered             → STARTING
 *   registered over RPC, or the readiness probe passes → READY
 *   judged unresponsive by RPC (being deleted)        → UNRESPONSIVE
 *   container waiting after a crash (CrashLoopBackOff) → BACKOFF
 *   deletionTimestamp set (terminating)               → STOPPING
 *   gone from the API                                  → STOPPED (no longer listed)
 */
import type { V1ContainerStatus, V1Pod } from '@kubernetes/client-node';
import { exitCause, type ExitCause } from '../backend.ts';
import type { ReplicaState } from '../container-manager.ts';
import { ANNOTATION } from './names.ts';

export interface PodFacts { registered: boolean; unresponsive: boolean }

function replicaStatus(pod: V1Pod): V1ContainerStatus | undefined {
  return pod.status?.containerStatuses?.find((c) => c.name === 'replica') ?? pod.status?.containerStatuses?.[0];
}

export function podReady(pod: V1Pod): boolean {
  return pod.status?.phase === 'Running' && (pod.status.conditions ?? []).some((c) => c.type === 'Ready' && c.status === 'True');
}

export function podState(pod: V1Pod, facts: PodFacts): ReplicaState {
  if (pod.metadata?.deletionTimestamp) return facts.unresponsive ? 'UNRESPONSIVE' : 'STOPPING';
  if (facts.unresponsive) return 'UNRESPONSIVE';
  const phase = pod.status?.phase;
  if (phase === 'Failed' || phase === 'Succeeded') return 'BACKOFF';
  const c = replicaStatus(pod);
  if (c?.state?.waiting && (c.restartCount ?? 0) > 0) return 'BACKOFF';
  if (c?.state?.terminated) return 'BACKOFF';
  if (facts.registered || podReady(pod)) return 'READY';
  return 'STARTING';
}

export function podRestarts(pod: V1Pod): number {
  return replicaStatus(pod)?.restartCount ?? 0;
}

/** The last time the replica container ended (it was restarted since), from `lastState.terminated`. */
export function lastTermination(pod: V1Pod): { reason: string; at: number; cause: ExitCause } | undefined {
  const t = replicaStatus(pod)?.lastState?.terminated ?? replicaStatus(pod)?.state?.terminated;
  if (!t) return undefined;
  const at = t.finishedAt ? new Date(t.finishedAt).getTime() : Date.now();
  if (t.reason === 'OOMKilled') {
    const mb = Number(pod.metadata?.annotations?.[ANNOTATION.memoryMb] ?? 0);
    return { reason: mb ? `out of memory (limit ${mb} MiB)` : 'out of memory', at, cause: 'killed' };
  }
  const why = t.reason && t.reason !== 'Error' && t.reason !== 'Completed' ? ` (${t.reason})` : '';
  return { reason: `exited with code ${t.exitCode}${why}${t.message ? `: ${t.message}` : ''}`, at, cause: exitCause({ code: t.exitCode }) };
}

export function podVersion(pod: V1Pod): { model: string; version: string } | undefined {
  const a = pod.metadata?.annotations ?? {};
  const model = a[ANNOTATION.model];
  const version = a[ANNOTATION.version];
  return model !== undefined && version !== undefined ? { model, version } : undefined;
}

export function podStartedAt(pod: V1Pod): number | undefined {
  const t = pod.status?.startTime ?? pod.metadata?.creationTimestamp;
  return t ? new Date(t).getTime() : undefined;
}

/** Parses a Kubernetes quantity ("250m", "1", "12345n"; "64Mi", "1G", "1000Ki") to a number of units. */
export function parseQuantity(q: string | number | undefined): number {
  if (q === undefined) return 0;
  if (typeof q === 'number') return q;
  const m = /^([0-9.eE+-]+)([a-zA-Z]*)$/.exec(q.trim());
  if (!m) return 0;
  const n = Number(m[1]);
  const mult: Record<string, number> = {
    '': 1, n: 1e-9, u: 1e-6, m: 1e-3, k: 1e3, M: 1e6, G: 1e9, T: 1e12, Ki: 1024, Mi: 1024 ** 2, Gi: 1024 ** 3, Ti: 1024 ** 4,
  };
  return n * (mult[m[2]!] ?? 1);
}
