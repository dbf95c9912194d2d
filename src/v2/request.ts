/**
 * V2 inference requests and responses, and the metadata answers: validating a request's JSON into
 * typed tensors, choosing the requested outputs, and building the answer objects.
 *
 * Errors are V2Errors (errors.ts) with the status a V2 server answers: 400 for a bad request,
 * 404 for an unknown model.
 */
import { badRequest, notFound, V2Error } from './errors.ts';
import {
  checkShape, isPlainObject, tensorFromBytes, tensorFromJson, tensorToJson,
  type JsonTensor, type Parameters, type Tensor,
} from './tensor.ts';
import { DATATYPES, isDatatype, type Datatype } from './datatypes.ts';

export { V2Error, badRequest, notFound } from './errors.ts';

export interface RequestedOutput {
  name: string;
  parameters?: Parameters;
}

export interface InferRequest {
  id?: string;
  parameters?: Parameters;
  inputs: Tensor[];
  /** Absent: the model's every output is wanted. */
  outputs?: RequestedOutput[];
}

export interface InferResponse {
  model_name: string;
  model_version?: string;
  id?: string;
  parameters?: Parameters;
  outputs: Tensor[];
}

export interface InferResponseJson {
  model_name: string;
  model_version?: string;
  id?: string;
  parameters?: Parameters;
  outputs: JsonTensor[];
}

/** Parses a JSON body; malformed JSON is a 400. */
export function parseJsonBody(body: string | Buffer): unknown {
  try {
    return JSON.parse(typeof body === 'string' ? body : body.toString('utf8'));
  } catch (e) {
    throw badRequest(`malformed JSON in request body: ${(e as Error).message}`);
  }
}

/** Types of the parameters the protocol and its extensions give meaning to. */
const KNOWN_PARAMETERS: Readonly<Record<string, 'boolean' | 'string' | 'size'>> = {
  binary_data: 'boolean',
  binary_data_output: 'boolean',
  binary_data_size: 'size',
  content_type: 'string',
};

function checkParameters(p: unknown, where: string): Parameters | undefined {
  if (p === undefined) return undefined;
  if (!isPlainObject(p)) throw badRequest(`${where}: parameters must be an object`);
  for (const [k, v] of Object.entries(p)) {
    const kind = KNOWN_PARAMETERS[k];
    if (kind === 'boolean' && typeof v !== 'boolean') throw badRequest(`${where}: parameter '${k}' must be true or false, got ${JSON.stringify(v)}`);
    if (kind === 'string' && typeof v !== 'string') throw badRequest(`${where}: parameter '${k}' must be a string, got ${JSON.stringify(v)}`);
    if (kind === 'size' && !(typeof v === 'number' && Number.isSafeInteger(v) && v >= 0)) {
      throw badRequest(`${where}: parameter '${k}' must be a non-negative integer, got ${JSON.stringify(v)}`);
    }
  }
  return p;
}

/**
 * Validates an inference request. `binary` is the body after the JSON header (the binary tensor
 * extension, see binary.ts): inputs whose parameters carry `binary_data_size` take that many bytes
 * from it, in input order, and together they must use all of it.
 */
export function parseInferRequest(json: unknown, binary?: Buffer): InferRequest {
  if (!isPlainObject(json)) throw badRequest('inference request must be a JSON object');
  const req: InferRequest = { inputs: [] };
  if (json.id !== undefined) {
    if (typeof json.id !== 'string') throw badRequest(`request id must be a string, got ${JSON.stringify(json.id)}`);
    req.id = json.id;
  }
  const parameters = checkParameters(json.parameters, 'request');
  if (parameters !== undefined) req.parameters = parameters;

  if (!Array.isArray(json.inputs)) throw badRequest(`request must have a list of inputs, got ${json.inputs === undefined ? 'none' : JSON.stringify(json.inputs)}`);
  let cursor = 0;
  const names = new Set<string>();
  json.inputs.forEach((raw: unknown, i: number) => {
    const label = `inputs[${i}]`;
    if (!isPlainObject(raw)) throw badRequest(`${label} must be an object`);
    const name = typeof raw.name === 'string' && raw.name !== '' ? raw.name : undefined;
    const where = name === undefined ? label : `input '${name}'`;
    const p = checkParameters(raw.parameters, where);
    let t: Tensor;
    if (p !== undefined && p.binary_data_size !== undefined) {
      const size = p.binary_data_size as number;
      if (name === undefined) throw badRequest(`${label}: name must be a non-empty string`);
      if (raw.data !== undefined) throw badRequest(`input '${name}': has both data and binary_data_size; send one or the other`);
      if (binary === undefined) throw badRequest(`input '${name}': has binary_data_size but the request carries no binary data (no Inference-Header-Content-Length header)`);
      if (!isDatatype(raw.datatype)) throw badRequest(`tensor '${name}': ${raw.datatype === undefined ? 'no datatype' : `unknown datatype ${JSON.stringify(raw.datatype)}`}; expected one of ${DATATYPES.join(', ')}`);
      const shape = checkShape(raw.shape, name);
      if (cursor + size > binary.length) {
        throw badRequest(`input '${name}': binary_data_size ${size} runs past the end of the binary data (${binary.length - cursor} of ${binary.length} bytes left)`);
      }
      t = tensorFromBytes(name, raw.datatype, shape, binary.subarray(cursor, cursor + size), p);
      cursor += size;
    } else {
      t = tensorFromJson(raw, label);
    }
    if (names.has(t.name)) throw badRequest(`input '${t.name}' appears twice`);
    names.add(t.name);
    req.inputs.push(t);
  });
  if (binary !== undefined && cursor !== binary.length) {
    throw badRequest(`binary data is ${binary.length} bytes but the inputs' binary_data_size add up to ${cursor}`);
  }

  if (json.outputs !== undefined) {
    if (!Array.isArray(json.outputs)) throw badRequest('request outputs must be a list');
    const seen = new Set<string>();
    req.outputs = json.outputs.map((raw: unknown, i: number) => {
      if (!isPlainObject(raw)) throw badRequest(`outputs[${i}] must be an object`);
      if (typeof raw.name !== 'string' || raw.name === '') throw badRequest(`outputs[${i}]: name must be a non-empty string`);
      if (seen.has(raw.name)) throw badRequest(`output '${raw.name}' is requested twice`);
      seen.add(raw.name);
      const o: RequestedOutput = { name: raw.name };
      const op = checkParameters(raw.parameters, `output '${raw.name}'`);
      if (op !== undefined) o.parameters = op;
      return o;
    });
  }
  return req;
}

/**
 * Whether output `name` is to be sent as binary data: its own `binary_data` parameter when given,
 * else the request's `binary_data_output`.
 */
export function wantsBinaryOutput(req: Pick<InferRequest, 'parameters' | 'outputs'>, name: string): boolean {
  const own = req.outputs?.find((o) => o.name === name)?.parameters?.binary_data;
  if (typeof own === 'boolean') return own;
  return req.parameters?.binary_data_output === true;
}

/**
 * The outputs to answer with: all of them when the request names none, else the named ones in the
 * request's order. Naming an output the model does not produce is a 400.
 */
export function selectOutputs(req: Pick<InferRequest, 'outputs'>, produced: readonly Tensor[], modelName?: string): Tensor[] {
  if (req.outputs === undefined) return [...produced];
  return req.outputs.map((o) => {
    const t = produced.find((p) => p.name === o.name);
    if (t === undefined) {
      throw badRequest(`unexpected inference output '${o.name}'${modelName ? ` for model '${modelName}'` : ''}; it has ${produced.map((p) => `'${p.name}'`).join(', ') || 'none'}`);
    }
    return t;
  });
}

export interface ResponseFields {
  modelName: string;
  modelVersion?: string;
  id?: string;
  parameters?: Parameters;
  outputs: Tensor[];
}

/** An inference response (the request's id is echoed by passing it as `id`). */
export function buildInferResponse(f: ResponseFields): InferResponse {
  if (typeof f.modelName !== 'string' || f.modelName === '') throw new V2Error(500, 'an inference response needs a model name');
  const r: InferResponse = { model_name: f.modelName, outputs: f.outputs };
  if (f.modelVersion !== undefined) r.model_version = f.modelVersion;
  if (f.id !== undefined) r.id = f.id;
  if (f.parameters !== undefined) r.parameters = f.parameters;
  const names = new Set<string>();
  for (const t of f.outputs) {
    if (names.has(t.name)) throw new V2Error(500, `model '${f.modelName}' answered output '${t.name}' twice`);
    names.add(t.name);
  }
  return r;
}

/** The response as V2 JSON, every output with flat data. */
export function inferResponseToJson(r: InferResponse): InferResponseJson {
  return responseJson(r, r.outputs.map(tensorToJson));
}

/** The response's JSON fields around already-shaped outputs. */
export function responseJson(r: Omit<InferResponse, 'outputs'>, outputs: JsonTensor[]): InferResponseJson {
  const j = { model_name: r.model_name } as InferResponseJson;
  if (r.model_version !== undefined) j.model_version = r.model_version;
  if (r.id !== undefined) j.id = r.id;
  if (r.parameters !== undefined) j.parameters = r.parameters;
  j.outputs = outputs;
  return j;
}

// ---------------------------------------------------------------------------------------------
// Metadata.

export interface TensorMetadata {
  name: string;
  datatype: Datatype;
  /** -1 marks a variable dimension. */
  shape: number[];
}

export interface ServerMetadata {
  name: string;
  version: string;
  extensions: string[];
}

export interface ModelMetadata {
  name: string;
  versions?: string[];
  platform: string;
  inputs?: TensorMetadata[];
  outputs?: TensorMetadata[];
}

export function serverMetadata(name: string, version: string, extensions: readonly string[] = []): ServerMetadata {
  return { name, version, extensions: [...extensions] };
}

function checkTensorMetadata(t: TensorMetadata, model: string): TensorMetadata {
  if (!isDatatype(t.datatype)) throw new V2Error(500, `model '${model}': tensor '${t.name}' has unknown datatype ${JSON.stringify(t.datatype)}`);
  if (!Array.isArray(t.shape) || !t.shape.every((d) => Number.isSafeInteger(d) && d >= -1)) {
    throw new V2Error(500, `model '${model}': tensor '${t.name}' has a bad shape ${JSON.stringify(t.shape)}`);
  }
  return { name: t.name, datatype: t.datatype, shape: [...t.shape] };
}

export function modelMetadata(m: ModelMetadata): ModelMetadata {
  const out: ModelMetadata = { name: m.name, platform: m.platform };
  if (m.versions !== undefined) out.versions = [...m.versions];
  if (m.inputs !== undefined) out.inputs = m.inputs.map((t) => checkTensorMetadata(t, m.name));
  if (m.outputs !== undefined) out.outputs = m.outputs.map((t) => checkTensorMetadata(t, m.name));
  return out;
}

/** The 404 for a model (and version) the server does not have. */
export function unknownModel(name: string, version?: string): V2Error {
  return notFound(version === undefined ? `unknown model '${name}'` : `unknown version '${version}' of model '${name}'`);
}
