/**
 * Typed outputs of a container's predict: one input's output as a typed array and a shape
 * (without the batch dimension). Once the frontend accepted the RPC extension `tensors`, the SDK
 * sends them as raw little-endian bytes; otherwise (and for `toJSON`) as nested JSON arrays.
 *
 * A predict may return, per input, a `TypedTensor`, or a bare typed array (a tensor of shape
 * [length]). Node's `Buffer` is not a tensor: it keeps its old meaning (its JSON form).
 */
import { endianness } from 'node:os';
import type { TensorDatatype, TensorLayout } from '../rpc/codec.ts';
import { DATATYPE_INFO } from '../v2/datatypes.ts';
import { nestByShape, plainElements } from '../v2/tensor.ts';

export type TypedArray =
  | Int8Array | Uint8Array | Uint8ClampedArray | Int16Array | Uint16Array | Int32Array | Uint32Array
  | BigInt64Array | BigUint64Array | Float32Array | Float64Array;

/** A typed array's own datatype; FP16, BF16 and BOOL are named explicitly (their arrays are Uint16Array / Uint8Array). */
export function datatypeOf(data: TypedArray): TensorDatatype {
  if (data instanceof Float32Array) return 'FP32';
  if (data instanceof Float64Array) return 'FP64';
  if (data instanceof Int32Array) return 'INT32';
  if (data instanceof BigInt64Array) return 'INT64';
  if (data instanceof Int8Array) return 'INT8';
  if (data instanceof Int16Array) return 'INT16';
  if (data instanceof Uint16Array) return 'UINT16';
  if (data instanceof Uint32Array) return 'UINT32';
  if (data instanceof BigUint64Array) return 'UINT64';
  return 'UINT8'; // Uint8Array, Uint8ClampedArray
}

/** The typed arrays (not DataView, not Buffer) a predict may return as a bare tensor. */
export function isTypedArray(v: unknown): v is TypedArray {
  return ArrayBuffer.isView(v) && !(v instanceof DataView) && !Buffer.isBuffer(v);
}

export class TypedTensor {
  readonly datatype: TensorDatatype;
  readonly shape: readonly number[];

  /**
   * `shape` defaults to [data.length]; `datatype` to the array's own (give 'FP16' or 'BF16' for a
   * Uint16Array of raw half-float bits, 'BOOL' for a Uint8Array of 0/1).
   */
  constructor(readonly data: TypedArray, shape?: readonly number[], datatype?: TensorDatatype) {
    this.datatype = datatype ?? datatypeOf(data);
    this.shape = [...(shape ?? [data.length])];
    if (!this.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) throw new Error(`tensor shape must be non-negative integers, got [${this.shape.join(', ')}]`);
    const size = DATATYPE_INFO[this.datatype]?.byteSize;
    if (!size) throw new Error(`${String(datatype)} is not a tensor datatype`);
    const count = this.shape.reduce((a, b) => a * b, 1);
    if (count * size !== data.byteLength) {
      throw new Error(`a ${this.datatype} tensor of shape [${this.shape.join(', ')}] needs ${count * size} bytes, the array holds ${data.byteLength}`);
    }
  }

  layout(): TensorLayout {
    return { datatype: this.datatype, shape: [...this.shape] };
  }

  /** The raw bytes, without copying (typed arrays are little-endian on every host that sends them, see SENDS_TENSORS). */
  bytes(): Buffer {
    return Buffer.from(this.data.buffer, this.data.byteOffset, this.data.byteLength);
  }

  /** Nested arrays by shape (a scalar for shape []); 64-bit integers become numbers, as JSON has no other. */
  toJSON(): unknown {
    return nestByShape(plainElements(this.datatype, this.data as ArrayLike<number | bigint>), this.shape);
  }
}

/** One output as a tensor when it is one (a TypedTensor or a bare typed array), else undefined. */
export function asTensor(value: unknown): TypedTensor | undefined {
  if (value instanceof TypedTensor) return value;
  if (isTypedArray(value)) return new TypedTensor(value);
  return undefined;
}

/** Only a little-endian host can hand its typed arrays' memory to the wire as they are. */
export const SENDS_TENSORS = endianness() === 'LE';
