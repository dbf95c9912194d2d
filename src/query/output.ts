/**
 * One model output, kept in the form it arrived in and converted only when a transport asks:
 * - text from a plain v3 container: JSON when it parses as JSON (checked once, when it arrives),
 *   else a string. `json()` is the text itself, so an answer splices it without re-serialising;
 * - a typed tensor from a container that negotiated the `tensors` RPC extension: its raw
 *   little-endian bytes, which a binary V2 answer writes as they are;
 * - a value (the application's default output, an ensemble's combination).
 * `value` (a JS value) is decoded on demand and never shared between two answers.
 */
import { DATATYPE_INFO, type Datatype } from '../v2/datatypes.ts';
import { nestByShape, plainElements } from '../v2/tensor.ts';

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
}

/** A tensor's elements as a JS value: nested arrays by its shape (a scalar for shape []). */
function tensorValue(t: TensorOutput): unknown {
  // Copied out aligned: the bytes may sit at an offset their typed array cannot start at.
  const Ctor = DATATYPE_INFO[t.datatype].array!;
  const aligned = new Uint8Array(t.data.length);
  aligned.set(t.data);
  const data = new Ctor(aligned.buffer, 0, t.data.length / DATATYPE_INFO[t.datatype].byteSize);
  return nestByShape(plainElements(t.datatype, data as ArrayLike<number | bigint>), t.shape);
}
