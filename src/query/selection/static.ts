/**
 * Policies that do not learn whom to route to: `single`, `weighted` and `shadow`. They still record
 * per-model loss statistics from feedback (stats.ts) so the models can be compared.
 */
import { combineOutputs, noAnswer } from './combine.ts';
import { isPlainObject, listModels, lossScale, ParamChecker, requireModels } from './params.ts';
import { hash01, sampleIndex } from './random.ts';
import { initArms, recordLosses, type ArmState } from './stats.ts';
import type { Combined, ModelOutput, Params, Selection, SelectionPolicy } from './types.ts';

const only = (model: string, models: readonly string[]): Record<string, number> =>
  Object.fromEntries(models.map((m) => [m, m === model ? 1 : 0]));

const combineOnly = (model: string | undefined, outputs: readonly ModelOutput[]): Combined => {
  const out = outputs.find((o) => o.model === model);
  return out ? combineOutputs([out], { [out.model]: 1 }) : noAnswer();
};

const record = (state: ArmState, feedback: ModelOutput[], label: unknown, params: Params): ArmState =>
  recordLosses(state, feedback, label, { scale: lossScale(params) });

const lossScaleParam = (c: ParamChecker): Params =>
  c.params.lossScale === undefined ? {} : { lossScale: c.number('lossScale', undefined, { min: 0, minExclusive: true }) };

/** The first linked model answers; nothing else is asked. */
export const single: SelectionPolicy<ArmState> = {
  name: 'single',
  validateParams: (params) => lossScaleParam(new ParamChecker('single', params, ['lossScale'])),
  init: initArms,
  select(_state, models) {
    requireModels('single', models);
    return { primary: [models[0]!], shadow: [] };
  },
  combine: (_state, outputs) => combineOnly(outputs[0]?.model, outputs.slice(0, 1)),
  update: record,
  weights: (_state, models) => only(models[0]!, models),
};

/**
 * Traffic split by `params.weights` ({model: weight ≥ 0}, not all 0; linked models left out get
 * none; when no model with a positive weight is linked any more, the first linked model answers).
 * With a `uid` the choice is sticky: weighted rendezvous hashing — each model scores
 * −ln(hash01(model + uid)) / weight and the lowest wins — picks model m with probability
 * wₘ / Σw over uids, is the same for a uid as long as the weights are, and when a model is added or
 * removed only the uids moving to or from that model change. Without a uid, `ctx.rand()` picks.
 */
export const weighted: SelectionPolicy<ArmState> = {
  name: 'weighted',
  validateParams(params, models) {
    const c: ParamChecker = new ParamChecker('weighted', params, ['weights', 'lossScale']);
    const w = c.params.weights;
    if (!isPlainObject(w) || Object.keys(w).length === 0) c.fail('weights', 'must be an object of model name → weight, e.g. {"m1": 0.9, "m2": 0.1}');
    for (const [m, v] of Object.entries(w)) {
      if (!models.includes(m)) throw new Error(`weighted: parameter "weights" names "${m}", which is not a linked model (linked: ${listModels(models)})`);
      if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) {
        throw new Error(`weighted: parameter "weights" must give each model a number >= 0 (got ${JSON.stringify(v)} for "${m}")`);
      }
    }
    if (!Object.values(w).some((v) => (v as number) > 0)) c.fail('weights', 'must give at least one model a weight > 0');
    return { weights: { ...w }, ...lossScaleParam(c) };
  },
  init: initArms,
  select(_state, models, params, ctx) {
    requireModels('weighted', models);
    const split = splitOf(models, params);
    if (split.length === 0) return { primary: [models[0]!], shadow: [] };
    if (ctx.uid !== undefined) {
      let best = split[0]![0];
      let bestScore = Infinity;
      for (const [m, w] of split) {
        const score = -Math.log(hash01(`${m}\u0000${ctx.uid}`)) / w;
        if (score < bestScore) [best, bestScore] = [m, score];
      }
      return { primary: [best], shadow: [] };
    }
    const i = sampleIndex(split.map(([, w]) => w), ctx.rand());
    return { primary: [split[Math.max(0, i)]![0]], shadow: [] };
  },
  combine(_state, outputs, params) {
    return combineOutputs(outputs, Object.fromEntries(splitOf(outputs.map((o) => o.model), params)));
  },
  update: record,
  weights(_state, models, params) {
    const split = splitOf(models, params);
    if (split.length === 0) return only(models[0]!, models);
    const total = split.reduce((s, [, w]) => s + w, 0);
    const share = new Map(split.map(([m, w]) => [m, w / total]));
    return Object.fromEntries(models.map((m) => [m, share.get(m) ?? 0]));
  },
};

/** Linked models with a positive weight, sorted by name (independent of linking order). */
function splitOf(models: readonly string[], params: Params): Array<[string, number]> {
  const w = isPlainObject(params?.weights) ? params.weights : {};
  return [...new Set(models)]
    .map((m): [string, number] => [m, typeof w[m] === 'number' && Number.isFinite(w[m]) ? (w[m] as number) : 0])
    .filter(([, v]) => v > 0)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}

/**
 * `params.primary` (default: the first linked model, also when the named one is no longer linked)
 * answers; `params.candidates` (default: every other linked model; unlinked ones are skipped) are
 * asked too, as shadows whose outputs are recorded but never answer. `combine` uses the primary's
 * output only (a candidate's output never answers, even when the primary's did not arrive).
 */
export const shadow: SelectionPolicy<ArmState> = {
  name: 'shadow',
  validateParams(params, models) {
    const c: ParamChecker = new ParamChecker('shadow', params, ['primary', 'candidates', 'lossScale']);
    const given = c.model('primary', models);
    const primary = given ?? models[0];
    const out: Params = given === undefined ? {} : { primary: given };
    const cand = c.params.candidates;
    if (cand !== undefined) {
      if (!Array.isArray(cand) || !cand.every((m) => typeof m === 'string')) c.fail('candidates', 'must be an array of model names');
      for (const m of cand as string[]) {
        if (!models.includes(m)) c.fail('candidates', `names "${m}", which is not a linked model (linked: ${listModels(models)})`);
        if (m === primary) c.fail('candidates', `must not include the primary model "${m}"`);
      }
      out.candidates = [...new Set(cand as string[])];
    }
    return { ...out, ...lossScaleParam(c) };
  },
  init: initArms,
  select(_state, models, params): Selection {
    requireModels('shadow', models);
    const primary = primaryOf(models, params);
    const cand = Array.isArray(params?.candidates) ? (params.candidates as unknown[]) : models;
    const shadows = models.filter((m) => m !== primary && cand.includes(m));
    return { primary: [primary], shadow: shadows };
  },
  combine(_state, outputs, params) {
    // The caller passes the primary's output; shadow outputs passed along are ignored when known.
    const cand = Array.isArray(params?.candidates) ? (params.candidates as unknown[]) : [];
    const answering = outputs.filter((o) => !cand.includes(o.model));
    const p = params?.primary;
    return combineOnly(answering.some((o) => o.model === p) ? (p as string) : answering[0]?.model, answering);
  },
  update: record,
  weights: (_state, models, params) => only(primaryOf(models, params), models),
};

/** The configured primary when linked, else the first linked model. */
function primaryOf(models: readonly string[], params: Params): string {
  const p = params?.primary;
  return typeof p === 'string' && models.includes(p) ? p : models[0]!;
}
