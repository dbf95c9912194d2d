/**
 * Running loss statistics per model — the state of the counting bandits (epsilon-greedy, ucb1),
 * also kept by single/weighted/shadow so operators can compare models (a shadow candidate's record
 * against the primary's) from the state view.
 */
import { isPlainObject } from './params.ts';
import { loss, type LossOptions } from './loss.ts';
import type { ModelOutput } from './types.ts';

export interface ArmStats {
  /** Labelled feedback events seen. */
  n: number;
  /** Sum of losses over them, each in [0, 1]. */
  loss: number;
}

export interface ArmState {
  arms: Record<string, ArmStats>;
}

/** Loss per model (first occurrence of each model; in feedback order). */
export function feedbackLosses(feedback: readonly ModelOutput[], label: unknown, opts: LossOptions): Map<string, number> {
  const out = new Map<string, number>();
  for (const f of feedback) if (!out.has(f.model)) out.set(f.model, loss(f.output, label, opts));
  return out;
}

/** The state as stored, or an empty one when it is missing or malformed. */
export function readArms(state: unknown): ArmState {
  const arms: Record<string, ArmStats> = {};
  const raw = isPlainObject(state) && isPlainObject(state.arms) ? state.arms : {};
  for (const [m, a] of Object.entries(raw)) {
    if (!isPlainObject(a)) continue;
    const n = a.n;
    const l = a.loss;
    if (typeof n === 'number' && n > 0 && Number.isFinite(n) && typeof l === 'number' && Number.isFinite(l)) {
      arms[m] = { n, loss: Math.min(n, Math.max(0, l)) };
    }
  }
  return { arms };
}

export function initArms(): ArmState {
  return { arms: {} };
}

/** A new state with each model in `feedback` charged its loss against `label`. */
export function recordLosses(state: unknown, feedback: readonly ModelOutput[], label: unknown, opts: LossOptions): ArmState {
  const { arms } = readArms(state);
  for (const [m, l] of feedbackLosses(feedback, label, opts)) {
    const a = arms[m] ?? { n: 0, loss: 0 };
    arms[m] = { n: a.n + 1, loss: a.loss + l };
  }
  return { arms };
}

/** Mean reward (1 − mean loss) of a model; `undefined` when it has no feedback yet. */
export function meanReward(s: ArmState, model: string): number | undefined {
  const a = s.arms[model];
  return a && a.n > 0 ? 1 - a.loss / a.n : undefined;
}
