/** Category handling: StringIndexer, IndexToString, OneHotEncoder (model and Spark 2 transformer), VectorIndexer. */
import { RowError } from '../errors.ts';
import { asNumberOrNull, asStringOrNull, asVector, describe, type LoadCtx, type Stage, type Value } from '../runtime.ts';
import { DenseBuffer, SparseVector, toDense } from '../vector.ts';

export async function stringIndexer(ctx: LoadCtx): Promise<Stage> {
  const m = ctx.meta;
  const who = describe(ctx);
  const { inputs, outputs } = m.ioCols();
  const row = (await ctx.readData())[0];
  // Spark 3+: labelsArray (one array per input column); Spark 2: labels
  const labelsArray: string[][] = Array.isArray(row.labelsArray)
    ? (row.labelsArray as string[][]).map((a) => a.map(String))
    : [((row.labels as string[]) ?? []).map(String)];
  const mode = m.str('handleInvalid', 'error');
  const ins = inputs.map((c) => ctx.cols.slot(c));
  const outs = outputs.map((c) => ctx.cols.slot(c));
  const maps = inputs.map((_, k) => {
    const labels = labelsArray[k] ?? [];
    const map = new Map<string, number>();
    labels.forEach((l, i) => {
      if (!map.has(l)) map.set(l, i);
    });
    const keep = mode === 'keep';
    ctx.cols.setInfo(outputs[k], {
      kind: 'numeric',
      numValues: labels.length + (keep ? 1 : 0),
      labels: keep ? [...labels, '__unknown'] : labels,
    });
    return { map, size: labels.length };
  });
  const n = inputs.length;
  return {
    uid: m.uid,
    className: m.className,
    inputs,
    outputs,
    run(s: Value[]) {
      for (let k = 0; k < n; k++) {
        const v = s[ins[k]];
        const { map, size } = maps[k];
        const str = asStringOrNull(v);
        let idx: number | undefined;
        if (str !== null) {
          idx = map.get(str);
          // a double column cast to string reads "8.0" where JSON gives 8
          if (idx === undefined && typeof v === 'number' && Number.isInteger(v)) idx = map.get(`${v}.0`);
        }
        if (idx === undefined) {
          if (mode === 'keep') idx = size;
          else {
            const what = str === null ? 'null value' : `unseen label ${JSON.stringify(str)}`;
            const prefix = mode === 'skip' ? 'row skipped: ' : '';
            throw new RowError(`${prefix}${what} in column "${inputs[k]}" (${who}, handleInvalid=${mode})`, inputs[k]);
          }
        }
        s[outs[k]] = idx;
      }
    },
  };
}

export async function indexToString(ctx: LoadCtx): Promise<Stage> {
  const m = ctx.meta;
  const who = describe(ctx);
  const inCol = m.str('inputCol');
  const outCol = m.str('outputCol', `${m.uid}__output`);
  const given = m.strArr('labels') ?? [];
  const labels = given.length > 0 ? given : ctx.cols.info(inCol).labels;
  const inSlot = ctx.cols.slot(inCol);
  const outSlot = ctx.cols.slot(outCol);
  ctx.cols.setInfo(outCol, { kind: 'string' });
  return {
    uid: m.uid,
    className: m.className,
    inputs: [inCol],
    outputs: [outCol],
    indexToString: { inputCol: inCol, labels: given.length > 0 ? given : undefined },
    run(s) {
      const x = asNumberOrNull(s[inSlot], inCol);
      if (x === null) {
        s[outSlot] = null;
        return;
      }
      if (!labels) throw new RowError(`${who}: no labels known for column "${inCol}"`, inCol);
      const i = Math.trunc(x);
      if (i < 0 || i >= labels.length) throw new RowError(`unseen index ${x} in column "${inCol}" (${who})`, inCol);
      s[outSlot] = labels[i];
    },
  };
}

/** One reusable single-entry sparse vector per column. */
function oneHotWriter(size: number): (idx: number) => SparseVector {
  const v = new SparseVector(size, new Int32Array(1), Float64Array.of(1), 0);
  return (idx) => {
    if (idx >= 0 && idx < size) {
      v.indices[0] = idx;
      v.nnz = 1;
    } else v.nnz = 0;
    return v;
  };
}

export async function oneHotEncoderModel(ctx: LoadCtx): Promise<Stage> {
  const m = ctx.meta;
  const who = describe(ctx);
  const { inputs, outputs } = m.ioCols();
  const categorySizes = ((await ctx.readData())[0].categorySizes as number[]).map(Number);
  const dropLast = m.bool('dropLast', true);
  const keep = m.str('handleInvalid', 'error') === 'keep';
  const ins = inputs.map((c) => ctx.cols.slot(c));
  const outs = outputs.map((c) => ctx.cols.slot(c));
  const writers = categorySizes.map((orig, k) => {
    const size = !dropLast && keep ? orig + 1 : dropLast && !keep ? orig - 1 : orig;
    ctx.cols.setInfo(outputs[k], { kind: 'vector', size, elementValues: new Array(size).fill(0) });
    return oneHotWriter(size);
  });
  const n = inputs.length;
  return {
    uid: m.uid,
    className: m.className,
    inputs,
    outputs,
    run(s) {
      for (let k = 0; k < n; k++) {
        const x = asNumberOrNull(s[ins[k]], inputs[k]);
        if (x === null) {
          s[outs[k]] = null;
          continue;
        }
        const orig = categorySizes[k];
        let idx: number;
        if (x >= 0 && x < orig) idx = Math.trunc(x);
        else if (keep) idx = orig;
        else {
          const what = x < 0 ? `negative value ${x}` : `unseen value ${x}`;
          throw new RowError(`${what} in column "${inputs[k]}" (${who}, handleInvalid=error)`, inputs[k]);
        }
        s[outs[k]] = writers[k](idx);
      }
    },
  };
}

/** Spark 2.x's deprecated OneHotEncoder transformer: the category count comes from column metadata. */
export async function legacyOneHotEncoder(ctx: LoadCtx): Promise<Stage> {
  const m = ctx.meta;
  const inCol = m.str('inputCol');
  const outCol = m.str('outputCol', `${m.uid}__output`);
  const info = ctx.cols.info(inCol);
  const numValues = info.numValues ?? (info.kind === 'numeric' && info.labels ? info.labels.length : undefined);
  if (numValues === undefined) {
    throw new Error(`${describe(ctx)}: the number of categories of column "${inCol}" is unknown (no nominal metadata)`);
  }
  const size = numValues - (m.bool('dropLast', true) ? 1 : 0);
  ctx.cols.setInfo(outCol, { kind: 'vector', size, elementValues: new Array(size).fill(0) });
  const write = oneHotWriter(size);
  const inSlot = ctx.cols.slot(inCol);
  const outSlot = ctx.cols.slot(outCol);
  return {
    uid: m.uid,
    className: m.className,
    inputs: [inCol],
    outputs: [outCol],
    run(s) {
      const x = asNumberOrNull(s[inSlot], inCol);
      s[outSlot] = x === null ? null : write(x < size ? Math.trunc(x) : -1);
    },
  };
}

export async function vectorIndexer(ctx: LoadCtx): Promise<Stage> {
  const m = ctx.meta;
  const who = describe(ctx);
  const inCol = m.str('inputCol');
  const outCol = m.str('outputCol', `${m.uid}__output`);
  const row = (await ctx.readData())[0];
  const numFeatures = Number(row.numFeatures);
  const mode = m.str('handleInvalid', 'error');
  const rawMaps = (row.categoryMaps ?? {}) as Record<string, Record<string, number>> | Map<unknown, unknown>;
  const entries: Array<[number, Map<number, number>]> = [];
  const asEntries = (o: unknown): Array<[unknown, unknown]> =>
    o instanceof Map ? [...o.entries()] : Object.entries(o as Record<string, unknown>);
  for (const [f, inner] of asEntries(rawMaps)) {
    const map = new Map<number, number>();
    for (const [value, index] of asEntries(inner)) map.set(Number(value), Number(index));
    entries.push([Number(f), map]);
  }
  entries.sort((a, b) => a[0] - b[0]);
  const elementValues = new Array(numFeatures).fill(0);
  for (const [f, map] of entries) elementValues[f] = map.size + (mode === 'keep' ? 1 : 0);
  ctx.cols.setInfo(outCol, { kind: 'vector', size: numFeatures, elementValues });
  const inSlot = ctx.cols.slot(inCol);
  const outSlot = ctx.cols.slot(outCol);
  const buf = new DenseBuffer();
  return {
    uid: m.uid,
    className: m.className,
    inputs: [inCol],
    outputs: [outCol],
    run(s) {
      const v = asVector(s[inSlot], inCol, who);
      if (v.size !== numFeatures) {
        throw new RowError(`column "${inCol}": vector of size ${v.size}, expected ${numFeatures} (${who})`, inCol);
      }
      const out = buf.get(numFeatures);
      const a = toDense(v, out.values);
      for (let e = 0; e < entries.length; e++) {
        const [f, map] = entries[e];
        const idx = map.get(a[f]);
        if (idx !== undefined) a[f] = idx;
        else if (mode === 'keep') a[f] = map.size;
        else {
          const prefix = mode === 'skip' ? 'row skipped: ' : '';
          throw new RowError(`${prefix}invalid value ${a[f]} for categorical feature ${f} of column "${inCol}" (${who})`, inCol);
        }
      }
      s[outSlot] = out;
    },
  };
}
