/** Vector -> vector feature transformers: scalers, Normalizer, PCA, feature selectors, slicers. */
import { UnsupportedStageError } from '../errors.ts';
import { asVector, describe, type LoadCtx, type Stage } from '../runtime.ts';
import { DenseBuffer, DenseVector, decodeMatrix, decodeVector, vget, type Vector } from '../vector.ts';

type VecFn = (v: Vector, out: Float64Array) => void;

/** A stage mapping one vector column to a dense vector of outSize (or of the input's size when undefined). */
function vectorMap(ctx: LoadCtx, inCol: string, outCol: string, outSize: number | undefined, fn: VecFn): Stage {
  const who = describe(ctx);
  const inSlot = ctx.cols.slot(inCol);
  const outSlot = ctx.cols.slot(outCol);
  const inInfo = ctx.cols.info(inCol);
  ctx.cols.setInfo(outCol, { kind: 'vector', size: outSize ?? inInfo.size });
  const buf = new DenseBuffer();
  return {
    uid: ctx.meta.uid,
    className: ctx.meta.className,
    inputs: [inCol],
    outputs: [outCol],
    run(s) {
      const v = asVector(s[inSlot], inCol, who);
      const out = buf.get(outSize ?? v.size);
      fn(v, out.values);
      s[outSlot] = out;
    },
  };
}

function io(ctx: LoadCtx, inName = 'inputCol'): [string, string] {
  return [ctx.meta.str(inName), ctx.meta.str('outputCol', `${ctx.meta.uid}__output`)];
}

function densify(v: Vector, out: Float64Array): Float64Array {
  if (v instanceof DenseVector) {
    out.set(v.values);
  } else {
    out.fill(0);
    for (let k = 0; k < v.nnz; k++) out[v.indices[k]] = v.values[k];
  }
  return out;
}

function checkSize(v: Vector, n: number, who: string): void {
  if (v.size !== n) throw new Error(`${who}: vector of size ${v.size}, expected ${n}`);
}

export async function standardScaler(ctx: LoadCtx): Promise<Stage> {
  const [inCol, outCol] = io(ctx);
  const row = (await ctx.readData())[0];
  const std = decodeVector(row.std);
  const mean = decodeVector(row.mean);
  const withMean = ctx.meta.bool('withMean', false);
  const withStd = ctx.meta.bool('withStd', true);
  const scale = std.map((x) => (x === 0 ? 0 : 1 / x));
  const n = std.length;
  const who = describe(ctx);
  return vectorMap(ctx, inCol, outCol, n, (v, out) => {
    checkSize(v, n, who);
    densify(v, out);
    for (let i = 0; i < n; i++) {
      if (withMean && withStd) out[i] = (out[i] - mean[i]) * scale[i];
      else if (withMean) out[i] = out[i] - mean[i];
      else if (withStd) out[i] = out[i] * scale[i];
    }
  });
}

export async function maxAbsScaler(ctx: LoadCtx): Promise<Stage> {
  const [inCol, outCol] = io(ctx);
  const maxAbs = decodeVector((await ctx.readData())[0].maxAbs);
  const n = maxAbs.length;
  const legacy = ctx.meta.majorVersion < 3; // Spark 2 divided, Spark 3+ multiplies by the reciprocal
  const scale = maxAbs.map((x) => (x === 0 ? 1 : 1 / x));
  const unzero = maxAbs.map((x) => (x === 0 ? 1 : x));
  const who = describe(ctx);
  return vectorMap(ctx, inCol, outCol, n, (v, out) => {
    checkSize(v, n, who);
    densify(v, out);
    for (let i = 0; i < n; i++) out[i] = legacy ? out[i] / unzero[i] : out[i] * scale[i];
  });
}

export async function minMaxScaler(ctx: LoadCtx): Promise<Stage> {
  const [inCol, outCol] = io(ctx);
  const row = (await ctx.readData())[0];
  const lo = decodeVector(row.originalMin);
  const hi = decodeVector(row.originalMax);
  const min = ctx.meta.num('min', 0);
  const max = ctx.meta.num('max', 1);
  const n = hi.length;
  const scale = max - min;
  const constant = (min + max) / 2;
  const scaleArr = hi.map((h, i) => (h - lo[i] !== 0 ? scale / (h - lo[i]) : 0));
  const who = describe(ctx);
  return vectorMap(ctx, inCol, outCol, n, (v, out) => {
    checkSize(v, n, who);
    densify(v, out);
    for (let i = 0; i < n; i++) {
      if (!Number.isNaN(out[i])) out[i] = scaleArr[i] !== 0 ? (out[i] - lo[i]) * scaleArr[i] + min : constant;
    }
  });
}

export async function normalizer(ctx: LoadCtx): Promise<Stage> {
  const [inCol, outCol] = io(ctx);
  const p = ctx.meta.num('p', 2);
  return vectorMap(ctx, inCol, outCol, undefined, (v, out) => {
    densify(v, out);
    let norm = 0;
    if (p === 1) for (const x of out) norm += Math.abs(x);
    else if (p === 2) {
      for (const x of out) norm += x * x;
      norm = Math.sqrt(norm);
    } else if (p === Infinity) for (const x of out) norm = Math.max(norm, Math.abs(x));
    else {
      for (const x of out) norm += Math.pow(Math.abs(x), p);
      norm = Math.pow(norm, 1 / p);
    }
    if (norm !== 0) for (let i = 0; i < out.length; i++) out[i] /= norm;
  });
}

export async function elementwiseProduct(ctx: LoadCtx): Promise<Stage> {
  const [inCol, outCol] = io(ctx);
  const raw = ctx.meta.any('scalingVec');
  const w = decodeVector(typeof raw === 'string' ? JSON.parse(raw) : raw);
  const who = describe(ctx);
  return vectorMap(ctx, inCol, outCol, w.length, (v, out) => {
    checkSize(v, w.length, who);
    densify(v, out);
    for (let i = 0; i < out.length; i++) out[i] *= w[i];
  });
}

export async function pca(ctx: LoadCtx): Promise<Stage> {
  const [inCol, outCol] = io(ctx);
  const pc = decodeMatrix((await ctx.readData())[0].pc); // inputDim x k
  const { rows, cols, data } = pc;
  const x = new Float64Array(rows);
  const who = describe(ctx);
  return vectorMap(ctx, inCol, outCol, cols, (v, out) => {
    checkSize(v, rows, who);
    densify(v, x);
    for (let j = 0; j < cols; j++) {
      let s = 0;
      for (let i = 0; i < rows; i++) s += data[i * cols + j] * x[i];
      out[j] = s;
    }
  });
}

/** ChiSqSelector, UnivariateFeatureSelector, VarianceThresholdSelector: keep selectedFeatures (sorted). */
export async function featureSelector(ctx: LoadCtx): Promise<Stage> {
  const inCol = ctx.meta.str('featuresCol', 'features');
  const outCol = ctx.meta.str('outputCol', `${ctx.meta.uid}__output`);
  const sel = Int32Array.from(((await ctx.readData())[0].selectedFeatures as number[]).map(Number)).sort();
  return slicer(ctx, inCol, outCol, sel);
}

export async function vectorSlicer(ctx: LoadCtx): Promise<Stage> {
  const names = ctx.meta.strArr('names') ?? [];
  if (names.length > 0) throw new UnsupportedStageError(ctx.meta.className, 'slicing by feature names is not supported');
  const [inCol, outCol] = io(ctx);
  return slicer(ctx, inCol, outCol, Int32Array.from(ctx.meta.numArr('indices') ?? []));
}

function slicer(ctx: LoadCtx, inCol: string, outCol: string, sel: Int32Array): Stage {
  const inInfo = ctx.cols.info(inCol);
  const stage = vectorMap(ctx, inCol, outCol, sel.length, (v, out) => {
    if (v instanceof DenseVector) for (let j = 0; j < sel.length; j++) out[j] = v.values[sel[j]];
    else for (let j = 0; j < sel.length; j++) out[j] = vget(v, sel[j]);
  });
  if (inInfo.elementValues) {
    const ev = inInfo.elementValues;
    ctx.cols.setInfo(outCol, { kind: 'vector', size: sel.length, elementValues: Array.from(sel, (i) => ev[i] ?? 0) });
  }
  return stage;
}
