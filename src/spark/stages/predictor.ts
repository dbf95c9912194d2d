/** Shared plumbing for prediction stages: feature input, prediction/probability outputs, label metadata. */
import { asVector, describe, type LoadCtx, type PredictorInfo, type Stage } from '../runtime.ts';
import { DenseVector, type Vector } from '../vector.ts';

export interface ClassifierCore {
  numClasses: number;
  /** fills raw (rawPrediction) and prob (probability; may be left untouched when hasProbability is false) */
  compute(x: Vector, raw: Float64Array, prob: Float64Array): void;
  hasProbability: boolean;
  /** prediction from raw when no thresholds are set (default: argmax of raw) */
  rawToPrediction?(raw: Float64Array): number;
}

/** Spark's Utils.softmax into a: exp(x - max) / sum (a one-hot for +Infinity). */
export function softmaxInPlace(a: Float64Array, from: ArrayLike<number>): void {
  let max = -Number.MAX_VALUE;
  for (let i = 0; i < a.length; i++) {
    if (from[i] === Infinity) {
      a.fill(0);
      a[i] = 1;
      return;
    }
    if (from[i] > max) max = from[i];
  }
  let sum = 0;
  for (let i = 0; i < a.length; i++) {
    a[i] = Math.exp(from[i] - max);
    sum += a[i];
  }
  for (let i = 0; i < a.length; i++) a[i] /= sum;
}

export function argmax(a: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < a.length; i++) if (a[i] > a[best]) best = i;
  return best;
}

function baseStage(ctx: LoadCtx, kind: PredictorInfo['kind'], probabilityCol: string) {
  const m = ctx.meta;
  const featuresCol = m.str('featuresCol', 'features');
  const predictionCol = m.str('predictionCol', 'prediction');
  const labelCol = m.optStr('labelCol');
  const labels = labelCol ? ctx.cols.info(labelCol).labels : undefined;
  const predictor: PredictorInfo = {
    kind,
    predictionCol,
    predictionSlot: ctx.cols.slot(predictionCol),
    probabilitySlot: probabilityCol ? ctx.cols.slot(probabilityCol) : -1,
    labels,
  };
  ctx.cols.setInfo(predictionCol, { kind: 'numeric', labels, numValues: labels?.length });
  return { featuresCol, inSlot: ctx.cols.slot(featuresCol), predictor, who: describe(ctx) };
}

export function classifierStage(ctx: LoadCtx, core: ClassifierCore): Stage {
  const m = ctx.meta;
  const probabilityCol = core.hasProbability ? m.str('probabilityCol', 'probability') : '';
  const { featuresCol, inSlot, predictor, who } = baseStage(ctx, 'classification', probabilityCol);
  const thresholds = m.isSet('thresholds') ? m.numArr('thresholds') : undefined;
  const raw = new Float64Array(core.numClasses);
  const prob = new DenseVector(new Float64Array(core.numClasses));
  const outs = [predictor.predictionCol];
  if (probabilityCol) outs.push(probabilityCol);
  return {
    uid: m.uid,
    className: m.className,
    inputs: [featuresCol],
    outputs: outs,
    predictor,
    run(s) {
      const x = asVector(s[inSlot], featuresCol, who);
      core.compute(x, raw, prob.values);
      let pred: number;
      if (thresholds && core.hasProbability) {
        pred = 0;
        let max = -Infinity;
        for (let i = 0; i < prob.values.length; i++) {
          const scaled = prob.values[i] / thresholds[i];
          if (scaled > max) {
            max = scaled;
            pred = i;
          }
        }
      } else pred = core.rawToPrediction ? core.rawToPrediction(raw) : argmax(raw);
      s[predictor.predictionSlot] = pred;
      if (probabilityCol) s[predictor.probabilitySlot] = prob;
    },
  };
}

/** Regression or clustering: a single number from the feature vector. */
export function scalarPredictorStage(
  ctx: LoadCtx,
  kind: 'regression' | 'clustering',
  predict: (x: Vector) => number,
): Stage {
  const m = ctx.meta;
  const { featuresCol, inSlot, predictor, who } = baseStage(ctx, kind, '');
  return {
    uid: m.uid,
    className: m.className,
    inputs: [featuresCol],
    outputs: [predictor.predictionCol],
    predictor,
    run(s) {
      s[predictor.predictionSlot] = predict(asVector(s[inSlot], featuresCol, who));
    },
  };
}
