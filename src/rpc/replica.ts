import type { Datatype } from '../v2/datatypes.ts';

/**
 * A model container connected over RPC. States:
 *   CONNECTED (heartbeat seen, not registered) → READY (registered) → EVICTED (silent, dead, or superseded)
 *   CONNECTED → REFUSED (registration refused: unknown model, bad input type, missing or wrong secret)
 * Only READY replicas receive work. A REFUSED identity gets no more answers (the container times
 * out and reconnects, and is judged again); it is forgotten once silent. EVICTED is final
 * (a reconnecting container gets a new identity).
 */
export type ReplicaState = 'CONNECTED' | 'READY' | 'REFUSED' | 'EVICTED';

export interface RpcOutput {
  ok: boolean;
  /** The output text, or the error message when !ok; a tensor's raw little-endian bytes when `tensor` is set. */
  value: Buffer;
  /** Set when the replica answered with a typed tensor (the `tensors` extension). */
  tensor?: { datatype: Exclude<Datatype, 'BYTES'>; shape: number[] };
  /** Time the container says it spent on the whole batch (the `tensors` extension), same on every output. */
  computeMs?: number;
}

export interface PendingCall {
  resolve: (outputs: RpcOutput[]) => void;
  reject: (e: Error) => void;
  count: number;
  sentAt: number;
}

export interface Replica {
  /** Hex of the ZeroMQ routing identity. */
  key: string;
  identity: Buffer;
  state: ReplicaState;
  modelName: string;
  modelVersion: string;
  inputTypeCode: number;
  /** Set by the resource manager through the environment; absent for foreign containers. */
  replicaId: string | undefined;
  /** Registered with a valid per-replica secret (false: a plain v3 container, accepted on loopback). */
  authenticated?: boolean;
  extensions: Set<string>;
  connectedAt: number;
  lastSeen: number;
  inflight: Map<number, PendingCall>;
}
