/** One input waiting for one model version. */
export type TaskResult =
  | { ok: true; value: unknown; bytes?: number }
  | { ok: false; error: string; code: 'MODEL_ERROR' | 'WORKER_FAILED' | 'DEADLINE_EXCEEDED' | 'QUEUE_FULL' | 'OVERLOADED' | 'UNAVAILABLE' };

export interface Task {
  input: Buffer;
  /** Absolute ms (clock time) after which the answer is useless. */
  deadline: number;
  enqueuedAt: number;
  attempts: number;
  /** Set once the query stopped waiting (answered, or defaulted at its deadline). */
  abandoned: boolean;
  done: (r: TaskResult) => void;
}
