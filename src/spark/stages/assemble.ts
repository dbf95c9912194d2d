/** VectorAssembler, Interaction, VectorSizeHint. */
import { RowError } from '../errors.ts';
import { asNumberOrNull, asVector, describe, type ColInfo, type LoadCtx, type Stage, type Value } from '../runtime.ts';
import { DenseBuffer, DenseVector, isVector, SparseBuilder, type Vector } from '../vector.ts';

/** Per input column: how many output entries it takes and the category counts of its entries. */
function widthOf(info: ColInfo): number | undefined {
  if (info.kind === 'vector') return info.size ?? info.elementValues?.length;
  if (info.kind === 'numeric' || info.kind === 'unknown') return 1;
  return undefined;
}

export async function vectorAssembler(ctx: LoadCtx): Promise<Stage> {
  const m = ctx.meta;
  const who = describe(ctx);
  const inputs = m.strArr('inputCols') ?? [];
  const output = m.str('outputCol', `${m.uid}__output`);
  // Spark < 2.4 had no handleInvalid: nulls fail, NaN passes
  const mode = m.has('handleInvalid') ? m.str('handleInvalid') : 'legacy';
  const slotsIn = inputs.map((c) => ctx.cols.slot(c));
  const out = ctx.cols.slot(output);
  const infos = inputs.map((c) => ctx.cols.info(c));
  const widths = infos.map(widthOf);
  const elementValues: number[] = [];
  let known = true;
  for (let k = 0; k < infos.length; k++) {
    const w = widths[k];
    if (w === undefined) {
      known = false;
      continue;
    }
    if (infos[k].kind === 'vector') {
      for (let i = 0; i < w; i++) elementValues.push(infos[k].elementValues?.[i] ?? 0);
    } else {
      elementValues.push(infos[k].numValues ?? 0);
    }
  }
  ctx.cols.setInfo(output, known ? { kind: 'vector', size: elementValues.length, elementValues } : { kind: 'vector' });

  const n = inputs.length;
  const vals: Array<number | Vector | null> = new Array(n).fill(null);
  const dense = new DenseBuffer();
  const sparse = new SparseBuilder();
  return {
    uid: m.uid,
    className: m.className,
    inputs,
    outputs: [output],
    run(s: Value[]) {
      let total = 0;
      let hasSparse = false;
      for (let k = 0; k < n; k++) {
        const raw = s[slotsIn[k]];
        let v: number | Vector | null;
        if (isVector(raw)) {
          v = raw;
          if (!(raw instanceof DenseVector)) hasSparse = true;
          total += raw.size;
        } else if (raw === null || raw === undefined) {
          if (mode === 'keep' && widths[k] !== undefined) {
            v = null;
            total += widths[k]!;
          } else if (mode === 'skip') {
            throw new RowError(`row skipped: null value in column "${inputs[k]}" (${who}, handleInvalid=skip)`, inputs[k]);
          } else {
            throw new RowError(`null value in column "${inputs[k]}" (${who}, handleInvalid=${mode})`, inputs[k]);
          }
        } else if (Array.isArray(raw) || typeof raw === 'object') {
          v = asVector(raw, inputs[k], who);
          total += v.size;
        } else {
          const x = asNumberOrNull(raw, inputs[k])!;
          if (Number.isNaN(x) && mode !== 'keep' && mode !== 'legacy') {
            throw new RowError(
              mode === 'skip'
                ? `row skipped: NaN in column "${inputs[k]}" (${who}, handleInvalid=skip)`
                : `NaN in column "${inputs[k]}" (${who}, handleInvalid=error)`,
              inputs[k],
            );
          }
          v = x;
          total += 1;
        }
        vals[k] = v;
      }
      if (hasSparse && total > 4096) {
        sparse.reset();
        let off = 0;
        for (let k = 0; k < n; k++) {
          const v = vals[k];
          if (v === null) {
            for (let i = 0; i < widths[k]!; i++) sparse.push(off + i, NaN);
            off += widths[k]!;
          } else if (typeof v === 'number') {
            if (v !== 0) sparse.push(off, v);
            off += 1;
          } else if (v instanceof DenseVector) {
            for (let i = 0; i < v.values.length; i++) if (v.values[i] !== 0) sparse.push(off + i, v.values[i]);
            off += v.size;
          } else {
            for (let j = 0; j < v.nnz; j++) if (v.values[j] !== 0) sparse.push(off + v.indices[j], v.values[j]);
            off += v.size;
          }
        }
        s[out] = sparse.build(total);
        return;
      }
      const dv = dense.get(total);
      const a = dv.values;
      let off = 0;
      for (let k = 0; k < n; k++) {
        const v = vals[k];
        if (v === null) {
          a.fill(NaN, off, off + widths[k]!);
          off += widths[k]!;
        } else if (typeof v === 'number') {
          a[off++] = v;
        } else if (v instanceof DenseVector) {
          a.set(v.values, off);
          off += v.size;
        } else {
          a.fill(0, off, off + v.size);
          for (let j = 0; j < v.nnz; j++) a[off + v.indices[j]] = v.values[j];
          off += v.size;
        }
      }
      s[out] = dv;
    },
  };
}

export async function vectorSizeHint(ctx: LoadCtx): Promise<Stage> {
  const m = ctx.meta;
  const who = describe(ctx);
  const col = m.str('inputCol');
  const size = m.num('size');
  const mode = m.str('handleInvalid', 'error');
  const slot = ctx.cols.slot(col);
  const info = ctx.cols.info(col);
  ctx.cols.setInfo(col, { ...info, kind: 'vector', size });
  return {
    uid: m.uid,
    className: m.className,
    inputs: [col],
    outputs: [col],
    run(s) {
      if (mode === 'optimistic') return;
      const v = s[slot];
      const bad =
        v === null || v === undefined ? 'null vector' : isVector(v) && v.size !== size ? `vector of size ${v.size}` : '';
      if (bad) {
        const prefix = mode === 'skip' ? 'row skipped: ' : '';
        throw new RowError(`${prefix}${bad} in column "${col}", expected size ${size} (${who})`, col);
      }
    },
  };
}

export async function interaction(ctx: LoadCtx): Promise<Stage> {
  const m = ctx.meta;
  const who = describe(ctx);
  const inputs = m.strArr('inputCols') ?? [];
  const output = m.str('outputCol', `${m.uid}__output`);
  const slotsIn = inputs.map((c) => ctx.cols.slot(c));
  const out = ctx.cols.slot(output);
  // category counts of each input's features (1 = numeric)
  const encoders: Array<number[] | null> = inputs.map((c) => {
    const info = ctx.cols.info(c);
    if (info.kind === 'vector') {
      if (info.elementValues) return info.elementValues.map((x) => Math.max(1, x));
      return info.size !== undefined ? new Array(info.size).fill(1) : null;
    }
    return [Math.max(1, info.numValues ?? 1)];
  });
  const sizes = encoders.map((e) => (e ? e.reduce((a, b) => a + b, 0) : undefined));
  if (sizes.every((x) => x !== undefined)) {
    ctx.cols.setInfo(output, { kind: 'vector', size: sizes.reduce((a, b) => a! * b!, 1) });
  } else {
    ctx.cols.setInfo(output, { kind: 'vector' });
  }
  let pi: number[] = [];
  let pv: number[] = [];
  let ci: number[] = [];
  let cv: number[] = [];
  const builder = new SparseBuilder();
  const emitter = (i: number, a: number, prevSize: number): void => {
    for (let j = 0; j < pi.length; j++) {
      ci.push(pi[j] + i * prevSize);
      cv.push(pv[j] * a);
    }
  };
  return {
    uid: m.uid,
    className: m.className,
    inputs,
    outputs: [output],
    run(s) {
      pi.length = 0;
      pv.length = 0;
      pi.push(0);
      pv.push(1);
      let size = 1;
      for (let f = inputs.length - 1; f >= 0; f--) {
        const raw = s[slotsIn[f]];
        if (raw === null || raw === undefined) {
          throw new RowError(`null value in column "${inputs[f]}" (${who}: values to interact cannot be null)`, inputs[f]);
        }
        const prevSize = size;
        ci.length = 0;
        cv.length = 0;
        if (isVector(raw) || Array.isArray(raw)) {
          const vec = asVector(raw, inputs[f], who);
          const enc = encoders[f] ?? new Array(vec.size).fill(1);
          if (enc.length !== vec.size) {
            throw new RowError(`column "${inputs[f]}": vector size ${vec.size}, expected ${enc.length} (${who})`, inputs[f]);
          }
          let offset = 0;
          const offsets = enc.map((w) => ((offset += w), offset - w));
          const visit = (i: number, x: number): void => {
            const k = enc[i];
            if (k > 1) emitter(offsets[i] + checkIndex(x, k, inputs[f], who), 1, prevSize);
            else emitter(offsets[i], x, prevSize);
          };
          if (vec instanceof DenseVector) for (let i = 0; i < vec.size; i++) visit(i, vec.values[i]);
          else for (let j = 0; j < vec.nnz; j++) visit(vec.indices[j], vec.values[j]);
          size *= offset;
        } else {
          const x = asNumberOrNull(raw, inputs[f])!;
          const k = encoders[f]![0];
          if (k > 1) emitter(checkIndex(x, k, inputs[f], who), 1, prevSize);
          else emitter(0, x, prevSize);
          size *= k;
        }
        [pi, ci] = [ci, pi];
        [pv, cv] = [cv, pv];
      }
      builder.reset();
      for (let j = 0; j < pi.length; j++) builder.push(pi[j], pv[j]);
      s[out] = builder.build(size);
    },
  };
}

function checkIndex(x: number, k: number, col: string, who: string): number {
  if (!(x >= 0 && x === Math.trunc(x) && x < k)) {
    throw new RowError(`column "${col}": values must be category indices below ${k}, got ${x} (${who})`, col);
  }
  return x;
}
