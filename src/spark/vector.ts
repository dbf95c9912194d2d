/** Minimal ML vectors in Spark's two storage layouts, plus readers for Spark's parquet encodings. */

export class DenseVector {
  constructor(public values: Float64Array) {}
  get size(): number {
    return this.values.length;
  }
}

export class SparseVector {
  constructor(
    public size: number,
    public indices: Int32Array,
    public values: Float64Array,
    public nnz: number = indices.length,
  ) {}
}

export type Vector = DenseVector | SparseVector;

export function isVector(v: unknown): v is Vector {
  return v instanceof DenseVector || v instanceof SparseVector;
}

/** Element i of a vector (binary search for sparse vectors). */
export function vget(v: Vector, i: number): number {
  if (v instanceof DenseVector) return v.values[i];
  let lo = 0;
  let hi = v.nnz - 1;
  const idx = v.indices;
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1;
    const m = idx[mid];
    if (m < i) lo = mid + 1;
    else if (m > i) hi = mid - 1;
    else return v.values[mid];
  }
  return 0;
}

/** Writes the vector densely into out (which must have length >= size). */
export function toDense(v: Vector, out: Float64Array): Float64Array {
  if (v instanceof DenseVector) {
    out.set(v.values);
    return out;
  }
  out.fill(0, 0, v.size);
  for (let k = 0; k < v.nnz; k++) out[v.indices[k]] = v.values[k];
  return out;
}

/** Calls f for every stored entry (all entries of a dense vector). */
export function forEachActive(v: Vector, f: (i: number, x: number) => void): void {
  if (v instanceof DenseVector) {
    const vals = v.values;
    for (let i = 0; i < vals.length; i++) f(i, vals[i]);
  } else {
    for (let k = 0; k < v.nnz; k++) f(v.indices[k], v.values[k]);
  }
}

/** sum_i v[i] * w[off + i], in index order. */
export function dot(v: Vector, w: ArrayLike<number>, off = 0): number {
  let s = 0;
  if (v instanceof DenseVector) {
    const vals = v.values;
    for (let i = 0; i < vals.length; i++) s += vals[i] * w[off + i];
  } else {
    for (let k = 0; k < v.nnz; k++) s += v.values[k] * w[off + v.indices[k]];
  }
  return s;
}

/** A reusable dense output buffer: same object every row unless the size changes. */
export class DenseBuffer {
  private vec = new DenseVector(new Float64Array(0));
  get(size: number): DenseVector {
    if (this.vec.values.length !== size) this.vec = new DenseVector(new Float64Array(size));
    return this.vec;
  }
}

/** Grows as needed; builds a SparseVector view over reused arrays. */
export class SparseBuilder {
  private idx = new Int32Array(16);
  private val = new Float64Array(16);
  private n = 0;
  private readonly view = new SparseVector(0, this.idx, this.val, 0);
  reset(): void {
    this.n = 0;
  }
  push(i: number, x: number): void {
    if (this.n === this.idx.length) {
      const ni = new Int32Array(this.n * 2);
      ni.set(this.idx);
      const nv = new Float64Array(this.n * 2);
      nv.set(this.val);
      this.idx = ni;
      this.val = nv;
    }
    this.idx[this.n] = i;
    this.val[this.n] = x;
    this.n++;
  }
  /** The built vector; valid until the next reset(). Indices must have been pushed in order. */
  build(size: number): SparseVector {
    const v = this.view;
    v.size = size;
    v.indices = this.idx;
    v.values = this.val;
    v.nnz = this.n;
    return v;
  }
}

// ---- Spark's parquet encodings of ml.linalg.Vector / Matrix (VectorUDT / MatrixUDT structs) ----

interface VectorStruct {
  type: number;
  size?: number | null;
  indices?: number[] | null;
  values?: number[] | null;
}

interface MatrixStruct {
  type: number;
  numRows: number;
  numCols: number;
  colPtrs?: number[] | null;
  rowIndices?: number[] | null;
  values?: number[] | null;
  isTransposed: boolean;
}

/** Decodes a VectorUDT struct (type 0 = sparse, 1 = dense) into a dense Float64Array. */
export function decodeVector(raw: unknown): Float64Array {
  if (Array.isArray(raw)) return Float64Array.from(raw as number[]);
  const s = raw as VectorStruct | null;
  if (!s || typeof s !== 'object') throw new Error('expected a Spark vector struct');
  const values = s.values ?? [];
  if (Number(s.type) === 1) return Float64Array.from(values, Number);
  const out = new Float64Array(Number(s.size ?? 0));
  const idx = s.indices ?? [];
  for (let k = 0; k < idx.length; k++) out[Number(idx[k])] = Number(values[k]);
  return out;
}

/** A dense row-major matrix. */
export interface RowMajor {
  rows: number;
  cols: number;
  data: Float64Array; // data[r * cols + c]
}

/** Decodes a MatrixUDT struct (dense/sparse, column-major unless isTransposed) to row-major. */
export function decodeMatrix(raw: unknown): RowMajor {
  const m = raw as MatrixStruct | null;
  if (!m || typeof m !== 'object') throw new Error('expected a Spark matrix struct');
  const rows = Number(m.numRows);
  const cols = Number(m.numCols);
  const data = new Float64Array(rows * cols);
  const values = m.values ?? [];
  if (Number(m.type) === 1) {
    for (let r = 0; r < rows; r++) {
      for (let c = 0; c < cols; c++) {
        data[r * cols + c] = Number(m.isTransposed ? values[r * cols + c] : values[c * rows + r]);
      }
    }
  } else {
    const ptr = m.colPtrs ?? [];
    const ri = m.rowIndices ?? [];
    const outer = m.isTransposed ? rows : cols;
    for (let o = 0; o < outer; o++) {
      for (let k = Number(ptr[o]); k < Number(ptr[o + 1]); k++) {
        const inner = Number(ri[k]);
        const r = m.isTransposed ? o : inner;
        const c = m.isTransposed ? inner : o;
        data[r * cols + c] = Number(values[k]);
      }
    }
  }
  return { rows, cols, data };
}

/** java.util.Arrays.binarySearch(double[], key): index if found, else -(insertion point) - 1. */
export function javaBinarySearch(a: ArrayLike<number>, key: number): number {
  let low = 0;
  let high = a.length - 1;
  while (low <= high) {
    const mid = (low + high) >>> 1;
    const midVal = a[mid];
    if (midVal < key) low = mid + 1;
    else if (midVal > key) high = mid - 1;
    else {
      // Java orders -0.0 before 0.0 and NaN last
      const mb = orderBits(midVal);
      const kb = orderBits(key);
      if (mb === kb) return mid;
      if (mb < kb) low = mid + 1;
      else high = mid - 1;
    }
  }
  return -(low + 1);
}

function orderBits(x: number): number {
  if (Number.isNaN(x)) return 2;
  if (x === 0) return Object.is(x, -0) ? -1 : 0;
  return 1;
}
