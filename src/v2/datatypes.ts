/**
 * The tensor datatypes of the V2 / Open Inference Protocol: element sizes, storage arrays, range
 * checks and the conversions between stored elements and JSON values.
 *
 * Storage (what `Tensor.data` holds, see tensor.ts):
 * - BOOL: Uint8Array of 0/1 (one byte per element, as on the wire).
 * - INT8..INT32, UINT8..UINT32, FP32, FP64: the matching typed array.
 * - INT64 / UINT64: BigInt64Array / BigUint64Array, so every 64-bit value is exact in memory and on
 *   the binary wire. JSON numbers are exact only up to 2^53, and JSON.parse has already rounded
 *   anything larger before we see it, so a JSON number outside ±(2^53−1) is refused; a bigint value
 *   (from a caller or a big-int aware parser) is accepted over the full 64-bit range. On the way
 *   out, values within 2^53 become numbers and larger ones stay bigints, which `stringifyV2`
 *   (json.ts) writes as exact integer literals.
 * - FP16 / BF16: Uint16Array of the raw 16-bit patterns (what the binary wire and ONNX carry);
 *   `fp16ToNumber` / `numberToFp16` and the BF16 pair convert, rounding to nearest, ties to even.
 * - BYTES: an array of Buffers, one per element; JSON strings are their UTF-8 encoding.
 *
 * JSON cannot write NaN or ±Infinity: floating-point elements accept and produce the strings
 * "NaN", "Infinity" and "-Infinity" for them. A finite value too large for the datatype
 * (FP16 beyond 65504, FP32 beyond 3.4e38 once rounded) is an error, not an infinity.
 */
import { badRequest } from './errors.ts';

export const DATATYPES = [
  'BOOL', 'INT8', 'INT16', 'INT32', 'INT64', 'UINT8', 'UINT16', 'UINT32', 'UINT64',
  'FP16', 'FP32', 'FP64', 'BF16', 'BYTES',
] as const;

export type Datatype = (typeof DATATYPES)[number];

export type DatatypeKind = 'bool' | 'int' | 'bigint' | 'float' | 'half' | 'bytes';

export type TypedArrayConstructor =
  | Uint8ArrayConstructor | Int8ArrayConstructor | Int16ArrayConstructor | Int32ArrayConstructor
  | BigInt64ArrayConstructor | Uint16ArrayConstructor | Uint32ArrayConstructor | BigUint64ArrayConstructor
  | Float32ArrayConstructor | Float64ArrayConstructor;

export type NumericArray =
  | Uint8Array | Int8Array | Int16Array | Int32Array | BigInt64Array | Uint16Array | Uint32Array
  | BigUint64Array | Float32Array | Float64Array;

export interface DatatypeInfo {
  readonly name: Datatype;
  /** Bytes per element on the binary wire; 0 for BYTES (variable: 4-byte length + bytes each). */
  readonly byteSize: number;
  /** The storage array, or null for BYTES. */
  readonly array: TypedArrayConstructor | null;
  readonly kind: DatatypeKind;
  /** Inclusive range for integer types. */
  readonly min?: number | bigint;
  readonly max?: number | bigint;
}

const info = (name: Datatype, byteSize: number, array: TypedArrayConstructor | null, kind: DatatypeKind,
  min?: number | bigint, max?: number | bigint): DatatypeInfo => ({ name, byteSize, array, kind, min, max });

export const DATATYPE_INFO: Readonly<Record<Datatype, DatatypeInfo>> = {
  BOOL: info('BOOL', 1, Uint8Array, 'bool'),
  INT8: info('INT8', 1, Int8Array, 'int', -128, 127),
  INT16: info('INT16', 2, Int16Array, 'int', -32768, 32767),
  INT32: info('INT32', 4, Int32Array, 'int', -2147483648, 2147483647),
  INT64: info('INT64', 8, BigInt64Array, 'bigint', -(2n ** 63n), 2n ** 63n - 1n),
  UINT8: info('UINT8', 1, Uint8Array, 'int', 0, 255),
  UINT16: info('UINT16', 2, Uint16Array, 'int', 0, 65535),
  UINT32: info('UINT32', 4, Uint32Array, 'int', 0, 4294967295),
  UINT64: info('UINT64', 8, BigUint64Array, 'bigint', 0n, 2n ** 64n - 1n),
  FP16: info('FP16', 2, Uint16Array, 'half'),
  FP32: info('FP32', 4, Float32Array, 'float'),
  FP64: info('FP64', 8, Float64Array, 'float'),
  BF16: info('BF16', 2, Uint16Array, 'half'),
  BYTES: info('BYTES', 0, null, 'bytes'),
};

const DATATYPE_SET: ReadonlySet<string> = new Set(DATATYPES);

export function isDatatype(s: unknown): s is Datatype {
  return typeof s === 'string' && DATATYPE_SET.has(s);
}

/** Bytes per element (0 for BYTES, whose elements vary). */
export function byteSize(dt: Datatype): number {
  return DATATYPE_INFO[dt].byteSize;
}

// ---------------------------------------------------------------------------------------------
// Small floats: IEEE binary16 (FP16: 5 exponent bits, 10 mantissa) and bfloat16 (BF16: 8, 7).

/** Round half to even. `x` is non-negative. */
function roundHalfEven(x: number): number {
  const f = Math.floor(x);
  const d = x - f;
  if (d > 0.5) return f + 1;
  if (d < 0.5) return f;
  return f % 2 === 0 ? f : f + 1;
}

/** The bit pattern of `v` in a float with `E` exponent and `M` mantissa bits (sign bit on top). */
function encodeSmallFloat(v: number, E: number, M: number): number {
  const bias = (1 << (E - 1)) - 1;
  const inf = ((1 << E) - 1) << M;
  if (Number.isNaN(v)) return inf | (1 << (M - 1));
  const sign = v < 0 || Object.is(v, -0) ? 1 << (E + M) : 0;
  const a = Math.abs(v);
  if (a === Infinity) return sign | inf;
  if (a === 0) return sign;
  const minNormalExp = 1 - bias;
  if (a < 2 ** minNormalExp) {
    // Subnormal: a count of the smallest step, 2^(minNormalExp − M). Rounding up to 2^M lands
    // exactly on the smallest normal's pattern.
    return sign | roundHalfEven(a * 2 ** (M - minNormalExp));
  }
  let e = Math.floor(Math.log2(a));
  if (2 ** e > a) e -= 1;
  else if (2 ** (e + 1) <= a) e += 1;
  if (e > bias) return sign | inf;
  // a / 2^e is exact and in [1, 2); the subtraction and the scaling are exact too.
  const m = roundHalfEven((a / 2 ** e - 1) * 2 ** M);
  const bits = ((e + bias) << M) + m; // a mantissa that rounded up to 2^M carries into the exponent
  return sign | (bits >= inf ? inf : bits);
}

function decodeSmallFloat(bits: number, E: number, M: number): number {
  const bias = (1 << (E - 1)) - 1;
  const expMax = (1 << E) - 1;
  const s = bits & (1 << (E + M)) ? -1 : 1;
  const e = (bits >> M) & expMax;
  const m = bits & ((1 << M) - 1);
  if (e === 0) return s * m * 2 ** (1 - bias - M);
  if (e === expMax) return m ? NaN : s * Infinity;
  return s * (1 + m / 2 ** M) * 2 ** (e - bias);
}

/** IEEE half-precision bits → number. */
export const fp16ToNumber = (bits: number): number => decodeSmallFloat(bits & 0xffff, 5, 10);
/** number → IEEE half-precision bits (round to nearest, ties to even; overflow → ±Infinity). */
export const numberToFp16 = (v: number): number => encodeSmallFloat(v, 5, 10);
/** bfloat16 bits → number. */
export const bf16ToNumber = (bits: number): number => decodeSmallFloat(bits & 0xffff, 8, 7);
/** number → bfloat16 bits (round to nearest, ties to even from the full double; overflow → ±Infinity). */
export const numberToBf16 = (v: number): number => encodeSmallFloat(v, 8, 7);

export const FP16_MAX = 65504;

// ---------------------------------------------------------------------------------------------
// Elements: JSON value → stored element, stored element → JSON value.

/** A JSON scalar of a tensor, or a bigint for 64-bit integers beyond 2^53. */
export type ElementValue = boolean | number | bigint | string;

const SPECIAL_FLOATS: Readonly<Record<string, number>> = { NaN: NaN, Infinity: Infinity, '-Infinity': -Infinity };

function describe(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v);
  if (typeof v === 'bigint') return `${v}n`;
  if (Array.isArray(v)) return 'an array';
  if (v === null) return 'null';
  if (typeof v === 'object') return 'an object';
  return String(v);
}

function elementError(tensor: string, index: number, v: unknown, problem: string): never {
  throw badRequest(`tensor '${tensor}': element ${index} (${describe(v)}) ${problem}`);
}

/**
 * Checks one JSON element of `dt` and returns what is stored (a number, bigint or Buffer).
 * Errors name the tensor and the flat (row-major) index of the element.
 */
export function toStored(dt: Datatype, v: unknown, tensor: string, index: number): number | bigint | Buffer {
  const di = DATATYPE_INFO[dt];
  switch (di.kind) {
    case 'float': {
      let x: number;
      if (typeof v === 'number') x = v;
      else if (typeof v === 'string' && v in SPECIAL_FLOATS) return SPECIAL_FLOATS[v]!;
      else return elementError(tensor, index, v, `is not a number, as ${dt} requires`);
      if (dt === 'FP32' && Number.isFinite(x) && !Number.isFinite(Math.fround(x))) {
        return elementError(tensor, index, v, 'is out of range for FP32');
      }
      return x;
    }
    case 'half': {
      let x: number;
      if (typeof v === 'number') x = v;
      else if (typeof v === 'string' && v in SPECIAL_FLOATS) x = SPECIAL_FLOATS[v]!;
      else return elementError(tensor, index, v, `is not a number, as ${dt} requires`);
      const bits = dt === 'FP16' ? numberToFp16(x) : numberToBf16(x);
      if (Number.isFinite(x) && (bits & 0x7fff) === (dt === 'FP16' ? 0x7c00 : 0x7f80)) {
        return elementError(tensor, index, v, `is out of range for ${dt}`);
      }
      return bits;
    }
    case 'int': {
      if (typeof v === 'bigint') {
        if (v < BigInt(di.min as number) || v > BigInt(di.max as number)) {
          return elementError(tensor, index, v, `is out of range for ${dt} [${di.min}, ${di.max}]`);
        }
        return Number(v);
      }
      if (typeof v !== 'number' || !Number.isInteger(v)) {
        return elementError(tensor, index, v, `is not an integer, as ${dt} requires`);
      }
      if (v < (di.min as number) || v > (di.max as number)) {
        return elementError(tensor, index, v, `is out of range for ${dt} [${di.min}, ${di.max}]`);
      }
      return v;
    }
    case 'bigint': {
      let b: bigint;
      if (typeof v === 'bigint') b = v;
      else if (typeof v === 'number' && Number.isInteger(v)) {
        if (!Number.isSafeInteger(v)) {
          return elementError(tensor, index, v, `is beyond 2^53, where a JSON number is no longer exact; send ${dt} values that large as binary data`);
        }
        b = BigInt(v);
      } else return elementError(tensor, index, v, `is not an integer, as ${dt} requires`);
      if (b < (di.min as bigint) || b > (di.max as bigint)) {
        return elementError(tensor, index, v, `is out of range for ${dt} [${di.min}, ${di.max}]`);
      }
      return b;
    }
    case 'bool':
      if (typeof v !== 'boolean') return elementError(tensor, index, v, 'is not a boolean, as BOOL requires');
      return v ? 1 : 0;
    case 'bytes':
      if (typeof v === 'string') return Buffer.from(v, 'utf8');
      if (Buffer.isBuffer(v)) return v;
      if (v instanceof Uint8Array) return Buffer.from(v.buffer, v.byteOffset, v.byteLength);
      return elementError(tensor, index, v, 'is not a string, as BYTES requires');
  }
}

/** Shortest decimal (as a number) that stores to the same element, so 6.8f prints as 6.8. */
function shortest(x: number, same: (candidate: number) => boolean, maxDigits: number): number {
  for (let p = 1; p < maxDigits; p++) {
    const c = Number(x.toPrecision(p));
    if (same(c)) return c;
  }
  return x;
}

function floatJson(x: number): number | string {
  if (Number.isFinite(x)) return x;
  return Number.isNaN(x) ? 'NaN' : x > 0 ? 'Infinity' : '-Infinity';
}

/**
 * A stored element as its JSON value. FP32/FP16/BF16 give the shortest decimal that converts back
 * to the same element; 64-bit integers beyond 2^53 stay bigint (see `stringifyV2`); BYTES give the
 * UTF-8 text (the caller checks validity, see tensor.ts).
 */
export function toJsonValue(dt: Datatype, stored: number | bigint | Buffer): ElementValue {
  switch (dt) {
    case 'BOOL':
      return stored !== 0;
    case 'INT64': case 'UINT64': {
      const b = stored as bigint;
      return b >= -(2n ** 53n) + 1n && b <= 2n ** 53n - 1n ? Number(b) : b;
    }
    case 'FP32': {
      const x = stored as number;
      if (!Number.isFinite(x)) return floatJson(x);
      if (x === 0) return x;
      return shortest(x, (c) => Math.fround(c) === x, 9);
    }
    case 'FP64':
      return floatJson(stored as number);
    case 'FP16': case 'BF16': {
      const bits = stored as number;
      const x = dt === 'FP16' ? fp16ToNumber(bits) : bf16ToNumber(bits);
      if (!Number.isFinite(x)) return floatJson(x);
      const enc = dt === 'FP16' ? numberToFp16 : numberToBf16;
      return shortest(x, (c) => enc(c) === bits, 9);
    }
    case 'BYTES':
      return (stored as Buffer).toString('utf8');
    default:
      return stored as number;
  }
}
