/** Column-wise scalar transformers: Imputer, Bucketizer, Binarizer. */
import { RowError } from '../errors.ts';
import { toDouble } from '../meta.ts';
import { asNumberOrNull, asVector, describe, type LoadCtx, type Stage, type Value } from '../runtime.ts';
import { DenseBuffer, DenseVector, isVector, javaBinarySearch } from '../vector.ts';

/** Builds a stage that maps each input column to its output column with its own function. */
function columnwise(
  ctx: LoadCtx,
  inputs: string[],
  outputs: string[],
  fns: Array<(v: Value, col: string) => Value>,
): Stage {
  const ins = inputs.map((c) => ctx.cols.slot(c));
  const outs = outputs.map((c) => ctx.cols.slot(c));
  const n = inputs.length;
  return {
    uid: ctx.meta.uid,
    className: ctx.meta.className,
    inputs,
    outputs,
    run(s) {
      for (let k = 0; k < n; k++) s[outs[k]] = fns[k](s[ins[k]], inputs[k]);
    },
  };
}

export async function imputer(ctx: LoadCtx): Promise<Stage> {
  const { inputs, outputs } = ctx.meta.ioCols();
  const row = (await ctx.readData())[0];
  const missing = ctx.meta.num('missingValue', NaN);
  const fns = inputs.map((c, k) => {
    if (!(c in row)) throw new Error(`${describe(ctx)}: no surrogate for column ${c}`);
    const surrogate = toDouble(row[c]);
    ctx.cols.setInfo(outputs[k], { kind: 'numeric' });
    // Spark SQL equality treats NaN = NaN as true
    return (v: Value, col: string): Value => {
      const x = asNumberOrNull(v, col);
      if (x === null) return surrogate;
      if (x === missing || (Number.isNaN(missing) && Number.isNaN(x))) return surrogate;
      return x;
    };
  });
  return columnwise(ctx, inputs, outputs, fns);
}

export async function bucketizer(ctx: LoadCtx): Promise<Stage> {
  const m = ctx.meta;
  const who = describe(ctx);
  const { inputs, outputs } = m.ioCols();
  const splitsArray: number[][] = m.isSet('splitsArray') || !m.isSet('splits')
    ? ((m.any('splitsArray') as unknown[][]) ?? []).map((a) => a.map(toDouble))
    : [m.numArr('splits') ?? []];
  const mode = m.str('handleInvalid', 'error');
  const fns = inputs.map((_, k) => {
    const splits = Float64Array.from(splitsArray[k] ?? []);
    if (splits.length < 2) throw new Error(`${who}: invalid splits`);
    ctx.cols.setInfo(outputs[k], { kind: 'numeric', numValues: splits.length - 1 });
    const last = splits[splits.length - 1];
    return (v: Value, col: string): Value => {
      const x = asNumberOrNull(v, col);
      if (x === null) {
        if (mode === 'skip') throw new RowError(`row skipped: null value in column "${col}" (${who}, handleInvalid=skip)`, col);
        return null;
      }
      if (Number.isNaN(x)) {
        if (mode === 'keep') return splits.length - 1;
        if (mode === 'skip') throw new RowError(`row skipped: NaN in column "${col}" (${who}, handleInvalid=skip)`, col);
        throw new RowError(`NaN in column "${col}" (${who}, handleInvalid=error)`, col);
      }
      if (x === last) return splits.length - 2;
      const idx = javaBinarySearch(splits, x);
      if (idx >= 0) return idx;
      const ins = -idx - 1;
      if (ins === 0 || ins === splits.length) {
        throw new RowError(`value ${x} of column "${col}" is out of bucket bounds [${splits[0]}, ${last}] (${who})`, col);
      }
      return ins - 1;
    };
  });
  return columnwise(ctx, inputs, outputs, fns);
}

export async function binarizer(ctx: LoadCtx): Promise<Stage> {
  const m = ctx.meta;
  const who = describe(ctx);
  const { inputs, outputs } = m.ioCols();
  const thresholds = m.isSet('thresholds') ? m.numArr('thresholds')! : inputs.map(() => m.num('threshold', 0));
  const fns = inputs.map((c, k) => {
    const t = thresholds[k];
    const info = ctx.cols.info(c);
    ctx.cols.setInfo(outputs[k], info.kind === 'vector' ? { kind: 'vector', size: info.size } : { kind: 'numeric' });
    const buf = new DenseBuffer();
    return (v: Value, col: string): Value => {
      if (v === null || v === undefined) return null;
      if (isVector(v) || Array.isArray(v)) {
        const vec = asVector(v, col, who);
        const out = buf.get(vec.size);
        const a = out.values;
        if (vec instanceof DenseVector) for (let i = 0; i < a.length; i++) a[i] = vec.values[i] > t ? 1 : 0;
        else {
          a.fill(0 > t ? 1 : 0);
          for (let j = 0; j < vec.nnz; j++) a[vec.indices[j]] = vec.values[j] > t ? 1 : 0;
        }
        return out;
      }
      const x = asNumberOrNull(v, col)!;
      return x > t ? 1 : 0;
    };
  });
  return columnwise(ctx, inputs, outputs, fns);
}
