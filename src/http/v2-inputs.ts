/**
 * V2 tensors ↔ an application's Clipper inputs and outputs (docs/v2-protocol.md, "REST routes").
 *
 * In: the application's input type decides.
 * - One numeric tensor (doubles, floats, ints apps): shape [n, ...] is n inputs, each row
 *   flattened; shape [k] (1-D) is ONE input of k values; a scalar is one input of one value.
 * - One BYTES tensor (strings, bytes apps): shape [n] or [n, 1] is n inputs, one per element; a
 *   scalar is one input. Strings get the element's UTF-8 text, bytes apps its raw bytes.
 * - Several tensors, or `parameters.content_type: "pd"` on the request (MLServer's columns):
 *   strings apps only; each tensor is a column of shape [n] or [n, 1] and row i becomes the
 *   record {column: value}, sent as its JSON text.
 * - A single numeric tensor sent to a strings app: each row becomes its JSON array text.
 *
 * Out: one tensor. Numbers (or numeric arrays all of one length) → FP64 [n] (or [n, k]);
 * otherwise BYTES [n], each output's text (JSON text when it is not a string).
 */
import { isUtf8 } from 'node:buffer';
import { checkDepth, type InputType } from '../registry/input-types.ts';
import { badRequest } from '../v2/errors.ts';
import type { Datatype } from '../v2/datatypes.ts';
import type { ModelOutput } from '../query/output.ts';
import { createTensor, sameShape, splitBatch, stackRows, tensorFromBytes, tensorsToRecords, tensorValues, type Tensor } from '../v2/tensor.ts';

const FLOAT_TYPES: ReadonlySet<Datatype> = new Set(['FP16', 'BF16', 'FP32', 'FP64']);
const INT_TYPES: ReadonlySet<Datatype> = new Set(['INT8', 'INT16', 'INT32', 'INT64', 'UINT8', 'UINT16', 'UINT32', 'UINT64']);

/** The datatypes a tensor for an application of this input type may have. */
export function acceptedDatatypes(type: InputType): Datatype[] {
  switch (type) {
    case 'doubles': case 'floats': return [...FLOAT_TYPES, ...INT_TYPES];
    case 'ints': return [...INT_TYPES];
    case 'bytes': return ['BYTES'];
    case 'strings': return ['BYTES', ...FLOAT_TYPES, ...INT_TYPES, 'BOOL'];
  }
}

/** The V2 datatype and shape an application's input is described with in its metadata. */
export function inputMetadata(type: InputType): { name: string; datatype: Datatype; shape: number[] } {
  switch (type) {
    case 'doubles': return { name: 'input', datatype: 'FP64', shape: [-1, -1] };
    case 'floats': return { name: 'input', datatype: 'FP32', shape: [-1, -1] };
    case 'ints': return { name: 'input', datatype: 'INT32', shape: [-1, -1] };
    case 'bytes': case 'strings': return { name: 'input', datatype: 'BYTES', shape: [-1] };
  }
}

function fmt(shape: readonly number[]): string {
  return `[${shape.join(', ')}]`;
}

/** The rows of a tensor along its batch dimension (see the module comment for 1-D numeric tensors). */
function numericRows(t: Tensor): Tensor[] {
  if (t.shape.length === 0) return [t];
  if (t.shape.length === 1) return [t];
  return splitBatch(t);
}

function bytesElements(t: Tensor): Buffer[] {
  const ok = t.shape.length === 0 || t.shape.length === 1 || (t.shape.length === 2 && t.shape[1] === 1);
  if (!ok) throw badRequest(`tensor '${t.name}': a BYTES input must have shape [n] or [n, 1] (one input per element), got ${fmt(t.shape)}`);
  return t.data as Buffer[];
}

function checkDatatype(t: Tensor, app: string, type: InputType): void {
  const accepted = acceptedDatatypes(type);
  if (!accepted.includes(t.datatype)) {
    throw badRequest(`tensor '${t.name}': datatype ${t.datatype} does not fit application '${app}' (input type ${type}); send one of ${accepted.join(', ')}`);
  }
}

/**
 * The Clipper inputs (as the query API's JSON values) that the request's tensors make for an
 * application of `type`. Throws 400 V2Errors naming the tensor.
 */
export function tensorsToInputs(inputs: readonly Tensor[], app: string, type: InputType, asRecords: boolean, maxInputs: number): unknown[] {
  if (inputs.length === 0) throw badRequest('the request has no inputs');
  // The batch dimension is checked before any split: a shape [10^12, 0] holds no data but many rows.
  for (const t of inputs) {
    const rows = t.shape.length >= 2 || t.datatype === 'BYTES' || inputs.length > 1 || asRecords ? (t.shape[0] ?? 1) : 1;
    if (rows === 0) throw badRequest(`tensor '${t.name}': shape [${t.shape.join(', ')}] holds no inputs`);
    if (rows > maxInputs) throw badRequest(`tensor '${t.name}': ${rows} inputs in one request; at most ${maxInputs}`);
  }
  if (inputs.length > 1 || asRecords) {
    if (type !== 'strings') {
      throw badRequest(`application '${app}' (input type ${type}) takes one input tensor; several named tensors (content_type "pd") are records, for strings applications`);
    }
    for (const t of inputs) checkDatatype(t, app, type);
    return tensorsToRecords(inputs).map((r, i) => {
      for (const [k, v] of Object.entries(r)) {
        if (Buffer.isBuffer(v)) throw badRequest(`tensor '${k}': element ${i} is not UTF-8 text and cannot go into a record`);
        if (typeof v === 'bigint') throw badRequest(`tensor '${k}': element ${i} (${v}) is beyond 2^53 and cannot be written as a JSON number`);
      }
      return r;
    });
  }
  const t = inputs[0]!;
  checkDatatype(t, app, type);
  if (t.datatype === 'BYTES') {
    const elements = bytesElements(t);
    if (type === 'bytes') return elements.map((b) => b.toString('base64'));
    return elements.map((b, i) => {
      if (!isUtf8(b)) throw badRequest(`tensor '${t.name}': element ${i} is not UTF-8 text; a strings application takes text`);
      return b.toString('utf8');
    });
  }
  return numericRows(t).map((row, i) => {
    const values = tensorValues(row);
    for (let k = 0; k < values.length; k++) {
      const v = values[k];
      if (typeof v === 'bigint') throw badRequest(`tensor '${t.name}': row ${i} element ${k} (${v}) does not fit application '${app}' (input type ${type})`);
      if (typeof v === 'string') throw badRequest(`tensor '${t.name}': row ${i} element ${k} is ${v}; inputs must be finite numbers`);
    }
    return values;
  });
}

/** The datatype whose elements are exactly an input type's bytes on the RPC. */
const EXACT: Partial<Record<InputType, Datatype>> = { floats: 'FP32', doubles: 'FP64', ints: 'INT32' };

/**
 * The fast path: one numeric tensor of [n, ...] whose datatype is exactly the input type's
 * element (FP32 for floats, FP64 for doubles, INT32 for ints) is cut into n encoded inputs that
 * are views of its bytes, with no JS values in between. Undefined when the path does not apply.
 */
export function tensorToEncodedInputs(inputs: readonly Tensor[], type: InputType, asRecords: boolean, maxInputs: number): Buffer[] | undefined {
  const t = inputs[0];
  if (inputs.length !== 1 || asRecords || !t || EXACT[type] !== t.datatype || t.shape.length < 2) return undefined;
  const n = t.shape[0]!;
  if (n === 0 || n > maxInputs) return undefined; // the general path words the error
  const data = t.data as Float32Array | Float64Array | Int32Array;
  if (data instanceof Float32Array || data instanceof Float64Array) {
    for (let i = 0; i < data.length; i++) if (!Number.isFinite(data[i]!)) return undefined;
  }
  const rowBytes = data.byteLength / n;
  const out: Buffer[] = new Array(n);
  for (let i = 0; i < n; i++) out[i] = Buffer.from(data.buffer, data.byteOffset + i * rowBytes, rowBytes);
  return out;
}

/**
 * One output tensor from the outputs (one per input, in order). Typed tensors of one datatype and
 * shape (the `tensors` RPC extension) are stacked as they are: [n, ...shape].
 */
export function modelOutputsToTensor(name: string, outputs: readonly ModelOutput[]): Tensor {
  const first = outputs[0]?.tensor;
  if (first && outputs.every((o) => o.tensor && o.tensor.datatype === first.datatype && sameShape(o.tensor.shape, first.shape))) {
    return stackRows(outputs.map((o) => tensorFromBytes(name, o.tensor!.datatype, o.tensor!.shape, o.tensor!.data)), name);
  }
  return outputsToTensor(name, outputs.map((o) => o.value));
}

/** One output tensor from the applications's outputs (one per input, in order). */
export function outputsToTensor(name: string, outputs: readonly unknown[]): Tensor {
  const n = outputs.length;
  if (outputs.every((o) => typeof o === 'number')) return createTensor(name, 'FP64', [n], Float64Array.from(outputs as number[]));
  const first = outputs[0];
  if (Array.isArray(first) && outputs.every((o) => Array.isArray(o) && o.length === first.length && o.every((x) => typeof x === 'number'))) {
    const k = first.length;
    const data = new Float64Array(n * k);
    outputs.forEach((o, i) => data.set(o as number[], i * k));
    return createTensor(name, 'FP64', [n, k], data);
  }
  const text = outputs.map((o) => {
    if (typeof o === 'string') return Buffer.from(o, 'utf8');
    if (o !== null && typeof o === 'object') checkDepth(o, 'output');
    return Buffer.from(JSON.stringify(o) ?? 'null', 'utf8');
  });
  return createTensor(name, 'BYTES', [n], text);
}
