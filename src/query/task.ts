import type { ModelOutput } from './output.ts';

/** One input waiting for one model version. */
export type TaskResult =
  | { ok: true; output: ModelOutput }
  | { ok: false; error: string; code: 'MODEL_ERROR' | 'WORKER_FAILED' | 'DEADLINE_EXCEEDED' | 'QUEUE_FULL' | 'OVERLOADED' | 'UNAVAILABLE' | 'QUARANTINED' };

/**
 * What a task reports to its request's trace (spans queue → rpc → container; see
 * ../observability/tracing.ts). Times are clock ms.
 */
export interface TaskTrace {
  /** The task left its queue in a batch of `size` inputs for `replica`. */
  sent(at: number, replica: string, size: number): void;
  /**
   * Its batch came back (or failed). `computeMs`: the time the container says it spent on the
   * batch, when it reports it (the `tensors` RPC extension).
   */
  answered(at: number, ok: boolean, computeMs?: number): void;
}

export interface Task {
  input: Buffer;
  /** Absolute ms (clock time) after which the answer is useless. */
  deadline: number;
  enqueuedAt: number;
  /** The most a batch carrying this input may take (ms): its SLO's share. Default: the queue's. */
  budgetMs?: number;
  attempts: number;
  /** Set once the query stopped waiting (answered, or defaulted at its deadline). */
  abandoned: boolean;
  /**
   * Set once the input was in flight on a replica that died with other inputs beside it:
   * from then on it travels alone, so a second death names it (see loss-policy.ts).
   */
  suspect?: boolean;
  trace?: TaskTrace;
  done: (r: TaskResult) => void;
}
