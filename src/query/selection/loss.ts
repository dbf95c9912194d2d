/**
 * Loss of one model output against a feedback label, always in [0, 1] (non-finite → 1):
 *
 * - missing output (`undefined`: the model failed or timed out) → 1;
 * - `{prediction, probability?}` → the loss of `prediction` (so Spark classifiers are judged on
 *   their predicted class, regressors on their predicted value);
 * - number vs number → bounded absolute error: min(1, |y − ŷ| / scale) when a `scale` is given
 *   (policy param `lossScale`), else 1 − exp(−|y − ŷ|) (0 when exact, 0.63 at an error of 1);
 * - probability object (`{class: p}`) vs a class label → 1 − p(String(label)) (a class absent from
 *   the object has p = 0: loss 1);
 * - array of numbers vs an array of the same length → mean of the element-wise number losses;
 *   vs an integer class index, when every element is in [0, 1] (a probability vector)
 *   → 1 − output[index];
 * - labels (strings, booleans, numbers vs strings) → 0 when equal as strings, else 1
 *   (`"1"` matches `1`, `"true"` matches `true`);
 * - anything else → 0 when JSON-equal, else 1.
 */
import { kindOf } from './combine.ts';

export interface LossOptions {
  /** Error at which a numeric loss reaches 1 (linear below); absent → 1 − exp(−|err|). */
  scale?: number;
}

const finite = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);
const primitive = (v: unknown): v is string | number | boolean =>
  typeof v === 'string' || typeof v === 'boolean' || finite(v);

export function numericLoss(err: number, scale?: number): number {
  const e = Math.abs(err);
  if (!Number.isFinite(e)) return 1;
  return scale !== undefined && scale > 0 ? Math.min(1, e / scale) : 1 - Math.exp(-e);
}

export function loss(output: unknown, label: unknown, opts: LossOptions = {}): number {
  const l = rawLoss(output, label, opts);
  return Number.isFinite(l) ? Math.min(1, Math.max(0, l)) : 1;
}

function rawLoss(output: unknown, label: unknown, opts: LossOptions): number {
  if (output === undefined) return 1;
  switch (kindOf(output)) {
    case 'prediction':
      return rawLoss((output as { prediction: unknown }).prediction, label, opts);
    case 'number':
      if (finite(label)) return numericLoss((output as number) - label, opts.scale);
      break;
    case 'probs':
      if (primitive(label)) {
        const p = (output as Record<string, number>)[String(label)];
        return p === undefined ? 1 : 1 - p;
      }
      break;
    case 'vector': {
      const v = output as number[];
      if (Array.isArray(label) && label.length === v.length && label.every(finite)) {
        return v.reduce((s, x, i) => s + numericLoss(x - (label[i] as number), opts.scale), 0) / v.length;
      }
      if (Number.isInteger(label) && (label as number) >= 0 && (label as number) < v.length && v.every((x) => x >= 0 && x <= 1)) {
        return 1 - v[label as number]!;
      }
      break;
    }
    default:
      break;
  }
  if (primitive(output) && primitive(label)) return String(output) === String(label) ? 0 : 1;
  return JSON.stringify(output) === JSON.stringify(label) ? 0 : 1;
}
