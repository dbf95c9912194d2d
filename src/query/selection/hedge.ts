/**
 * Multiplicative-weights policies: `exp3` (choose one model per query) and `exp4` (ensemble of all).
 *
 * State: a log-weight per model, `logWeights[m] = −eta · (cumulative loss of m)`, shifted after each
 * update so the largest is 0 (only differences matter; the shift keeps numbers small). A model
 * unknown to the state starts at a neutral log-weight: the mean of the other linked models' (the
 * geometric mean of their weights), so it is neither favoured nor starved; a model unlinked keeps
 * its entry (ignored while unlinked).
 *
 * Feedback is FULL information: the caller sends the output of every linked model for the labelled
 * input, so every model in `feedback` is charged its own loss (Hedge; Freund & Schapire) instead of
 * Exp3's importance-weighted estimate ℓ/p for the chosen model alone (Auer et al. 2002). The
 * estimate would only add variance here: the selection that produced the query is not known at
 * feedback time, and the true losses of all models are. Models absent from `feedback` are not
 * updated (send `{model, output: undefined}` to charge a failed model the maximal loss 1).
 *
 * exp3 keeps Exp3's exploration: it picks model i with probability
 *   pᵢ = (1 − gamma) · wᵢ / Σw + gamma / K        (K linked models)
 * so every model keeps receiving live traffic (a model that improves, e.g. after a new version is
 * rolled out, is noticed). Defaults: eta 0.1, gamma 0.1.
 * exp4 asks every linked model and combines what arrives with the weights wᵢ / Σw renormalised
 * over the contributors (combine.ts). Default eta 0.1.
 * Both accept `lossScale` (see loss.ts).
 */
import { combineOutputs } from './combine.ts';
import { isPlainObject, lossScale, numParam, ParamChecker, requireModels } from './params.ts';
import { sampleIndex } from './random.ts';
import { feedbackLosses } from './stats.ts';
import type { ModelOutput, Params, SelectionPolicy } from './types.ts';

export interface HedgeState {
  logWeights: Record<string, number>;
  /** Feedback events applied. */
  updates: number;
}

export const HEDGE_DEFAULTS = { eta: 0.1, gamma: 0.1 } as const;

/** The state as stored, or an empty one when it is missing or malformed. */
export function readHedge(state: unknown): HedgeState {
  const logWeights: Record<string, number> = {};
  const s = isPlainObject(state) ? state : {};
  const raw = isPlainObject(s.logWeights) ? s.logWeights : {};
  for (const [m, v] of Object.entries(raw)) if (typeof v === 'number' && Number.isFinite(v)) logWeights[m] = v;
  const updates = typeof s.updates === 'number' && Number.isFinite(s.updates) ? s.updates : 0;
  return { logWeights, updates };
}

function neutral(s: HedgeState, among: Iterable<string>): number {
  let sum = 0;
  let n = 0;
  for (const m of among) {
    const v = s.logWeights[m];
    if (v !== undefined) [sum, n] = [sum + v, n + 1];
  }
  return n > 0 ? sum / n : 0;
}

/** Normalised weights wᵢ / Σw over `models` (softmax of the log-weights). */
export function hedgeWeights(state: unknown, models: readonly string[]): Record<string, number> {
  const s = readHedge(state);
  const base = neutral(s, models);
  const lw = models.map((m) => s.logWeights[m] ?? base);
  const max = Math.max(...lw);
  const e = lw.map((v) => Math.exp(v - max));
  const total = e.reduce((a, b) => a + b, 0);
  return Object.fromEntries(models.map((m, i) => [m, e[i]! / total]));
}

/** A new state with each model in `feedback` charged eta × its loss. */
export function hedgeUpdate(state: unknown, feedback: readonly ModelOutput[], label: unknown, eta: number, scale?: number): HedgeState {
  const s = readHedge(state);
  const losses = feedbackLosses(feedback, label, { scale });
  const base = neutral(s, losses.keys());
  const logWeights = { ...s.logWeights };
  for (const [m, l] of losses) logWeights[m] = (logWeights[m] ?? base) - eta * l;
  const max = Math.max(...Object.values(logWeights));
  if (Number.isFinite(max)) for (const m of Object.keys(logWeights)) logWeights[m] = logWeights[m]! - max;
  return { logWeights, updates: s.updates + 1 };
}

const eta = (p: Params) => numParam(p, 'eta', HEDGE_DEFAULTS.eta, Number.MIN_VALUE);
const gamma = (p: Params) => numParam(p, 'gamma', HEDGE_DEFAULTS.gamma, 0, 1);

function checkCommon(c: ParamChecker): Params {
  const out: Params = { eta: c.number('eta', HEDGE_DEFAULTS.eta, { min: 0, minExclusive: true }) };
  if (c.params.lossScale !== undefined) out.lossScale = c.number('lossScale', undefined, { min: 0, minExclusive: true });
  return out;
}

const init = (): HedgeState => ({ logWeights: {}, updates: 0 });

export const exp3: SelectionPolicy<HedgeState> = {
  name: 'exp3',
  validateParams(params) {
    const c = new ParamChecker('exp3', params, ['eta', 'gamma', 'lossScale']);
    return { ...checkCommon(c), gamma: c.number('gamma', HEDGE_DEFAULTS.gamma, { min: 0, max: 1 }) };
  },
  init,
  select(state, models, params, ctx) {
    requireModels('exp3', models);
    const p = exp3.weights(state, models, params);
    const i = sampleIndex(models.map((m) => p[m]!), ctx.rand());
    return { primary: [models[Math.max(0, i)]!], shadow: [] };
  },
  combine: (state, outputs, params) => combineOutputs(outputs, exp3.weights(state, outputs.map((o) => o.model), params)),
  update: (state, feedback, label, params) => hedgeUpdate(state, feedback, label, eta(params), lossScale(params)),
  weights(state, models, params) {
    const g = gamma(params);
    const w = hedgeWeights(state, models);
    return Object.fromEntries(models.map((m) => [m, (1 - g) * w[m]! + g / models.length]));
  },
};

export const exp4: SelectionPolicy<HedgeState> = {
  name: 'exp4',
  validateParams: (params) => checkCommon(new ParamChecker('exp4', params, ['eta', 'lossScale'])),
  init,
  select(_state, models) {
    requireModels('exp4', models);
    return { primary: [...models], shadow: [] };
  },
  combine: (state, outputs) => combineOutputs(outputs, hedgeWeights(state, outputs.map((o) => o.model))),
  update: (state, feedback, label, params) => hedgeUpdate(state, feedback, label, eta(params), lossScale(params)),
  weights: (state, models) => hedgeWeights(state, models),
};
