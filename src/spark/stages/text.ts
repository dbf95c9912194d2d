/** Text features: Tokenizer, RegexTokenizer, StopWordsRemover, NGram, CountVectorizer, HashingTF, IDF, Word2Vec. */
import { RowError } from '../errors.ts';
import { hashTerm, nonNegativeMod } from '../murmur3.ts';
import { asStringArray, asVector, describe, type LoadCtx, type Stage, type Value } from '../runtime.ts';
import { DenseBuffer, DenseVector, decodeVector, SparseBuilder, SparseVector } from '../vector.ts';

function unary(ctx: LoadCtx, kind: 'array' | 'vector', fn: (v: Value, col: string) => Value): Stage {
  const m = ctx.meta;
  const { inputs, outputs } = m.ioCols();
  const ins = inputs.map((c) => ctx.cols.slot(c));
  const outs = outputs.map((c) => ctx.cols.slot(c));
  for (const o of outputs) ctx.cols.setInfo(o, { kind });
  return {
    uid: m.uid,
    className: m.className,
    inputs,
    outputs,
    run(s) {
      for (let k = 0; k < ins.length; k++) s[outs[k]] = fn(s[ins[k]], inputs[k]);
    },
  };
}

function stringInput(v: Value, col: string, who: string): string {
  if (v === null || v === undefined) throw new RowError(`null value in column "${col}" (${who})`, col);
  return String(v);
}

/** Java's String.split(regex): no trailing empty strings. */
function javaSplit(str: string, re: RegExp): string[] {
  const parts = str.split(re);
  let end = parts.length;
  while (end > 1 && parts[end - 1] === '') end--;
  if (end === 1 && parts[0] === '' && str.length > 0) return [];
  return parts.slice(0, end);
}

/** Java regex -> JS RegExp (leading inline flags such as (?i) become RegExp flags). */
function javaRegex(pattern: string, global: boolean): RegExp {
  let flags = global ? 'g' : '';
  const m = /^\(\?([imsx]+)\)/.exec(pattern);
  if (m) {
    pattern = pattern.slice(m[0].length);
    for (const f of m[1]) if (f !== 'x' && !flags.includes(f)) flags += f;
  }
  return new RegExp(pattern, flags);
}

export async function tokenizer(ctx: LoadCtx): Promise<Stage> {
  const who = describe(ctx);
  const ws = /[ \t\n\x0B\f\r]/;
  return unary(ctx, 'array', (v, col) => javaSplit(stringInput(v, col, who).toLowerCase(), ws));
}

export async function regexTokenizer(ctx: LoadCtx): Promise<Stage> {
  const m = ctx.meta;
  const who = describe(ctx);
  const gaps = m.bool('gaps', true);
  const re = javaRegex(m.str('pattern', '\\s+'), !gaps);
  const lower = m.bool('toLowercase', true);
  const minLen = m.num('minTokenLength', 1);
  return unary(ctx, 'array', (v, col) => {
    let str = stringInput(v, col, who);
    if (lower) str = str.toLowerCase();
    const tokens = gaps ? javaSplit(str, re) : Array.from(str.matchAll(re), (x) => x[0]);
    return tokens.filter((t) => t.length >= minLen);
  });
}

export async function stopWordsRemover(ctx: LoadCtx): Promise<Stage> {
  const m = ctx.meta;
  const who = describe(ctx);
  const caseSensitive = m.bool('caseSensitive', false);
  const locale = m.str('locale', 'en').replace('_', '-');
  const lower = (x: string): string => {
    try {
      return x.toLocaleLowerCase(locale);
    } catch {
      return x.toLowerCase();
    }
  };
  const words = m.strArr('stopWords') ?? [];
  const set = new Set(caseSensitive ? words : words.map(lower));
  return unary(ctx, 'array', (v, col) =>
    asStringArray(v, col, who).filter((t) => t === null || !set.has(caseSensitive ? t : lower(t))),
  );
}

export async function nGram(ctx: LoadCtx): Promise<Stage> {
  const who = describe(ctx);
  const n = ctx.meta.num('n', 2);
  return unary(ctx, 'array', (v, col) => {
    const terms = asStringArray(v, col, who);
    const out: string[] = [];
    for (let i = 0; i + n <= terms.length; i++) out.push(terms.slice(i, i + n).join(' '));
    return out;
  });
}

/** Term counting into a reused sparse vector (indices sorted). */
class TermCounts {
  private readonly counts = new Map<number, number>();
  private readonly keys: number[] = [];
  private readonly builder = new SparseBuilder();
  add(i: number, binary: boolean): void {
    this.counts.set(i, binary ? 1 : (this.counts.get(i) ?? 0) + 1);
  }
  build(size: number, minCount: number, binary: boolean): SparseVector {
    this.keys.length = 0;
    for (const [k, c] of this.counts) if (c >= minCount) this.keys.push(k);
    this.keys.sort((a, b) => a - b);
    this.builder.reset();
    for (const k of this.keys) this.builder.push(k, binary ? 1 : this.counts.get(k)!);
    this.counts.clear();
    return this.builder.build(size);
  }
}

export async function countVectorizer(ctx: LoadCtx): Promise<Stage> {
  const m = ctx.meta;
  const who = describe(ctx);
  const vocab = ((await ctx.readData())[0].vocabulary as string[]).map(String);
  const dict = new Map<string, number>();
  vocab.forEach((w, i) => dict.set(w, i));
  const minTF = m.num('minTF', 1);
  const binary = m.bool('binary', false);
  const counts = new TermCounts();
  const stage = unary(ctx, 'vector', (v, col) => {
    const terms = asStringArray(v, col, who);
    for (const t of terms) {
      const i = dict.get(t);
      if (i !== undefined) counts.add(i, false);
    }
    const effective = minTF >= 1 ? minTF : terms.length * minTF;
    return counts.build(vocab.length, effective, binary);
  });
  for (const o of stage.outputs) ctx.cols.setInfo(o, { kind: 'vector', size: vocab.length });
  return stage;
}

export async function hashingTF(ctx: LoadCtx): Promise<Stage> {
  const m = ctx.meta;
  const who = describe(ctx);
  const numFeatures = m.num('numFeatures', 1 << 18);
  const binary = m.bool('binary', false);
  const legacy = m.majorVersion < 3;
  const counts = new TermCounts();
  const stage = unary(ctx, 'vector', (v, col) => {
    if (v === null || v === undefined) throw new RowError(`null value in column "${col}" (${who})`, col);
    if (!Array.isArray(v)) throw new RowError(`column "${col}": expected an array of terms (${who})`, col);
    for (const t of v) counts.add(nonNegativeMod(hashTerm(t, legacy), numFeatures), binary);
    return counts.build(numFeatures, 0, binary);
  });
  for (const o of stage.outputs) ctx.cols.setInfo(o, { kind: 'vector', size: numFeatures });
  return stage;
}

export async function idf(ctx: LoadCtx): Promise<Stage> {
  const who = describe(ctx);
  const weights = decodeVector((await ctx.readData())[0].idf);
  const dense = new DenseBuffer();
  const sparse = new SparseBuilder();
  const stage = unary(ctx, 'vector', (v, col) => {
    const vec = asVector(v, col, who);
    if (vec.size !== weights.length) {
      throw new RowError(`column "${col}": vector of size ${vec.size}, expected ${weights.length} (${who})`, col);
    }
    if (vec instanceof DenseVector) {
      const out = dense.get(vec.size);
      for (let i = 0; i < vec.size; i++) out.values[i] = vec.values[i] * weights[i];
      return out;
    }
    sparse.reset();
    for (let k = 0; k < vec.nnz; k++) sparse.push(vec.indices[k], vec.values[k] * weights[vec.indices[k]]);
    return sparse.build(vec.size);
  });
  for (const o of stage.outputs) ctx.cols.setInfo(o, { kind: 'vector', size: weights.length });
  return stage;
}

export async function word2Vec(ctx: LoadCtx): Promise<Stage> {
  const who = describe(ctx);
  const rows = await ctx.readData();
  const vectors = new Map<string, Float64Array>();
  if (rows.length > 0 && 'wordIndex' in rows[0]) {
    // Spark 1.x layout: one row with wordIndex map and a flat wordVectors array
    const index = rows[0].wordIndex as Record<string, number>;
    const flat = (rows[0].wordVectors as number[]).map(Number);
    const d = flat.length / Math.max(1, Object.keys(index).length);
    for (const [w, i] of Object.entries(index)) vectors.set(w, Float64Array.from(flat.slice(i * d, (i + 1) * d)));
  } else {
    for (const r of rows) vectors.set(String(r.word), Float64Array.from((r.vector as number[]).map(Number)));
  }
  const first = vectors.values().next().value as Float64Array | undefined;
  const d = ctx.meta.num('vectorSize', first?.length ?? 100);
  const buf = new DenseBuffer();
  const empty = new SparseVector(d, new Int32Array(0), new Float64Array(0));
  const stage = unary(ctx, 'vector', (v, col) => {
    const words = asStringArray(v, col, who);
    if (words.length === 0) return empty;
    const out = buf.get(d);
    const sum = out.values;
    sum.fill(0);
    for (const w of words) {
      const wv = vectors.get(w);
      if (wv) for (let i = 0; i < d; i++) sum[i] += wv[i];
    }
    const scale = 1 / words.length;
    for (let i = 0; i < d; i++) sum[i] *= scale;
    return out;
  });
  for (const o of stage.outputs) ctx.cols.setInfo(o, { kind: 'vector', size: d });
  return stage;
}
