/** The five Clipper input types, their RPC codes, aliases and JSON → wire encoding. */
import { ServingError } from '../errors.ts';
import { describeValue } from './validation.ts';

export const INPUT_TYPES = ['bytes', 'ints', 'floats', 'doubles', 'strings'] as const;
export type InputType = (typeof INPUT_TYPES)[number];

/** RPC v3 type codes, in Clipper's order. */
export const INPUT_TYPE_CODE: Record<InputType, number> = { bytes: 0, ints: 1, floats: 2, doubles: 3, strings: 4 };

const ALIASES: Record<string, InputType> = {
  bytes: 'bytes', byte: 'bytes', b: 'bytes',
  ints: 'ints', int: 'ints', integers: 'ints', integer: 'ints', i: 'ints',
  floats: 'floats', float: 'floats', f: 'floats',
  doubles: 'doubles', double: 'doubles', d: 'doubles',
  strings: 'strings', string: 'strings', str: 'strings', strs: 'strings', s: 'strings',
};

export function parseInputType(value: unknown): InputType {
  if (typeof value === 'string') {
    const key = value.trim().toLowerCase();
    const t = Object.hasOwn(ALIASES, key) ? ALIASES[key] : undefined;
    if (t) return t;
  }
  throw new ServingError('INVALID_INPUT', `input_type must be one of ${INPUT_TYPES.join(', ')} (got ${describeValue(value)})`);
}

export function inputTypeFromCode(code: number): InputType | undefined {
  return INPUT_TYPES[code];
}

/**
 * Turns one query input (already JSON-parsed) into the bytes sent to a container.
 * Throws INVALID_INPUT naming what is wrong.
 */
export function encodeInput(type: InputType, value: unknown): Buffer {
  switch (type) {
    case 'strings':
      if (typeof value === 'string') return Buffer.from(value, 'utf8');
      if (value !== null && typeof value === 'object') {
        checkDepth(value, 'input');
        return Buffer.from(JSON.stringify(value), 'utf8');
      }
      throw new ServingError('INVALID_INPUT', `input must be a string (or a JSON object/array) for a strings application, got ${describe(value)}`);
    case 'bytes':
      if (typeof value !== 'string') throw new ServingError('INVALID_INPUT', `input must be a base64 string for a bytes application, got ${describe(value)}`);
      if (!/^[A-Za-z0-9+/_-]*={0,2}$/.test(value)) throw new ServingError('INVALID_INPUT', 'input is not valid base64');
      return Buffer.from(value, 'base64');
    case 'ints':
      return numeric(value, type, Int32Array, (x, i) => {
        if (!Number.isInteger(x) || x < -2147483648 || x > 2147483647) throw new ServingError('INVALID_INPUT', `input[${i}] is not a 32-bit integer: ${x}`);
      });
    case 'floats':
      return numeric(value, type, Float32Array);
    case 'doubles':
      return numeric(value, type, Float64Array);
  }
}

/** How deeply a JSON value may nest where it is converted to text (strings inputs, labels). */
export const MAX_JSON_DEPTH = 100;

/**
 * Throws INVALID_INPUT when `value` nests arrays/objects deeper than MAX_JSON_DEPTH. Iterative:
 * a 100,000-deep value (which JSON.parse accepts) would overflow the stack of any recursive walk,
 * JSON.stringify's included.
 */
export function checkDepth(value: unknown, field: string, limit = MAX_JSON_DEPTH): void {
  const stack: Array<[unknown, number]> = [[value, 0]];
  while (stack.length) {
    const [v, depth] = stack.pop()!;
    if (v === null || typeof v !== 'object') continue;
    if (depth >= limit) {
      throw new ServingError('INVALID_INPUT', `${field} nests arrays or objects more than ${limit} levels deep (the limit)`);
    }
    for (const child of Array.isArray(v) ? v : Object.values(v)) if (child !== null && typeof child === 'object') stack.push([child, depth + 1]);
  }
}

type NumericArray = Int32Array | Float32Array | Float64Array;

/** Checks every element, then copies the array into the typed array the wire wants in one pass. */
function numeric(value: unknown, type: InputType, Ctor: { new (n: number): NumericArray }, check?: (x: number, i: number) => void): Buffer {
  if (!Array.isArray(value)) throw new ServingError('INVALID_INPUT', `input must be an array of numbers for a ${type} application, got ${describe(value)}`);
  const out = new Ctor(value.length);
  for (let i = 0; i < value.length; i++) {
    const x = value[i];
    if (typeof x !== 'number' || !Number.isFinite(x)) throw new ServingError('INVALID_INPUT', `input[${i}] must be a finite number, got ${describe(x)}`);
    check?.(x, i);
    out[i] = x;
  }
  return Buffer.from(out.buffer, out.byteOffset, out.byteLength);
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  return typeof v === 'object' ? 'an object' : `${typeof v} ${JSON.stringify(v)?.slice(0, 40)}`;
}

/** Container side: bytes back into a value the model's predict() receives. */
export function decodeInput(type: InputType, buf: Buffer): unknown {
  switch (type) {
    case 'strings': return buf.toString('utf8');
    case 'bytes': return buf;
    case 'ints': return copyTyped(buf, Int32Array);
    case 'floats': return copyTyped(buf, Float32Array);
    case 'doubles': return copyTyped(buf, Float64Array);
  }
}

type TypedCtor<T> = { new (b: ArrayBuffer, o: number, n: number): T; BYTES_PER_ELEMENT: number };
function copyTyped<T>(buf: Buffer, Ctor: TypedCtor<T>): T {
  // Copy into an aligned buffer: frames from zeromq may start at any offset.
  const ab = new ArrayBuffer(buf.length);
  new Uint8Array(ab).set(buf);
  return new Ctor(ab, 0, buf.length / Ctor.BYTES_PER_ELEMENT);
}
