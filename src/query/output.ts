/**
 * One model output, kept in the form it arrived in and converted only when a transport asks:
 * - text from a plain v3 container: JSON when it parses as JSON (checked once, when it arrives),
 *   else a string. `json()` is the text itself, so an answer splices it without re-serialising;
 * - a typed tensor from a container that negotiated the `tensors` RPC extension: its raw
 *   little-endian bytes, which a binary V2 answer writes as they are;
 * - a value (the application's default output, an ensemble's combination).
 * `value` (a JS value) is decoded on demand and never shared between two answers.
 */
import { bf16ToNumber, fp16ToNumber, type Datatype } from '../v2/datatypes.ts';

const JSON_START = /^[\s]*[{["\-0-9tfn]/;

/** One input's output as a typed tensor: row-major, little-endian, without the batch dimension. */
export interface TensorOutput {
  datatype: Exclude<Datatype, 'BYTES'>;
  shape: number[];
  data: Buffer;
}

export class ModelOutput {
  private constructor(
    /** Output text as the model returned it (undefined for tensors and values). */
    readonly text: string | undefined,
    /** True when `text` is JSON (false: a plain string). */
    readonly isJson: boolean,
    readonly tensor: TensorOutput | undefined,
    private parsed: { v: unknown } | undefined,
    private jsonText: string | undefined,
  ) {}

  /** Text from a container: parsed once here to learn whether it is JSON. */
  static fromText(text: string): ModelOutput {
    if (JSON_START.test(text)) {
      try {
        return new ModelOutput(text, true, undefined, { v: JSON.parse(text) }, text);
      } catch {
        // not JSON: a string
      }
    }
    return new ModelOutput(text, false, undefined, { v: text }, undefined);
  }

  /** Text whose kind is already known (the prediction cache stores it with its kind). */
  static known(text: string, isJson: boolean): ModelOutput {
    return new ModelOutput(text, isJson, undefined, undefined, isJson ? text : undefined);
  }

  static fromTensor(tensor: TensorOutput): ModelOutput {
    return new ModelOutput(undefined, true, tensor, undefined, undefined);
  }

  /** A JS value (JSON-serialisable). */
  static fromValue(value: unknown): ModelOutput {
    return new ModelOutput(undefined, true, undefined, { v: value }, undefined);
  }

  /**
   * The output as a JS value. The first read of a text output reuses the parse that checked it;
   * later reads decode afresh, so callers may keep and change what they get. (A value output is
   * its one value: it belongs to one answer.)
   */
  get value(): unknown {
    if (this.tensor) return tensorValue(this.tensor);
    if (this.text === undefined) return this.parsed?.v;
    const p = this.parsed;
    if (p) {
      this.parsed = undefined;
      return p.v;
    }
    return this.isJson ? JSON.parse(this.text) : this.text;
  }

  /** The output as JSON text, for an answer: the model's own text when it is JSON. */
  json(): string {
    if (this.jsonText !== undefined) return this.jsonText;
    const s = this.text !== undefined && !this.isJson ? JSON.stringify(this.text) : JSON.stringify(this.value);
    this.jsonText = s;
    return s;
  }

  /** A copy without memoised values: what the cache keeps (its bytes are what it counts). */
  lean(): ModelOutput {
    return this.tensor ? ModelOutput.fromTensor(this.tensor) : this.text !== undefined ? ModelOutput.known(this.text, this.isJson) : ModelOutput.fromValue(this.value);
  }
}

/** A tensor's elements as a JS value: nested arrays by its shape (a scalar for shape []). */
function tensorValue(t: TensorOutput): unknown {
  const flat = tensorElements(t);
  if (t.shape.length === 0) return flat[0];
  if (t.shape.length === 1) return flat;
  const nest = (offset: number, dim: number): unknown[] => {
    const n = t.shape[dim]!;
    if (dim === t.shape.length - 1) return flat.slice(offset, offset + n);
    const stride = t.shape.slice(dim + 1).reduce((a, b) => a * b, 1);
    return Array.from({ length: n }, (_, i) => nest(offset + i * stride, dim + 1));
  };
  return nest(0, 0);
}

function tensorElements(t: TensorOutput): Array<number | boolean> {
  const b = t.data;
  const view = (Ctor: { new(buf: ArrayBuffer, off: number, len: number): ArrayLike<number>; BYTES_PER_ELEMENT: number }) => {
    // The bytes may sit at an offset the typed array cannot start at: copy them out aligned.
    const copy = new Uint8Array(b.length);
    copy.set(b);
    return Array.from(new Ctor(copy.buffer, 0, b.length / Ctor.BYTES_PER_ELEMENT));
  };
  switch (t.datatype) {
    case 'BOOL': return Array.from(b, (x) => x !== 0);
    case 'INT8': return view(Int8Array);
    case 'UINT8': return Array.from(b);
    case 'INT16': return view(Int16Array);
    case 'UINT16': return view(Uint16Array);
    case 'INT32': return view(Int32Array);
    case 'UINT32': return view(Uint32Array);
    case 'INT64': return Array.from(new BigInt64Array(new Uint8Array(b).buffer), Number);
    case 'UINT64': return Array.from(new BigUint64Array(new Uint8Array(b).buffer), Number);
    case 'FP32': return view(Float32Array);
    case 'FP64': return view(Float64Array);
    case 'FP16': case 'BF16': return halfElements(t.datatype, view(Uint16Array));
  }
}

function halfElements(dt: 'FP16' | 'BF16', bits: number[]): number[] {
  return bits.map(dt === 'FP16' ? fp16ToNumber : bf16ToNumber);
}
