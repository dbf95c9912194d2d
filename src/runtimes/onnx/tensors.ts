/**
 * Shapes queries into the model's input tensor and turns output tensors back into per-example
 * outputs: JSON values, or typed tensors (which the SDK sends as raw bytes once the frontend
 * accepted the `tensors` RPC extension). A query is ONE example: a flat numeric array holding the
 * model input minus its batch dimension.
 */
import { Tensor, type InferenceSession } from 'onnxruntime-node';
import type { TensorDatatype } from '../../rpc/codec.ts';
import { InputError } from '../sdk.ts';
import { TypedTensor, type TypedArray } from '../typed-tensor.ts';

export const NUMERIC_TYPES = ['float32', 'float64', 'int32', 'int64'] as const;
export type NumericType = (typeof NUMERIC_TYPES)[number];

/**
 * How examples map onto the input tensor:
 * - `dynamic`: first dim is symbolic; a batch of n examples runs as one tensor [n, ...dims].
 * - `single`: first dim is fixed at 1; examples run one at a time as [1, ...dims].
 * - `none`: the input has no batch dim (rank 1, or a fixed first dim > 1); an example is the whole tensor.
 */
export type BatchMode = 'dynamic' | 'single' | 'none';

export interface InputSpec {
  name: string;
  type: NumericType;
  batch: BatchMode;
  /** The example's dims; null for a symbolic dim, whose size is inferred from the query's length. */
  dims: (number | null)[];
  /** Product of the known dims. */
  knownSize: number;
}

export function formatShape(shape: ReadonlyArray<number | string>): string {
  return `[${shape.map((d) => (d === '' ? '?' : String(d))).join(', ')}]`;
}

/** Reads the input's metadata; throws a message saying why the runtime cannot feed it. */
export function describeInput(meta: InferenceSession.ValueMetadata): InputSpec {
  if (!meta.isTensor) throw new Error(`model input ${JSON.stringify(meta.name)} is not a tensor; the onnx runtime feeds numeric tensors`);
  if (!(NUMERIC_TYPES as readonly string[]).includes(meta.type)) {
    throw new Error(`model input ${JSON.stringify(meta.name)} has element type ${meta.type}; the onnx runtime feeds ${NUMERIC_TYPES.join(', ')}`);
  }
  const fixed = (d: number | string): d is number => typeof d === 'number' && d > 0;
  const shape = meta.shape;
  let batch: BatchMode;
  let rest: ReadonlyArray<number | string>;
  if (shape.length === 0) [batch, rest] = ['dynamic', ['']]; // unknown rank: assume [N, length]
  else if (!fixed(shape[0])) [batch, rest] = ['dynamic', shape.slice(1)];
  else if (shape[0] === 1 && shape.length > 1) [batch, rest] = ['single', shape.slice(1)];
  else [batch, rest] = ['none', shape];
  const dims = rest.map((d) => (fixed(d) ? d : null));
  if (dims.filter((d) => d === null).length > 1) {
    throw new Error(`model input ${JSON.stringify(meta.name)} has shape ${formatShape(shape)}: more than one unknown non-batch dimension, so a flat query cannot be shaped to it`);
  }
  const knownSize = dims.reduce<number>((a, d) => a * (d ?? 1), 1);
  return { name: meta.name, type: meta.type as NumericType, batch, dims, knownSize };
}

export function describeExample(spec: InputSpec): string {
  const dims = spec.dims.map((d) => d ?? 'k');
  return dims.length > 1 ? `${spec.knownSize} values shaped [${dims.join(', ')}]` : `${spec.knownSize} values`;
}

/** One query's values and the dims it fills. */
export interface Example {
  values: ArrayLike<number>;
  dims: number[];
}

/** Turns a query into a flat numeric array, or an InputError saying what it is instead. */
function toNumbers(input: unknown): ArrayLike<number> | InputError {
  if (Buffer.isBuffer(input)) return new InputError(`the onnx runtime needs numeric inputs (an ints, floats or doubles application), got ${input.length} raw bytes`);
  if (ArrayBuffer.isView(input) && !(input instanceof DataView) && !(input instanceof BigInt64Array) && !(input instanceof BigUint64Array)) {
    return input as unknown as ArrayLike<number>;
  }
  let value = input;
  if (typeof input === 'string') {
    try {
      value = JSON.parse(input);
    } catch {
      return new InputError('a string input must be a JSON array of numbers');
    }
  }
  if (Array.isArray(value)) {
    const flat: unknown[] = value.flat(Infinity);
    if (flat.every((v): v is number => typeof v === 'number')) return flat;
  }
  return new InputError(`input must be an array of numbers, got ${input === null ? 'null' : Array.isArray(input) ? 'an array with non-numbers' : typeof input}`);
}

export function prepareExample(spec: InputSpec, input: unknown): Example | InputError {
  const values = toNumbers(input);
  if (values instanceof InputError) return values;
  const n = values.length;
  const hasUnknown = spec.dims.includes(null);
  const ok = hasUnknown ? n > 0 && n % spec.knownSize === 0 : n === spec.knownSize;
  if (!ok) {
    const expected = hasUnknown ? `a positive multiple of ${spec.knownSize}` : describeExample(spec);
    return new InputError(`wrong input length: model input ${JSON.stringify(spec.name)} expects ${expected} per example, got ${n}`);
  }
  const dims = spec.dims.map((d) => d ?? n / spec.knownSize);
  if (spec.type === 'int32' || spec.type === 'int64') {
    const [lo, hi] = spec.type === 'int32' ? [-(2 ** 31), 2 ** 31 - 1] : [Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER];
    for (let i = 0; i < n; i++) {
      const v = values[i];
      if (!Number.isInteger(v) || v < lo || v > hi) return new InputError(`model input ${JSON.stringify(spec.name)} is ${spec.type}, but value ${i} is ${v}`);
    }
  }
  return { values, dims };
}

/** Stacks examples (all with the same dims) into one tensor of the model's element type. */
export function stackExamples(spec: InputSpec, examples: Example[], withBatchDim: boolean): Tensor {
  const dims = examples[0].dims;
  const size = examples[0].values.length;
  const total = size * examples.length;
  const shape = withBatchDim ? [examples.length, ...dims] : dims;
  if (spec.type === 'int64') {
    const data = new BigInt64Array(total);
    examples.forEach((ex, e) => {
      for (let i = 0; i < size; i++) data[e * size + i] = BigInt(ex.values[i]);
    });
    return new Tensor('int64', data, shape);
  }
  const Ctor = spec.type === 'float32' ? Float32Array : spec.type === 'float64' ? Float64Array : Int32Array;
  const data = new Ctor(total);
  examples.forEach((ex, e) => data.set(ex.values, e * size));
  return new Tensor(spec.type, data, shape);
}

type Scalar = number | string | boolean;
type Nested = Scalar | Nested[];

function scalarAt(t: Tensor, i: number): Scalar {
  const v = (t.data as ArrayLike<unknown>)[i];
  if (typeof v === 'bigint') return Number(v);
  if (t.type === 'bool') return Boolean(v);
  return v as number | string;
}

function nest(t: Tensor, offset: number, dims: readonly number[]): Nested {
  if (dims.length === 0) return scalarAt(t, offset);
  const [head, ...tail] = dims;
  const stride = tail.reduce((a, b) => a * b, 1);
  const out: Nested[] = new Array(head);
  for (let i = 0; i < head; i++) out[i] = nest(t, offset + i * stride, tail);
  return out;
}

/** Example `index`'s slice along the first dim (a number for a rank-1 tensor, else nested arrays). */
export function sliceOutput(t: Tensor, index: number): Nested {
  const rest = t.dims.slice(1);
  return nest(t, index * rest.reduce((a, b) => a * b, 1), rest);
}

/** The whole tensor as nested arrays (a number for a scalar). */
export function wholeOutput(t: Tensor): Nested {
  return nest(t, 0, t.dims);
}

/** onnxruntime's element types that have a V2 datatype (strings and packed 4-bit types do not). */
const TENSOR_DATATYPES: Partial<Record<Tensor.Type, TensorDatatype>> = {
  float32: 'FP32', float64: 'FP64', float16: 'FP16', int8: 'INT8', uint8: 'UINT8', int16: 'INT16', uint16: 'UINT16',
  int32: 'INT32', uint32: 'UINT32', int64: 'INT64', uint64: 'UINT64', bool: 'BOOL',
};

/** `count` elements from `offset` as a typed tensor of `dims` (a view, no copy), or nested arrays for a type without a datatype. */
function typedPart(t: Tensor, offset: number, dims: readonly number[]): TypedTensor | Nested {
  const datatype = TENSOR_DATATYPES[t.type];
  if (!datatype) return nest(t, offset, dims);
  const count = dims.reduce((a, b) => a * b, 1);
  return new TypedTensor((t.data as TypedArray).subarray(offset, offset + count), dims, datatype);
}

/** Example `index`'s slice along the first dim as a typed tensor (shape [] for a rank-1 tensor). */
export function sliceTensor(t: Tensor, index: number): TypedTensor | Nested {
  const rest = t.dims.slice(1);
  return typedPart(t, index * rest.reduce((a, b) => a * b, 1), rest);
}

/** The whole tensor as a typed tensor. */
export function wholeTensor(t: Tensor): TypedTensor | Nested {
  return typedPart(t, 0, t.dims);
}
