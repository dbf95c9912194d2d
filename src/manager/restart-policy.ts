/**
 * How long to wait before restarting a replica that exited unasked: exponential backoff from
 * minMs, doubling to maxMs, back to minMs once a run lasted healthyAfterMs. A pure function: the
 * caller keeps the state per replica slot and owns the timer.
 *
 *   crash loop:      250, 500, 1000, 2000, 4000, 8000, 10000, 10000, …
 *   after ≥ 30 s up: 250 again (then 500, …)
 */

export interface BackoffState {
  /** The delay the next unhealthy exit will wait. */
  nextDelayMs: number;
}

export interface RestartPolicyConfig {
  minMs: number;
  maxMs: number;
  /** A run at least this long counts as healthy and resets the backoff. */
  healthyAfterMs: number;
}

export const DEFAULT_RESTART_POLICY: RestartPolicyConfig = Object.freeze({ minMs: 250, maxMs: 10_000, healthyAfterMs: 30_000 });

export const INITIAL_BACKOFF: BackoffState = Object.freeze({ nextDelayMs: DEFAULT_RESTART_POLICY.minMs });

/** A replica that was up for `upForMs` exited unasked: how long to wait before starting it again, and the state for next time. */
export function nextRestart(
  state: BackoffState,
  upForMs: number,
  cfg: RestartPolicyConfig = DEFAULT_RESTART_POLICY,
): { delayMs: number; state: BackoffState } {
  const healthy = upForMs >= cfg.healthyAfterMs;
  const delayMs = healthy ? cfg.minMs : Math.min(cfg.maxMs, Math.max(cfg.minMs, state.nextDelayMs));
  return { delayMs, state: { nextDelayMs: Math.min(cfg.maxMs, delayMs * 2) } };
}
