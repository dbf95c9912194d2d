/**
 * Triton's binary tensor data extension over HTTP. A body is a JSON header followed by raw tensor
 * bytes; the `Inference-Header-Content-Length` header gives the JSON header's length in bytes.
 * - Request: an input whose parameters carry `binary_data_size: N` has no `data`; its N bytes come
 *   from the binary part, inputs taking theirs in order. The sizes must add up to the binary part.
 * - Answer: an output is sent as binary when the request asks (`parameters.binary_data: true` on
 *   that requested output, or `parameters.binary_data_output: true` on the request for every
 *   output without its own `binary_data`). Such an output carries `parameters.binary_data_size`
 *   and no `data`; its bytes follow the JSON header in output order.
 * Raw bytes: fixed-size elements little-endian back to back; BOOL one byte each; BYTES elements
 * each a 4-byte little-endian length and the bytes (tensor.ts).
 */
import { badRequest } from './errors.ts';
import { stringifyV2 } from './json.ts';
import {
  parseInferRequest, parseJsonBody, responseJson, wantsBinaryOutput,
  type InferRequest, type InferResponse, type RequestedOutput,
} from './request.ts';
import {
  checkShape, isPlainObject, tensorByteLength, tensorFromBytes, tensorFromJson, tensorToBytes, tensorToJson,
  type JsonTensor, type Parameters, type Tensor,
} from './tensor.ts';
import { isDatatype } from './datatypes.ts';

/** The header naming the JSON part's length (HTTP header names are case-insensitive). */
export const HEADER_LENGTH_HEADER = 'inference-header-content-length';
export const JSON_CONTENT_TYPE = 'application/json';
export const BINARY_CONTENT_TYPE = 'application/octet-stream';

/** The header's value as a byte count: a non-negative integer, no larger than the body. */
export function parseHeaderLength(value: string | string[] | number | undefined, bodyLength: number): number | undefined {
  if (value === undefined) return undefined;
  if (Array.isArray(value)) {
    if (value.length !== 1) throw badRequest(`Inference-Header-Content-Length given ${value.length} times`);
    value = value[0]!;
  }
  let n: number;
  if (typeof value === 'number') n = value;
  else {
    const s = value.trim();
    if (!/^\d+$/.test(s)) throw badRequest(`Inference-Header-Content-Length must be a non-negative integer, got ${JSON.stringify(value)}`);
    n = Number(s);
  }
  if (!Number.isSafeInteger(n) || n < 0) throw badRequest(`Inference-Header-Content-Length must be a non-negative integer, got ${value}`);
  if (n > bodyLength) throw badRequest(`Inference-Header-Content-Length is ${n} but the body is only ${bodyLength} bytes`);
  return n;
}

/** Splits a body into its JSON header and binary part (undefined when the header is absent). */
export function splitBody(body: Buffer, headerLength: string | string[] | number | undefined): { json: Buffer; binary?: Buffer } {
  const n = parseHeaderLength(headerLength, body.length);
  if (n === undefined) return { json: body };
  return { json: body.subarray(0, n), binary: body.subarray(n) };
}

/** A request body (JSON, or JSON + binary tensors) → a validated request. */
export function decodeInferRequest(body: Buffer, headerLength?: string | string[] | number): InferRequest {
  const { json, binary } = splitBody(body, headerLength);
  return parseInferRequest(parseJsonBody(json), binary);
}

export interface EncodedBody {
  body: Buffer;
  /** The Inference-Header-Content-Length to send; undefined when the body is all JSON. */
  headerLength?: number;
  contentType: string;
}

function assemble(header: unknown, tails: Buffer[]): EncodedBody {
  const json = Buffer.from(stringifyV2(header), 'utf8');
  if (tails.length === 0) return { body: json, contentType: JSON_CONTENT_TYPE };
  return { body: Buffer.concat([json, ...tails]), headerLength: json.length, contentType: BINARY_CONTENT_TYPE };
}

function binaryEntry(t: Tensor, size: number): JsonTensor {
  return { name: t.name, datatype: t.datatype, shape: [...t.shape], parameters: { ...t.parameters, binary_data_size: size } };
}

function withoutSize(t: Tensor): Tensor {
  if (t.parameters === undefined || !('binary_data_size' in t.parameters)) return t;
  const { binary_data_size: _drop, ...rest } = t.parameters;
  const c: Tensor = { ...t };
  if (Object.keys(rest).length) c.parameters = rest;
  else delete c.parameters;
  return c;
}

/**
 * Encodes an answer, sending as binary the outputs the request asked to have as binary. Without
 * `req`, every output is JSON.
 */
export function encodeInferResponse(resp: InferResponse, req?: Pick<InferRequest, 'parameters' | 'outputs'>): EncodedBody {
  const tails: Buffer[] = [];
  const outputs = resp.outputs.map((t) => {
    if (req !== undefined && wantsBinaryOutput(req, t.name)) {
      const bytes = tensorToBytes(t);
      tails.push(bytes);
      return binaryEntry(t, bytes.length);
    }
    return tensorToJson(withoutSize(t));
  });
  return assemble(responseJson(resp, outputs), tails);
}

export interface RequestFields {
  id?: string;
  parameters?: Parameters;
  inputs: Tensor[];
  outputs?: RequestedOutput[];
}

/**
 * Encodes a request as a client would (for tests and callers of other V2 servers): inputs named in
 * `binaryInputs` (or all of them when true) go as binary data.
 */
export function encodeInferRequest(req: RequestFields, binaryInputs: boolean | ReadonlySet<string> = false): EncodedBody {
  const tails: Buffer[] = [];
  const inputs = req.inputs.map((t) => {
    if (binaryInputs === true || (binaryInputs !== false && binaryInputs.has(t.name))) {
      const bytes = tensorToBytes(t);
      tails.push(bytes);
      return binaryEntry(t, bytes.length);
    }
    return tensorToJson(withoutSize(t));
  });
  const header: Record<string, unknown> = {};
  if (req.id !== undefined) header.id = req.id;
  if (req.parameters !== undefined) header.parameters = req.parameters;
  header.inputs = inputs;
  if (req.outputs !== undefined) header.outputs = req.outputs;
  return assemble(header, tails);
}

/** Decodes an answer body (JSON, or JSON + binary outputs) as a client would. */
export function decodeInferResponse(body: Buffer, headerLength?: string | string[] | number): InferResponse {
  const { json: head, binary } = splitBody(body, headerLength);
  const json = parseJsonBody(head);
  if (!isPlainObject(json)) throw badRequest('inference response must be a JSON object');
  if (typeof json.model_name !== 'string') throw badRequest('inference response has no model_name');
  if (!Array.isArray(json.outputs)) throw badRequest('inference response has no list of outputs');
  let cursor = 0;
  const outputs = json.outputs.map((raw: unknown, i: number) => {
    if (!isPlainObject(raw)) throw badRequest(`outputs[${i}] must be an object`);
    const p = raw.parameters;
    const size = isPlainObject(p) ? p.binary_data_size : undefined;
    if (size === undefined) return tensorFromJson(raw, `outputs[${i}]`);
    const name = String(raw.name);
    if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) throw badRequest(`output '${name}': binary_data_size must be a non-negative integer`);
    if (binary === undefined || cursor + size > binary.length) throw badRequest(`output '${name}': binary_data_size ${size} runs past the end of the binary data`);
    if (!isDatatype(raw.datatype)) throw badRequest(`output '${name}': unknown datatype ${JSON.stringify(raw.datatype)}`);
    const t = tensorFromBytes(name, raw.datatype, checkShape(raw.shape, name), binary.subarray(cursor, cursor + size), p as Parameters);
    cursor += size;
    return t;
  });
  if (binary !== undefined && cursor !== binary.length) throw badRequest(`binary data is ${binary.length} bytes but the outputs' binary_data_size add up to ${cursor}`);
  const r: InferResponse = { model_name: json.model_name, outputs };
  if (typeof json.model_version === 'string') r.model_version = json.model_version;
  if (typeof json.id === 'string') r.id = json.id;
  if (isPlainObject(json.parameters)) r.parameters = json.parameters;
  return r;
}

/** Byte size the binary form of a tensor takes (for Content-Length planning). */
export const binarySize = tensorByteLength;
