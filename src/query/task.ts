/** One input waiting for one model version. */
export type TaskResult =
  /** `text`: the model's output as it came (decoded on demand by the cache). */
  | { ok: true; value: unknown; text?: string }
  | { ok: false; error: string; code: 'MODEL_ERROR' | 'WORKER_FAILED' | 'DEADLINE_EXCEEDED' | 'QUEUE_FULL' | 'OVERLOADED' | 'UNAVAILABLE' | 'QUARANTINED' };

export interface Task {
  input: Buffer;
  /** Absolute ms (clock time) after which the answer is useless. */
  deadline: number;
  enqueuedAt: number;
  attempts: number;
  /** Set once the query stopped waiting (answered, or defaulted at its deadline). */
  abandoned: boolean;
  /**
   * Set once the input was in flight on a replica that died with other inputs beside it:
   * from then on it travels alone, so a second death names it (see loss-policy.ts).
   */
  suspect?: boolean;
  done: (r: TaskResult) => void;
}
