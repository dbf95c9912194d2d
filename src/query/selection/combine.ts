/**
 * Combining several models' outputs into one answer, by kind of output:
 *
 * - numbers → weighted mean;
 * - class labels (strings, booleans) → weighted vote (ties: the label seen first);
 * - probability objects (`{class: p}`, every value a number) → weighted mean per class (a class
 *   missing from an output counts as 0);
 * - `{prediction, probability?}` (our Spark outputs): when any contributor has `probability`, the
 *   per-class weighted mean of the probabilities (a contributor without one counts as one-hot on
 *   its prediction) and the argmax as `prediction` (in the type the models used: `1`, not `"1"`);
 *   otherwise numeric predictions are averaged and other predictions voted;
 * - arrays of numbers → element-wise weighted mean (over the arrays of the dominant length);
 * - anything else → vote on JSON equality.
 *
 * Weights are renormalised over the contributors that arrived; outputs with weight 0 are left out
 * unless every weight is 0 (then all count equally). When outputs of different kinds arrive, the
 * kind with the largest total weight is combined and the others are left out of `contributors`.
 * A single contributor's output is returned unchanged.
 *
 * Confidence (in [0, 1]) measures agreement:
 * - votes (labels, class predictions, probability argmax): the weight share of the contributors
 *   whose own answer is the winning one;
 * - numbers and arrays: 1 − σ / M, where σ is the weighted standard deviation (for arrays,
 *   sqrt(Σ wᵢ‖xᵢ − μ‖²)) and M the largest magnitude ‖xᵢ‖. Since σ ≤ M always, this is scale-free
 *   and in [0, 1]: 1 when all agree, 0.5 for {0, x} at equal weight, 0 for {−x, x};
 * - a single contributor: 1.
 */
import { isPlainObject } from './params.ts';
import type { Combined, ModelOutput } from './types.ts';

export type OutputKind = 'number' | 'label' | 'vector' | 'probs' | 'prediction' | 'other';

type Prediction = { prediction: string | number | boolean; probability?: Record<string, number> };
type Weighted = { model: string; output: unknown; w: number };

const finite = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);
const isLabel = (v: unknown): v is string | boolean => typeof v === 'string' || typeof v === 'boolean';

export function isProbs(v: unknown): v is Record<string, number> {
  if (!isPlainObject(v)) return false;
  const vals = Object.values(v);
  return vals.length > 0 && vals.every(finite);
}

export function kindOf(o: unknown): OutputKind {
  if (typeof o === 'number') return Number.isFinite(o) ? 'number' : 'other';
  if (isLabel(o)) return 'label';
  if (Array.isArray(o)) return o.length > 0 && o.every(finite) ? 'vector' : 'other';
  if (!isPlainObject(o)) return 'other';
  if ('prediction' in o) {
    const p = o.prediction;
    const okPred = finite(p) || isLabel(p);
    return okPred && (o.probability === undefined || isProbs(o.probability)) ? 'prediction' : 'other';
  }
  return isProbs(o) ? 'probs' : 'other';
}

/** Nothing usable arrived: the caller answers with its default. */
export function noAnswer(): Combined {
  return { output: null, confidence: 0, contributors: [] };
}

/** Combines `outputs` with `weights` (per model; missing or invalid weights count as 0). */
export function combineOutputs(outputs: readonly ModelOutput[], weights: Record<string, number>): Combined {
  const seen = new Set<string>();
  let items: Weighted[] = [];
  for (const o of outputs) {
    if (seen.has(o.model)) continue;
    seen.add(o.model);
    const w = weights[o.model];
    items.push({ model: o.model, output: o.output, w: finite(w) && w > 0 ? w : 0 });
  }
  if (items.some((i) => i.w > 0)) items = items.filter((i) => i.w > 0);
  else items = items.map((i) => ({ ...i, w: 1 }));
  if (items.length === 0) return noAnswer();

  const kind = dominantKind(items);
  items = items.filter((i) => kindOf(i.output) === kind);
  if (kind === 'vector') {
    const len = dominantBy(items, (i) => String((i.output as number[]).length));
    items = items.filter((i) => (i.output as number[]).length === Number(len));
  }
  const contributors = items.map((i) => i.model);
  if (items.length === 1) return { output: items[0]!.output, confidence: 1, contributors };
  const total = items.reduce((s, i) => s + i.w, 0);
  for (const i of items) i.w /= total;

  switch (kind) {
    case 'number': {
      const { mean, confidence } = average(items.map((i) => [i.output as number]), items);
      return { output: mean[0], confidence, contributors };
    }
    case 'vector': {
      const { mean, confidence } = average(items.map((i) => i.output as number[]), items);
      return { output: mean, confidence, contributors };
    }
    case 'probs': {
      const probs = items.map((i) => i.output as Record<string, number>);
      const avg = averageProbs(probs, items);
      const top = argmax(avg);
      const share = items.reduce((s, i, k) => s + (argmax(probs[k]!) === top ? i.w : 0), 0);
      return { output: avg, confidence: share, contributors };
    }
    case 'prediction':
      return { ...combinePredictions(items), contributors };
    default: {
      const { winner, share } = vote(items, (o) => (isLabel(o) ? `${typeof o}:${o}` : JSON.stringify(o) ?? 'undefined'));
      return { output: winner, confidence: share, contributors };
    }
  }
}

function combinePredictions(items: Weighted[]): { output: Prediction; confidence: number } {
  const preds = items.map((i) => i.output as Prediction);
  if (preds.some((p) => p.probability !== undefined)) {
    const dists = preds.map((p) => p.probability ?? { [String(p.prediction)]: 1 });
    const probability = averageProbs(dists, items);
    const top = argmax(probability);
    const share = items.reduce((s, i, k) => s + (String(preds[k]!.prediction) === top ? i.w : 0), 0);
    const same = preds.find((p) => String(p.prediction) === top);
    const numeric = preds.every((p) => typeof p.prediction === 'number') && top.trim() !== '' && Number.isFinite(Number(top));
    const prediction = same ? same.prediction : numeric ? Number(top) : top;
    return { output: { prediction, probability }, confidence: share };
  }
  if (preds.every((p) => finite(p.prediction))) {
    const { mean, confidence } = average(preds.map((p) => [p.prediction as number]), items);
    return { output: { prediction: mean[0]! }, confidence };
  }
  const wrapped = items.map((i, k) => ({ ...i, output: preds[k]!.prediction }));
  const { winner, share } = vote(wrapped, (o) => `${typeof o}:${String(o)}`);
  return { output: { prediction: winner as Prediction['prediction'] }, confidence: share };
}

/** Weighted element-wise mean (weights sum to 1) and the agreement 1 − σ / M. */
function average(xs: number[][], items: Weighted[]): { mean: number[]; confidence: number } {
  const dim = xs[0]!.length;
  const mean = new Array<number>(dim).fill(0);
  xs.forEach((x, k) => { for (let d = 0; d < dim; d++) mean[d]! += items[k]!.w * x[d]!; });
  let variance = 0;
  let maxNorm = 0;
  xs.forEach((x, k) => {
    let dev = 0;
    let norm = 0;
    for (let d = 0; d < dim; d++) {
      dev += (x[d]! - mean[d]!) ** 2;
      norm += x[d]! ** 2;
    }
    variance += items[k]!.w * dev;
    maxNorm = Math.max(maxNorm, Math.sqrt(norm));
  });
  const confidence = maxNorm > 0 ? 1 - Math.sqrt(variance) / maxNorm : 1;
  return { mean, confidence: Math.min(1, Math.max(0, confidence)) };
}

function averageProbs(dists: Record<string, number>[], items: Weighted[]): Record<string, number> {
  const out: Record<string, number> = {};
  dists.forEach((p, k) => {
    for (const [c, v] of Object.entries(p)) out[c] = (out[c] ?? 0) + items[k]!.w * v;
  });
  return out;
}

/** Class with the largest value; the first in key order on ties. */
export function argmax(p: Record<string, number>): string {
  let best = '';
  let bestV = -Infinity;
  for (const [c, v] of Object.entries(p)) if (v > bestV) [best, bestV] = [c, v];
  return best;
}

function vote(items: Weighted[], key: (o: unknown) => string): { winner: unknown; share: number } {
  const tally = new Map<string, { value: unknown; w: number }>();
  for (const i of items) {
    const k = key(i.output);
    const t = tally.get(k);
    if (t) t.w += i.w;
    else tally.set(k, { value: i.output, w: i.w });
  }
  let best = { value: null as unknown, w: -1 };
  for (const t of tally.values()) if (t.w > best.w) best = t;
  return { winner: best.value, share: Math.min(1, best.w) };
}

/** Key with the largest total weight (the first seen on ties). */
function dominantBy(items: Weighted[], key: (i: Weighted) => string): string {
  const totals = new Map<string, number>();
  for (const i of items) totals.set(key(i), (totals.get(key(i)) ?? 0) + i.w);
  let best = '';
  let bestW = -1;
  for (const [k, w] of totals) if (w > bestW) [best, bestW] = [k, w];
  return best;
}

/** The heaviest kind, preferring any recognised kind over 'other'. */
function dominantKind(items: Weighted[]): OutputKind {
  const known = items.filter((i) => kindOf(i.output) !== 'other');
  return (known.length ? dominantBy(known, (i) => kindOf(i.output)) : 'other') as OutputKind;
}
