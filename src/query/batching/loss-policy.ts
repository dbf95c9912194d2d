/**
 * What the loss of a replica says about the inputs it held: the query-of-death decision, pure.
 *
 * A model that crashes on one input would otherwise kill every replica in turn, as the lost batch
 * is retried on each. So a batch lost with a replica that died is never simply retried:
 *
 *   cause of the loss      input was alone in flight          input was one of several
 *   ─────────────────      ──────────────────────────         ────────────────────────
 *   crashed (exited or     quarantine: the crash is its own   isolate: retried alone (a batch of
 *   aborted by itself)                                          one, on an idle replica)
 *   killed (SIGKILL or     quarantine if it was already a     isolate
 *   SIGTERM from outside,  suspect (a second death with it
 *   out of memory)         alone), else isolate
 *   unknown (stopped,      retry as before (a replica stopped by the manager says nothing about
 *   evicted, not ready)    its inputs)
 *
 * Isolation and retry both count an attempt; past `maxAttempts` the input fails (WORKER_FAILED).
 * "Killed" needs two strikes because an operator's `kill -9` or the OOM killer (often a leak)
 * says little about the one input that happened to be in flight.
 */

export type LossCause = 'crashed' | 'killed';
export type LossVerdict = 'quarantine' | 'isolate' | 'retry' | 'fail';

export interface LostInput {
  /** Why the replica went; undefined when it did not die (stopped, evicted, not ready). */
  cause: LossCause | undefined;
  /** It was the only input in flight on that replica when it went. */
  alone: boolean;
  /** It was in flight on an earlier death beside other inputs (Task.suspect). */
  suspect: boolean;
  /** Attempts so far, this one included. */
  attempts: number;
  maxAttempts: number;
}

export function lossVerdict(x: LostInput): LossVerdict {
  if (x.cause === 'crashed' && x.alone) return 'quarantine';
  if (x.cause === 'killed' && x.alone && x.suspect) return 'quarantine';
  if (x.attempts >= x.maxAttempts) return 'fail';
  return x.cause === undefined ? 'retry' : 'isolate';
}

export function quarantineReason(versionKey: string, cause: LossCause, exit: string): string {
  const how = cause === 'crashed' ? `a replica of ${versionKey} crashed` : `a replica of ${versionKey} died for the second time with it`;
  return `this input was in flight when ${how} (${exit}); not retried on other replicas`;
}
