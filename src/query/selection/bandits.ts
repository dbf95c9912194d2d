/**
 * Counting bandits over per-model mean reward (1 − mean loss; stats.ts): `epsilon-greedy` and
 * `ucb1`. Like exp3 they learn from full-information feedback (every model in `feedback` is
 * charged its own loss), so all linked models' counts grow together and UCB1's bonus mostly
 * matters for models that were linked later or failed to answer some feedback requests.
 *
 * Untried models (no feedback yet, e.g. just linked) are chosen first, in linking order. Ties go
 * to the model linked first. Both accept `lossScale` (see loss.ts).
 */
import { combineOutputs } from './combine.ts';
import { lossScale, numParam, ParamChecker, requireModels } from './params.ts';
import { initArms, meanReward, readArms, recordLosses, type ArmState } from './stats.ts';
import type { Params, SelectionPolicy } from './types.ts';

export const BANDIT_DEFAULTS = { epsilon: 0.1, c: 1 } as const;

const withLossScale = (c: ParamChecker, out: Params): Params =>
  c.params.lossScale === undefined ? out : { ...out, lossScale: c.number('lossScale', undefined, { min: 0, minExclusive: true }) };

/** Index of the highest score; an untried model (score undefined) wins at once. */
function best(models: readonly string[], score: (m: string) => number | undefined): number {
  let bi = 0;
  let bs = -Infinity;
  for (let i = 0; i < models.length; i++) {
    const s = score(models[i]!);
    if (s === undefined) return i;
    if (s > bs) [bi, bs] = [i, s];
  }
  return bi;
}

const greedyIndex = (s: ArmState, models: readonly string[]) => best(models, (m) => meanReward(s, m));
const epsilon = (p: Params) => numParam(p, 'epsilon', BANDIT_DEFAULTS.epsilon, 0, 1);

/**
 * With probability `epsilon` (default 0.1) a uniformly random linked model, else the one with the
 * best mean reward. `weights` are the selection probabilities: 1 − ε + ε/K for the greedy model,
 * ε/K for the others.
 */
export const epsilonGreedy: SelectionPolicy<ArmState> = {
  name: 'epsilon-greedy',
  validateParams(params) {
    const c = new ParamChecker('epsilon-greedy', params, ['epsilon', 'lossScale']);
    return withLossScale(c, { epsilon: c.number('epsilon', BANDIT_DEFAULTS.epsilon, { min: 0, max: 1 }) });
  },
  init: initArms,
  select(state, models, params, ctx) {
    requireModels('epsilon-greedy', models);
    const explore = ctx.rand() < epsilon(params);
    const i = explore ? Math.min(models.length - 1, Math.floor(ctx.rand() * models.length)) : greedyIndex(readArms(state), models);
    return { primary: [models[i]!], shadow: [] };
  },
  combine: (state, outputs, params) => combineOutputs(outputs, epsilonGreedy.weights(state, outputs.map((o) => o.model), params)),
  update: (state, feedback, label, params) => recordLosses(state, feedback, label, { scale: lossScale(params) }),
  weights(state, models, params) {
    if (models.length === 0) return {};
    const e = epsilon(params);
    const g = greedyIndex(readArms(state), models);
    return Object.fromEntries(models.map((m, i) => [m, (i === g ? 1 - e : 0) + e / models.length]));
  },
};

/**
 * UCB1 (Auer et al. 2002): the model maximising mean reward + c · sqrt(2 ln N / nᵢ), where nᵢ is
 * the model's feedback count and N the sum over linked models; `c` (default 1) scales exploration
 * (0: purely greedy). `weights` are the mean rewards (0 for untried models).
 */
export const ucb1: SelectionPolicy<ArmState> = {
  name: 'ucb1',
  validateParams(params) {
    const c = new ParamChecker('ucb1', params, ['c', 'lossScale']);
    return withLossScale(c, { c: c.number('c', BANDIT_DEFAULTS.c, { min: 0 }) });
  },
  init: initArms,
  select(state, models, params) {
    requireModels('ucb1', models);
    const s = readArms(state);
    const c = numParam(params, 'c', BANDIT_DEFAULTS.c, 0);
    const total = models.reduce((sum, m) => sum + (s.arms[m]?.n ?? 0), 0);
    const i = best(models, (m) => {
      const mean = meanReward(s, m);
      return mean === undefined ? undefined : mean + c * Math.sqrt((2 * Math.log(total)) / s.arms[m]!.n);
    });
    return { primary: [models[i]!], shadow: [] };
  },
  combine: (state, outputs, params) => combineOutputs(outputs, ucb1.weights(state, outputs.map((o) => o.model), params)),
  update: (state, feedback, label, params) => recordLosses(state, feedback, label, { scale: lossScale(params) }),
  weights(state, models) {
    const s = readArms(state);
    return Object.fromEntries(models.map((m) => [m, meanReward(s, m) ?? 0]));
  },
};
