/**
 * Typed V2 tensors: building them from JSON (flat or nested `data`) or from raw bytes (the binary
 * extension, gRPC raw contents), writing them back, splitting a batch into rows and joining rows,
 * and turning one-tensor-per-column inputs into records (MLServer's `content_type: "pd"`).
 *
 * Every error is a V2Error with status 400 whose message names the tensor and what is wrong.
 */
import { endianness } from 'node:os';
import { isUtf8 } from 'node:buffer';
import {
  DATATYPE_INFO, DATATYPES, bf16ToNumber, fp16ToNumber, isDatatype, toJsonValue, toStored,
  type Datatype, type ElementValue, type NumericArray,
} from './datatypes.ts';
import { badRequest } from './errors.ts';

if (endianness() !== 'LE') {
  // The V2 binary formats are little-endian; typed arrays use the host's order.
  throw new Error('src/v2 assumes a little-endian host');
}

export type TensorData = NumericArray | Buffer[];

/** Tensor and request parameters: a JSON object (InferParameter values over gRPC). */
export type Parameters = Record<string, unknown>;

export interface Tensor {
  name: string;
  datatype: Datatype;
  /** Row-major dimensions; the element count is their product. */
  shape: number[];
  /** See datatypes.ts for what each datatype stores. Length = product of shape. */
  data: TensorData;
  parameters?: Parameters;
}

/** A tensor as V2 JSON: flat, row-major data. */
export interface JsonTensor {
  name: string;
  datatype: Datatype;
  shape: number[];
  data?: ElementValue[];
  parameters?: Parameters;
}

export function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !Buffer.isBuffer(v);
}

const fmtShape = (shape: readonly number[]): string => `[${shape.join(', ')}]`;

/** Checks a shape: a list of non-negative integers whose product is a safe integer. */
export function checkShape(shape: unknown, tensor: string): number[] {
  if (!Array.isArray(shape)) throw badRequest(`tensor '${tensor}': shape must be a list of non-negative integers, got ${shape === undefined ? 'none' : JSON.stringify(shape)}`);
  let count = 1;
  for (let i = 0; i < shape.length; i++) {
    const d = shape[i];
    const n = typeof d === 'bigint' && d >= 0n && d <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(d) : d;
    if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0) {
      throw badRequest(`tensor '${tensor}': shape must be a list of non-negative integers, but dimension ${i} is ${typeof d === 'string' ? JSON.stringify(d) : String(d)}`);
    }
    count *= n;
    if (!Number.isSafeInteger(count)) throw badRequest(`tensor '${tensor}': shape ${fmtShape(shape as number[])} has too many elements`);
    if (n !== d) shape[i] = n;
  }
  return shape as number[];
}

export function elementCount(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

function checkName(name: unknown, label: string): string {
  if (typeof name !== 'string' || name === '') throw badRequest(`${label}: name must be a non-empty string`);
  return name;
}

function checkDatatype(dt: unknown, tensor: string): Datatype {
  if (!isDatatype(dt)) {
    throw badRequest(`tensor '${tensor}': ${dt === undefined ? 'no datatype' : `unknown datatype ${JSON.stringify(dt)}`}; expected one of ${DATATYPES.join(', ')}`);
  }
  return dt;
}

function checkParameters(p: unknown, tensor: string): Parameters | undefined {
  if (p === undefined) return undefined;
  if (!isPlainObject(p)) throw badRequest(`tensor '${tensor}': parameters must be an object`);
  return p;
}

function allocate(dt: Datatype, count: number): TensorData {
  const A = DATATYPE_INFO[dt].array;
  return A ? new A(count) : new Array<Buffer>(count);
}

/** Stores `v` at flat index `i`, checking it. Typed fast paths for the common float types. */
type Put = (v: unknown, i: number) => void;

function putter(dt: Datatype, out: TensorData, tensor: string): Put {
  switch (dt) {
    case 'FP64': {
      const a = out as Float64Array;
      return (v, i) => { a[i] = typeof v === 'number' ? v : (toStored(dt, v, tensor, i) as number); };
    }
    case 'FP32': {
      const a = out as Float32Array;
      return (v, i) => {
        if (typeof v === 'number' && (v <= 3.4e38 && v >= -3.4e38)) a[i] = v;
        else a[i] = toStored(dt, v, tensor, i) as number;
      };
    }
    default: {
      const a = out as unknown as { [i: number]: unknown };
      return (v, i) => { a[i] = toStored(dt, v, tensor, i); };
    }
  }
}

/**
 * Builds a tensor from JSON values: `data` is flat (length = product of shape) or nested exactly
 * as the shape (row-major). Values are checked against the datatype.
 */
export function tensorFromValues(name: string, datatype: Datatype, shape: number[], data: unknown, parameters?: Parameters): Tensor {
  if (!Array.isArray(data)) throw badRequest(`tensor '${name}': data must be a list, got ${data === undefined ? 'none' : typeof data}`);
  const count = elementCount(shape);
  const out = allocate(datatype, count);
  const put = putter(datatype, out, name);
  if (data.length > 0 && Array.isArray(data[0]) && shape.length > 1) {
    fillNested(data, shape, name, put);
  } else {
    if (data.length !== count) {
      throw badRequest(`tensor '${name}': data has ${data.length} elements but shape ${fmtShape(shape)} needs ${count}`);
    }
    for (let i = 0; i < count; i++) {
      const v = data[i];
      if (Array.isArray(v)) throw badRequest(`tensor '${name}': data mixes lists and values (element ${i} is a list in flat data)`);
      put(v, i);
    }
  }
  const t: Tensor = { name, datatype, shape, data: out };
  if (parameters !== undefined) t.parameters = parameters;
  return t;
}

function fillNested(data: unknown[], shape: readonly number[], name: string, put: Put): void {
  let cursor = 0;
  const visit = (arr: unknown[], depth: number, path: string): void => {
    if (arr.length !== shape[depth]) {
      throw badRequest(`tensor '${name}': nested data does not match shape ${fmtShape(shape)}: data${path} has ${arr.length} entries, dimension ${depth} is ${shape[depth]}`);
    }
    const leaf = depth === shape.length - 1;
    for (let i = 0; i < arr.length; i++) {
      const v = arr[i];
      if (leaf) {
        if (Array.isArray(v)) throw badRequest(`tensor '${name}': nested data does not match shape ${fmtShape(shape)}: data${path}[${i}] is a list, deeper than the shape`);
        put(v, cursor++);
      } else {
        if (!Array.isArray(v)) throw badRequest(`tensor '${name}': nested data does not match shape ${fmtShape(shape)}: data${path}[${i}] is not a list`);
        visit(v, depth + 1, `${path}[${i}]`);
      }
    }
  };
  visit(data, 0, '');
}

/**
 * A tensor from its V2 JSON object ({name, datatype, shape, data, parameters}). `label` names the
 * tensor in errors when it has no usable name (e.g. "inputs[2]").
 */
export function tensorFromJson(obj: unknown, label = 'tensor'): Tensor {
  if (!isPlainObject(obj)) throw badRequest(`${label} must be an object`);
  const name = checkName(obj.name, label);
  const datatype = checkDatatype(obj.datatype, name);
  const shape = checkShape(obj.shape, name);
  const parameters = checkParameters(obj.parameters, name);
  if (obj.data === undefined) throw badRequest(`tensor '${name}': no data`);
  return tensorFromValues(name, datatype, shape, obj.data, parameters);
}

/** Builds a tensor around existing storage, checking that it fits the datatype and shape. */
export function createTensor(name: string, datatype: Datatype, shape: number[], data: TensorData, parameters?: Parameters): Tensor {
  checkName(name, 'tensor');
  checkDatatype(datatype, name);
  checkShape(shape, name);
  const A = DATATYPE_INFO[datatype].array;
  if (A ? !(data instanceof A) : !Array.isArray(data)) {
    throw badRequest(`tensor '${name}': ${datatype} data must be ${A ? A.name : 'a list of Buffers'}`);
  }
  const count = elementCount(shape);
  if (data.length !== count) throw badRequest(`tensor '${name}': data has ${data.length} elements but shape ${fmtShape(shape)} needs ${count}`);
  if (!A) {
    for (let i = 0; i < count; i++) {
      if (!Buffer.isBuffer((data as Buffer[])[i])) throw badRequest(`tensor '${name}': BYTES element ${i} is not a Buffer`);
    }
  }
  const t: Tensor = { name, datatype, shape, data };
  if (parameters !== undefined) t.parameters = parameters;
  return t;
}

/** The tensor's elements as flat JSON values (BYTES as UTF-8 text; non-UTF-8 bytes are an error). */
export function tensorValues(t: Tensor): ElementValue[] {
  const n = t.data.length;
  const out = new Array<ElementValue>(n);
  const dt = t.datatype;
  if (dt === 'INT8' || dt === 'INT16' || dt === 'INT32' || dt === 'UINT8' || dt === 'UINT16' || dt === 'UINT32') {
    const a = t.data as ArrayLike<number>;
    for (let i = 0; i < n; i++) out[i] = a[i]!;
    return out;
  }
  if (dt === 'BYTES') {
    const a = t.data as Buffer[];
    for (let i = 0; i < n; i++) {
      if (!isUtf8(a[i]!)) throw badRequest(`tensor '${t.name}': BYTES element ${i} is not UTF-8 text and cannot be written as JSON; ask for it as binary data`);
      out[i] = a[i]!.toString('utf8');
    }
    return out;
  }
  const a = t.data as ArrayLike<number | bigint>;
  for (let i = 0; i < n; i++) out[i] = toJsonValue(dt, a[i]!);
  return out;
}

/**
 * The elements of a fixed-size tensor as plain JS values: booleans for BOOL, numbers otherwise
 * (FP16/BF16 decoded, 64-bit integers rounded to the nearest number) — what a model's typed
 * output means to a JS caller (unlike tensorValues, which keeps V2 JSON's exact forms).
 */
export function plainElements(datatype: Datatype, data: ArrayLike<number | bigint>): Array<number | boolean> {
  switch (datatype) {
    case 'BOOL': return Array.from(data, (x) => Number(x) !== 0);
    case 'FP16': return Array.from(data as ArrayLike<number>, fp16ToNumber);
    case 'BF16': return Array.from(data as ArrayLike<number>, bf16ToNumber);
    default: return Array.from(data, Number);
  }
}

/** Flat row-major elements as nested arrays by `shape` (the one element for shape []). */
export function nestByShape<T>(flat: readonly T[], shape: readonly number[]): unknown {
  if (shape.length === 0) return flat[0];
  const nest = (offset: number, dim: number): unknown[] => {
    const n = shape[dim]!;
    if (dim === shape.length - 1) return flat.slice(offset, offset + n);
    const stride = shape.slice(dim + 1).reduce((a, b) => a * b, 1);
    return Array.from({ length: n }, (_, i) => nest(offset + i * stride, dim + 1));
  };
  return nest(0, 0);
}

/** The tensor as V2 JSON, with flat data, as Triton and KServe answer. */
export function tensorToJson(t: Tensor): JsonTensor {
  const j: JsonTensor = { name: t.name, datatype: t.datatype, shape: [...t.shape], data: tensorValues(t) };
  if (t.parameters !== undefined) j.parameters = t.parameters;
  return j;
}

// ---------------------------------------------------------------------------------------------
// Raw bytes: the binary extension's tensor data, gRPC raw_input_contents / raw_output_contents.
// Fixed-size types are little-endian elements back to back; BYTES elements are each a 4-byte
// little-endian length followed by that many bytes; BOOL is one byte per element, 0 or 1.

/** BYTES elements in their serialized form. */
export function encodeBytesElements(elements: readonly Buffer[]): Buffer {
  let total = 0;
  for (const e of elements) total += 4 + e.length;
  const out = Buffer.allocUnsafe(total);
  let off = 0;
  for (const e of elements) {
    out.writeUInt32LE(e.length, off);
    e.copy(out, off + 4);
    off += 4 + e.length;
  }
  return out;
}

/** Reads serialized BYTES elements; they must fill `bytes` exactly. Elements are views of `bytes`. */
export function decodeBytesElements(bytes: Uint8Array, tensor: string): Buffer[] {
  const buf = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out: Buffer[] = [];
  let off = 0;
  while (off < buf.length) {
    if (off + 4 > buf.length) throw badRequest(`tensor '${tensor}': BYTES data ends inside the length of element ${out.length} (${buf.length - off} of 4 bytes)`);
    const len = buf.readUInt32LE(off);
    if (off + 4 + len > buf.length) throw badRequest(`tensor '${tensor}': BYTES element ${out.length} claims ${len} bytes but only ${buf.length - off - 4} remain`);
    out.push(buf.subarray(off + 4, off + 4 + len));
    off += 4 + len;
  }
  return out;
}

/** Bytes of the tensor's raw form. */
export function tensorByteLength(t: Tensor): number {
  if (t.datatype === 'BYTES') {
    let n = 0;
    for (const e of t.data as Buffer[]) n += 4 + e.length;
    return n;
  }
  return (t.data as NumericArray).byteLength;
}

/**
 * A tensor from raw bytes. The size must be exactly element count × element size (BYTES: the
 * serialized elements must number exactly the element count). Aligned input is viewed, not copied.
 */
export function tensorFromBytes(name: string, datatype: Datatype, shape: number[], bytes: Uint8Array, parameters?: Parameters): Tensor {
  const count = elementCount(shape);
  const di = DATATYPE_INFO[datatype];
  let data: TensorData;
  if (datatype === 'BYTES') {
    data = decodeBytesElements(bytes, name);
    if (data.length !== count) throw badRequest(`tensor '${name}': binary data holds ${data.length} BYTES elements but shape ${fmtShape(shape)} needs ${count}`);
  } else {
    const want = count * di.byteSize;
    if (bytes.byteLength !== want) {
      throw badRequest(`tensor '${name}': binary data is ${bytes.byteLength} bytes but ${datatype} ${fmtShape(shape)} needs ${want} (${count} × ${di.byteSize})`);
    }
    const A = di.array!;
    if (bytes.byteOffset % di.byteSize === 0) {
      data = new A(bytes.buffer as ArrayBuffer, bytes.byteOffset, count);
    } else {
      data = new A(count);
      new Uint8Array(data.buffer).set(bytes);
    }
    if (datatype === 'BOOL') {
      const b = data as Uint8Array;
      for (let i = 0; i < count; i++) {
        if (b[i]! > 1) throw badRequest(`tensor '${name}': BOOL element ${i} is byte ${b[i]}; booleans are 0 or 1`);
      }
    }
  }
  const t: Tensor = { name, datatype, shape, data };
  if (parameters !== undefined) t.parameters = parameters;
  return t;
}

/** The tensor's raw bytes (a view of typed storage, no copy; BYTES serialized). */
export function tensorToBytes(t: Tensor): Buffer {
  if (t.datatype === 'BYTES') return encodeBytesElements(t.data as Buffer[]);
  const a = t.data as NumericArray;
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength);
}

// ---------------------------------------------------------------------------------------------
// Batches and rows.

function withoutSizes(p: Parameters | undefined): Parameters | undefined {
  if (p === undefined) return undefined;
  if (!('binary_data_size' in p)) return p;
  const { binary_data_size: _drop, ...rest } = p;
  return Object.keys(rest).length ? rest : undefined;
}

function sliceData(data: TensorData, start: number, end: number): TensorData {
  return Array.isArray(data) ? data.slice(start, end) : data.subarray(start, end);
}

/**
 * Splits a tensor along its leading (batch) dimension: shape [n, ...rest] gives n tensors of shape
 * rest, same name and datatype. Typed rows are views of the batch's storage (no copy).
 */
export function splitBatch(t: Tensor): Tensor[] {
  if (t.shape.length === 0) throw badRequest(`tensor '${t.name}': a scalar (shape []) has no batch dimension to split`);
  const n = t.shape[0]!;
  const rowShape = t.shape.slice(1);
  const per = elementCount(rowShape);
  const parameters = withoutSizes(t.parameters);
  const rows: Tensor[] = [];
  for (let i = 0; i < n; i++) {
    const row: Tensor = { name: t.name, datatype: t.datatype, shape: [...rowShape], data: sliceData(t.data, i * per, (i + 1) * per) };
    if (parameters !== undefined) row.parameters = parameters;
    rows.push(row);
  }
  return rows;
}

function concatData(datatype: Datatype, parts: readonly TensorData[]): TensorData {
  if (datatype === 'BYTES') return (parts as Buffer[][]).flat();
  let total = 0;
  for (const p of parts) total += p.length;
  const out = allocate(datatype, total) as NumericArray;
  let off = 0;
  for (const p of parts) {
    (out as Uint8Array).set(p as Uint8Array, off);
    off += p.length;
  }
  return out;
}

export function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/** Joins rows of equal datatype and shape into one tensor of shape [rows.length, ...rowShape]. */
export function stackRows(rows: readonly Tensor[], name = rows[0]?.name): Tensor {
  if (rows.length === 0 || name === undefined) throw badRequest('cannot stack zero rows');
  const { datatype, shape } = rows[0]!;
  rows.forEach((r, i) => {
    if (r.datatype !== datatype) throw badRequest(`tensor '${name}': row ${i} is ${r.datatype}, row 0 is ${datatype}`);
    if (!sameShape(r.shape, shape)) throw badRequest(`tensor '${name}': row ${i} has shape ${fmtShape(r.shape)}, row 0 has ${fmtShape(shape)}`);
  });
  return { name, datatype, shape: [rows.length, ...shape], data: concatData(datatype, rows.map((r) => r.data)) };
}

/** Concatenates batches along the leading dimension: [n1, ...rest] + [n2, ...rest] → [n1+n2, ...rest]. */
export function concatBatch(parts: readonly Tensor[], name = parts[0]?.name): Tensor {
  if (parts.length === 0 || name === undefined) throw badRequest('cannot concatenate zero tensors');
  const first = parts[0]!;
  if (first.shape.length === 0) throw badRequest(`tensor '${name}': a scalar has no batch dimension`);
  const rest = first.shape.slice(1);
  let n = 0;
  parts.forEach((p, i) => {
    if (p.datatype !== first.datatype) throw badRequest(`tensor '${name}': part ${i} is ${p.datatype}, part 0 is ${first.datatype}`);
    if (p.shape.length === 0 || !sameShape(p.shape.slice(1), rest)) {
      throw badRequest(`tensor '${name}': part ${i} has shape ${fmtShape(p.shape)}, which does not continue [n, ${rest.join(', ')}]`);
    }
    n += p.shape[0]!;
  });
  return { name, datatype: first.datatype, shape: [n, ...rest], data: concatData(first.datatype, parts.map((p) => p.data)) };
}

// ---------------------------------------------------------------------------------------------
// Columns and records (MLServer's content_type "pd": one tensor per column).

/** A record's value: JSON scalars, bigint for 64-bit integers beyond 2^53, Buffer for non-UTF-8 BYTES. */
export type RecordValue = ElementValue | Buffer;

function columnLength(t: Tensor): number {
  if (t.shape.length === 1) return t.shape[0]!;
  if (t.shape.length === 2 && t.shape[1] === 1) return t.shape[0]!;
  throw badRequest(`tensor '${t.name}': a column must have shape [n] or [n, 1], got ${fmtShape(t.shape)}`);
}

/**
 * Named column tensors (each shape [n] or [n, 1], all the same n) → n records {column: value},
 * keys in tensor order. BYTES become strings (a Buffer when not UTF-8).
 */
export function tensorsToRecords(columns: readonly Tensor[]): Record<string, RecordValue>[] {
  if (columns.length === 0) return [];
  const n = columnLength(columns[0]!);
  const seen = new Set<string>();
  for (const c of columns) {
    if (seen.has(c.name)) throw badRequest(`tensor '${c.name}': two columns have this name`);
    seen.add(c.name);
    const m = columnLength(c);
    if (m !== n) throw badRequest(`tensor '${c.name}': column has ${m} rows but '${columns[0]!.name}' has ${n}`);
  }
  const records: Record<string, RecordValue>[] = [];
  for (let i = 0; i < n; i++) {
    const r: Record<string, RecordValue> = {};
    for (const c of columns) {
      const v = (c.data as ArrayLike<number | bigint | Buffer>)[i]!;
      r[c.name] = c.datatype === 'BYTES' && !isUtf8(v as Buffer) ? (v as Buffer) : toJsonValue(c.datatype, v);
    }
    records.push(r);
  }
  return records;
}

/** Records → one tensor of shape [n] per column, with the given datatypes, values checked. */
export function recordsToTensors(records: readonly Record<string, unknown>[], columns: readonly { name: string; datatype: Datatype }[]): Tensor[] {
  return columns.map(({ name, datatype }) => {
    const values = records.map((r, i) => {
      if (!(name in r)) throw badRequest(`tensor '${name}': record ${i} has no '${name}'`);
      return r[name];
    });
    return tensorFromValues(name, datatype, [records.length], values);
  });
}
