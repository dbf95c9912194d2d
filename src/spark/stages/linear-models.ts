/** LogisticRegression, LinearRegression, LinearSVC, GeneralizedLinearRegression, IsotonicRegression. */
import { RowError, UnsupportedStageError } from '../errors.ts';
import { toDouble } from '../meta.ts';
import { asNumberOrNull, asVector, describe, type LoadCtx, type Stage } from '../runtime.ts';
import { decodeMatrix, decodeVector, dot, javaBinarySearch, vget } from '../vector.ts';
import { normalCdf } from '../special.ts';
import { classifierStage, scalarPredictorStage, softmaxInPlace } from './predictor.ts';

export async function logisticRegression(ctx: LoadCtx): Promise<Stage> {
  const row = (await ctx.readData())[0];
  const numClasses = Number(row.numClasses ?? 2);
  let coef: Float64Array;
  let intercepts: Float64Array;
  let cols: number;
  let multinomial: boolean;
  if (row.coefficientMatrix) {
    const mat = decodeMatrix(row.coefficientMatrix);
    coef = mat.data;
    cols = mat.cols;
    intercepts = decodeVector(row.interceptVector);
    multinomial = Boolean(row.isMultinomial);
  } else {
    // Spark 2.0 layout: binomial only
    coef = decodeVector(row.coefficients);
    cols = coef.length;
    intercepts = Float64Array.of(toDouble(row.intercept));
    multinomial = false;
  }
  const m = ctx.meta;
  const t = m.num('threshold', 0.5);
  const spark3 = m.majorVersion >= 3;
  const rawThreshold = t === 0 ? -Infinity : t === 1 ? Infinity : Math.log(t / (1 - t));
  if (!multinomial) {
    return classifierStage(ctx, {
      numClasses: 2,
      hasProbability: true,
      compute(x, raw, prob) {
        const margin = dot(x, coef) + intercepts[0];
        raw[0] = -margin;
        raw[1] = margin;
        prob[0] = 1 / (1 + Math.exp(margin));
        // Spark 3+: p1 = 1 - p0; Spark 2 applied the sigmoid to both raw values
        prob[1] = spark3 ? 1 - prob[0] : 1 / (1 + Math.exp(-margin));
      },
      rawToPrediction: (raw) => (raw[1] > rawThreshold ? 1 : 0),
    });
  }
  return classifierStage(ctx, {
    numClasses,
    hasProbability: true,
    compute(x, raw, prob) {
      let maxIdx = 0;
      for (let k = 0; k < numClasses; k++) {
        raw[k] = dot(x, coef, k * cols) + intercepts[k];
        if (raw[k] > raw[maxIdx]) maxIdx = k;
      }
      if (spark3) {
        softmaxInPlace(prob, raw);
        return;
      }
      const maxMargin = raw[maxIdx];
      if (maxMargin === Infinity) {
        for (let k = 0; k < numClasses; k++) prob[k] = k === maxIdx ? 1 : 0;
        return;
      }
      let sum = 0;
      for (let k = 0; k < numClasses; k++) {
        prob[k] = maxMargin > 0 ? Math.exp(raw[k] - maxMargin) : Math.exp(raw[k]);
        sum += prob[k];
      }
      const scale = 1 / sum;
      for (let k = 0; k < numClasses; k++) prob[k] *= scale;
    },
  });
}

export async function linearRegression(ctx: LoadCtx): Promise<Stage> {
  const row = (await ctx.readData())[0];
  const coef = decodeVector(row.coefficients);
  const intercept = toDouble(row.intercept);
  return scalarPredictorStage(ctx, 'regression', (x) => dot(x, coef) + intercept);
}

export async function linearSVC(ctx: LoadCtx): Promise<Stage> {
  const row = (await ctx.readData())[0];
  const coef = decodeVector(row.coefficients);
  const intercept = toDouble(row.intercept);
  const threshold = ctx.meta.num('threshold', 0);
  return classifierStage(ctx, {
    numClasses: 2,
    hasProbability: false,
    compute(x, raw) {
      const m = dot(x, coef) + intercept;
      raw[0] = -m;
      raw[1] = m;
    },
    rawToPrediction: (raw) => (raw[1] > threshold ? 1 : 0),
  });
}

type Unlink = (eta: number) => number;

function linkByName(name: string, cls: string): Unlink {
  switch (name.toLowerCase()) {
    case 'identity':
      return (e) => e;
    case 'log':
      return Math.exp;
    case 'logit':
      return (e) => 1 / (1 + Math.exp(-e));
    case 'inverse':
      return (e) => 1 / e;
    case 'probit':
      return normalCdf;
    case 'cloglog':
      return (e) => 1 - Math.exp(-Math.exp(e));
    case 'sqrt':
      return (e) => e * e;
    default:
      throw new UnsupportedStageError(cls, `link function ${name}`);
  }
}

function powerLink(p: number): Unlink {
  if (p === 0) return Math.exp;
  if (p === 1) return (e) => e;
  if (p === -1) return (e) => 1 / e;
  if (p === 0.5) return (e) => e * e;
  return (e) => Math.pow(e, 1 / p);
}

export async function generalizedLinearRegression(ctx: LoadCtx): Promise<Stage> {
  const m = ctx.meta;
  const row = (await ctx.readData())[0];
  const coef = decodeVector(row.coefficients);
  const intercept = toDouble(row.intercept);
  const family = m.str('family', 'gaussian').toLowerCase();
  const defaultLink: Record<string, string> = { gaussian: 'identity', binomial: 'logit', poisson: 'log', gamma: 'inverse' };
  let unlink: Unlink;
  if (family === 'tweedie') {
    const vp = m.num('variancePower', 0);
    unlink = powerLink(m.isSet('linkPower') ? m.num('linkPower') : 1 - vp);
  } else {
    if (!(family in defaultLink)) throw new UnsupportedStageError(m.className, `family ${family}`);
    unlink = linkByName(m.isSet('link') ? m.str('link') : defaultLink[family], m.className);
  }
  const eps = 1e-16;
  const project: (mu: number) => number =
    family === 'binomial'
      ? (mu) => (mu < eps ? eps : mu > 1 - eps ? 1 - eps : mu)
      : family === 'gaussian'
        ? (mu) => (mu === -Infinity ? -Number.MAX_VALUE : mu === Infinity ? Number.MAX_VALUE : mu)
        : (mu) => (mu < eps ? eps : mu === Infinity ? Number.MAX_VALUE : mu);
  const offsetCol = m.optStr('offsetCol');
  const stage = scalarPredictorStage(ctx, 'regression', (x) => project(unlink(dot(x, coef) + intercept)));
  if (!offsetCol) return stage;
  // eta includes the row's offset column
  const featuresCol = m.str('featuresCol', 'features');
  const offSlot = ctx.cols.slot(offsetCol);
  const inSlot = ctx.cols.slot(featuresCol);
  const predSlot = stage.predictor!.predictionSlot;
  const who = describe(ctx);
  return {
    ...stage,
    inputs: [...stage.inputs, offsetCol],
    run(s) {
      const off = asNumberOrNull(s[offSlot], offsetCol);
      if (off === null) throw new RowError(`null value in column "${offsetCol}" (${who})`, offsetCol);
      const x = asVector(s[inSlot], featuresCol, who);
      s[predSlot] = project(unlink(dot(x, coef) + intercept + off));
    },
  };
}

export async function isotonicRegression(ctx: LoadCtx): Promise<Stage> {
  const row = (await ctx.readData())[0];
  const boundaries = Float64Array.from((row.boundaries as number[]).map(Number));
  const predictions = Float64Array.from((row.predictions as number[]).map(Number));
  const featureIndex = ctx.meta.num('featureIndex', 0);
  const predict = (x: number): number => {
    const found = javaBinarySearch(boundaries, x);
    const ins = -found - 1;
    if (ins === 0) return predictions[0];
    if (ins === boundaries.length) return predictions[predictions.length - 1];
    if (found < 0) {
      const x1 = boundaries[ins - 1];
      const y1 = predictions[ins - 1];
      const x2 = boundaries[ins];
      const y2 = predictions[ins];
      return y1 + ((y2 - y1) * (x - x1)) / (x2 - x1);
    }
    return predictions[found];
  };
  return scalarPredictorStage(ctx, 'regression', (v) => predict(v.size === 1 ? vget(v, 0) : vget(v, featureIndex)));
}
