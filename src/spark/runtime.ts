/** Shared runtime types: row values, column slots with Spark column metadata, compiled stages. */
import { RowError } from './errors.ts';
import type { StageMeta } from './meta.ts';
import type { ModelFiles } from './source.ts';
import { DenseVector, isVector, SparseVector, type Vector } from './vector.ts';

export type Value = null | number | string | boolean | Vector | Value[];

/** What Spark's schema metadata would say about a column (only what evaluation needs). */
export interface ColInfo {
  kind: 'numeric' | 'string' | 'vector' | 'array' | 'unknown';
  /** nominal scalar: number of categories */
  numValues?: number;
  /** labels of a nominal scalar (StringIndexer output, predictions of a label-indexed classifier) */
  labels?: string[];
  /** vector size when known */
  size?: number;
  /** per vector element: number of categories (0 or 1 = numeric/binary) */
  elementValues?: number[];
}

export class Columns {
  private readonly slots = new Map<string, number>();
  private readonly infos = new Map<string, ColInfo>();
  slot(name: string): number {
    let s = this.slots.get(name);
    if (s === undefined) {
      s = this.slots.size;
      this.slots.set(name, s);
    }
    return s;
  }
  get count(): number {
    return this.slots.size;
  }
  info(name: string): ColInfo {
    return this.infos.get(name) ?? { kind: 'unknown' };
  }
  setInfo(name: string, info: ColInfo): void {
    this.infos.set(name, info);
  }
}

export interface PredictorInfo {
  kind: 'classification' | 'regression' | 'clustering';
  predictionCol: string;
  predictionSlot: number;
  /** -1 when the model gives no probabilities */
  probabilitySlot: number;
  labels?: string[];
}

export interface Stage {
  uid: string;
  className: string;
  inputs: string[];
  outputs: string[];
  run(slots: Value[]): void;
  predictor?: PredictorInfo;
  /** IndexToString: maps column inputCol through labels */
  indexToString?: { inputCol: string; labels?: string[] };
}

export interface LoadCtx {
  files: ModelFiles;
  dir: string;
  meta: StageMeta;
  cols: Columns;
  /** rows of <dir>/<sub> parquet files */
  readData(sub?: string): Promise<Array<Record<string, any>>>;
  /** loads a nested saved model (e.g. RFormula's pipelineModel) as flat stages */
  loadNested(subdir: string): Promise<Stage[]>;
}

export type StageLoader = (ctx: LoadCtx) => Promise<Stage | Stage[]>;

// ---- value coercion helpers used by stages ----

export function describe(ctx: { meta: StageMeta }): string {
  return `${ctx.meta.shortName} ${ctx.meta.uid}`;
}

/** A numeric scalar; null stays null. Throws RowError for values that are not numbers. */
export function asNumberOrNull(v: Value, col: string): number | null {
  if (v === null || v === undefined) return null;
  if (typeof v === 'number') return v;
  if (typeof v === 'boolean') return v ? 1 : 0;
  if (typeof v === 'string') {
    const t = v.trim();
    const n = t === '' ? NaN : Number(t);
    if (!Number.isNaN(n) || t === 'NaN') return n;
  }
  throw new RowError(`column "${col}": expected a number, got ${JSON.stringify(v)}`, col);
}

export function asNumber(v: Value, col: string, who: string): number {
  const n = asNumberOrNull(v, col);
  if (n === null) throw new RowError(`null value in column "${col}" (${who})`, col);
  return n;
}

export function asVector(v: Value, col: string, who: string): Vector {
  if (isVector(v)) return v;
  if (v === null || v === undefined) throw new RowError(`null value in column "${col}" (${who})`, col);
  if (Array.isArray(v) && v.every((x) => typeof x === 'number')) return new DenseVector(Float64Array.from(v as number[]));
  if (typeof v === 'number') return new DenseVector(Float64Array.of(v));
  const o = v as unknown as { size?: number; indices?: number[]; values?: number[] };
  if (o && typeof o === 'object' && Array.isArray(o.values)) {
    if (Array.isArray(o.indices)) return new SparseVector(Number(o.size), Int32Array.from(o.indices), Float64Array.from(o.values));
    return new DenseVector(Float64Array.from(o.values));
  }
  throw new RowError(`column "${col}": expected a vector, got ${JSON.stringify(v)}`, col);
}

export function asStringArray(v: Value, col: string, who: string): string[] {
  if (v === null || v === undefined) throw new RowError(`null value in column "${col}" (${who})`, col);
  if (Array.isArray(v)) return v.map((x) => (x === null ? (null as unknown as string) : String(x)));
  throw new RowError(`column "${col}": expected an array of strings, got ${JSON.stringify(v)}`, col);
}

/** Spark's cast of a scalar to string (numbers as Spark would print an integral or double column). */
export function asStringOrNull(v: Value): string | null {
  if (v === null || v === undefined) return null;
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  return String(v);
}
