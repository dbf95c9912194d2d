/** NaiveBayes, MultilayerPerceptron, KMeans. */
import { RowError, UnsupportedStageError } from '../errors.ts';
import { describe, type LoadCtx, type Stage } from '../runtime.ts';
import { decodeMatrix, decodeVector, DenseVector, dot, forEachActive, toDense, type Vector } from '../vector.ts';
import { classifierStage, scalarPredictorStage, softmaxInPlace } from './predictor.ts';

export async function naiveBayes(ctx: LoadCtx): Promise<Stage> {
  const who = describe(ctx);
  const row = (await ctx.readData())[0];
  const pi = decodeVector(row.pi);
  const theta = decodeMatrix(row.theta); // numClasses x numFeatures
  const modelType = ctx.meta.str('modelType', 'multinomial');
  const k = pi.length;
  const d = theta.cols;
  const th = theta.data;
  const checkNonNegative = (x: Vector): void =>
    forEachActive(x, (_, v) => {
      if (v !== 0 && !(v > 0)) throw new RowError(`Naive Bayes requires nonnegative feature values, got ${v} (${who})`);
    });
  let compute: (x: Vector, raw: Float64Array) => void;
  if (modelType === 'multinomial') {
    compute = (x, raw) => {
      checkNonNegative(x);
      for (let c = 0; c < k; c++) raw[c] = pi[c] + dot(x, th, c * d);
    };
  } else if (modelType === 'complement') {
    compute = (x, raw) => {
      checkNonNegative(x);
      let max = -Infinity;
      for (let c = 0; c < k; c++) {
        raw[c] = dot(x, th, c * d);
        if (raw[c] > max) max = raw[c];
      }
      let sumExp = 0;
      for (let c = 0; c < k; c++) sumExp += Math.exp(raw[c] - max);
      const logSumExp = Math.log(sumExp) + max;
      for (let c = 0; c < k; c++) raw[c] -= logSumExp;
    };
  } else if (modelType === 'bernoulli') {
    const thetaMinusNeg = th.map((v) => v - Math.log1p(-Math.exp(v)));
    const base = pi.map((p, c) => {
      let s = 0;
      for (let j = 0; j < d; j++) s += Math.log1p(-Math.exp(th[c * d + j]));
      return p + s;
    });
    compute = (x, raw) => {
      forEachActive(x, (_, v) => {
        if (v !== 0 && v !== 1) throw new RowError(`Bernoulli naive Bayes requires 0 or 1 feature values, got ${v} (${who})`);
      });
      for (let c = 0; c < k; c++) raw[c] = base[c] + dot(x, thetaMinusNeg, c * d);
    };
  } else if (modelType === 'gaussian') {
    const sigma = decodeMatrix(row.sigma).data;
    const logVarSum = Float64Array.from({ length: k }, (_, c) => {
      let s = 0;
      for (let j = 0; j < d; j++) s += Math.log(sigma[c * d + j]);
      return s;
    });
    const xs = new Float64Array(d);
    compute = (x, raw) => {
      toDense(x, xs);
      for (let c = 0; c < k; c++) {
        let s = 0;
        for (let j = 0; j < d; j++) {
          const diff = xs[j] - th[c * d + j];
          s += (diff * diff) / sigma[c * d + j];
        }
        raw[c] = pi[c] - (s + logVarSum[c]) / 2;
      }
    };
  } else {
    throw new UnsupportedStageError(ctx.meta.className, `modelType ${modelType}`);
  }
  return classifierStage(ctx, {
    numClasses: k,
    hasProbability: true,
    compute(x, raw, prob) {
      compute(x, raw);
      softmaxInPlace(prob, raw);
    },
  });
}

export async function multilayerPerceptron(ctx: LoadCtx): Promise<Stage> {
  const row = (await ctx.readData())[0];
  const layers = ((row.layers as number[] | undefined) ?? ctx.meta.numArr('layers') ?? []).map(Number);
  const w = decodeVector(row.weights);
  if (layers.length < 2) throw new Error(`${describe(ctx)}: no layer sizes`);
  const acts = layers.map((n) => new Float64Array(n));
  const numClasses = layers[layers.length - 1];
  return classifierStage(ctx, {
    numClasses,
    hasProbability: true,
    compute(x, raw, prob) {
      toDense(x, acts[0]);
      let off = 0;
      for (let l = 0; l + 1 < layers.length; l++) {
        const nIn = layers[l];
        const nOut = layers[l + 1];
        const a = acts[l];
        const z = l + 2 === layers.length ? raw : acts[l + 1];
        const bOff = off + nOut * nIn;
        for (let o = 0; o < nOut; o++) z[o] = w[bOff + o];
        // z += W a, W column-major (nOut x nIn), accumulated column by column
        for (let i = 0; i < nIn; i++) {
          const ai = a[i];
          const col = off + i * nOut;
          for (let o = 0; o < nOut; o++) z[o] += w[col + o] * ai;
        }
        if (l + 2 < layers.length) for (let o = 0; o < nOut; o++) z[o] = 1 / (1 + Math.exp(-z[o]));
        off = bOff + nOut;
      }
      softmaxInPlace(prob, raw);
    },
  });
}

export async function kMeans(ctx: LoadCtx): Promise<Stage> {
  const rows = await ctx.readData();
  let centers: Float64Array[];
  if (rows.length > 0 && 'clusterCenter' in rows[0]) {
    const sorted = [...rows].sort((a, b) => Number(a.clusterIdx) - Number(b.clusterIdx));
    centers = sorted.map((r) => decodeVector(r.clusterCenter));
  } else {
    centers = ((rows[0]?.clusterCenters as unknown[]) ?? []).map(decodeVector);
  }
  const cosine = ctx.meta.str('distanceMeasure', 'euclidean') === 'cosine';
  const norms = centers.map((c) => Math.sqrt(c.reduce((s, x) => s + x * x, 0)));
  const d = centers[0]?.length ?? 0;
  const xs = new Float64Array(d);
  return scalarPredictorStage(ctx, 'clustering', (x) => {
    const v = x instanceof DenseVector ? x.values : toDense(x, xs);
    let best = 0;
    let bestDist = Infinity;
    let xNorm = 0;
    if (cosine) for (let j = 0; j < d; j++) xNorm += v[j] * v[j];
    xNorm = Math.sqrt(xNorm);
    for (let c = 0; c < centers.length; c++) {
      const ctr = centers[c];
      let dist = 0;
      if (cosine) {
        let dp = 0;
        for (let j = 0; j < d; j++) dp += v[j] * ctr[j];
        dist = 1 - dp / (norms[c] * xNorm);
      } else {
        for (let j = 0; j < d; j++) {
          const diff = v[j] - ctr[j];
          dist += diff * diff;
        }
      }
      if (dist < bestDist) {
        bestDist = dist;
        best = c;
      }
    }
    return best;
  });
}
