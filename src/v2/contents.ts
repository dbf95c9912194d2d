/**
 * gRPC typed tensor contents (InferTensorContents in grpc_service.proto) ↔ tensors. Field names
 * are the proto's. 64-bit values are accepted as number, bigint or decimal string (what gRPC
 * loaders give for int64) and produced as bigint. FP16 and BF16 have no typed field: they travel
 * as raw contents (tensorFromBytes / tensorToBytes in tensor.ts).
 */
import { DATATYPE_INFO, toStored, type Datatype } from './datatypes.ts';
import { badRequest } from './errors.ts';
import { elementCount, type Parameters, type Tensor, type TensorData } from './tensor.ts';

export interface InferTensorContents {
  bool_contents?: boolean[];
  int_contents?: number[];
  int64_contents?: (number | bigint | string)[];
  uint_contents?: number[];
  uint64_contents?: (number | bigint | string)[];
  fp32_contents?: number[];
  fp64_contents?: number[];
  bytes_contents?: Uint8Array[];
}

export type ContentsField = keyof InferTensorContents;

const FIELDS: readonly ContentsField[] = [
  'bool_contents', 'int_contents', 'int64_contents', 'uint_contents', 'uint64_contents',
  'fp32_contents', 'fp64_contents', 'bytes_contents',
];

/** The contents field that carries `dt`, or null for FP16 and BF16 (raw only). */
export function contentsField(dt: Datatype): ContentsField | null {
  switch (dt) {
    case 'BOOL': return 'bool_contents';
    case 'INT8': case 'INT16': case 'INT32': return 'int_contents';
    case 'INT64': return 'int64_contents';
    case 'UINT8': case 'UINT16': case 'UINT32': return 'uint_contents';
    case 'UINT64': return 'uint64_contents';
    case 'FP32': return 'fp32_contents';
    case 'FP64': return 'fp64_contents';
    case 'BYTES': return 'bytes_contents';
    default: return null;
  }
}

/** A tensor from typed contents: only the datatype's field may hold values, exactly the element count. */
export function tensorFromContents(name: string, datatype: Datatype, shape: number[], contents: InferTensorContents, parameters?: Parameters): Tensor {
  const field = contentsField(datatype);
  if (field === null) throw badRequest(`tensor '${name}': ${datatype} has no typed contents; send it in raw_input_contents`);
  for (const f of FIELDS) {
    if (f !== field && (contents[f]?.length ?? 0) > 0) throw badRequest(`tensor '${name}': ${datatype} data belongs in ${field}, not ${f}`);
  }
  const values = (contents[field] ?? []) as readonly unknown[];
  const count = elementCount(shape);
  if (values.length !== count) throw badRequest(`tensor '${name}': ${field} has ${values.length} elements but shape [${shape.join(', ')}] needs ${count}`);
  const A = DATATYPE_INFO[datatype].array;
  const data: TensorData = A ? new A(count) : new Array<Buffer>(count);
  const out = data as unknown as { [i: number]: unknown };
  for (let i = 0; i < count; i++) {
    let v = values[i];
    if (typeof v === 'string' && (datatype === 'INT64' || datatype === 'UINT64')) {
      if (!/^-?\d+$/.test(v)) throw badRequest(`tensor '${name}': element ${i} (${JSON.stringify(v)}) is not an integer, as ${datatype} requires`);
      v = BigInt(v);
    } else if (datatype === 'FP32' && typeof v === 'number') {
      out[i] = v; // the wire already holds a float
      continue;
    }
    out[i] = toStored(datatype, v, name, i);
  }
  const t: Tensor = { name, datatype, shape, data };
  if (parameters !== undefined) t.parameters = parameters;
  return t;
}

/** A tensor's typed contents (FP16/BF16 are an error: they go raw). */
export function tensorToContents(t: Tensor): InferTensorContents {
  const field = contentsField(t.datatype);
  if (field === null) throw badRequest(`tensor '${t.name}': ${t.datatype} has no typed contents; it goes in raw contents`);
  if (t.datatype === 'BOOL') return { bool_contents: Array.from(t.data as Uint8Array, (b) => b !== 0) };
  if (t.datatype === 'BYTES') return { bytes_contents: [...(t.data as Buffer[])] };
  return { [field]: Array.from(t.data as ArrayLike<number | bigint>) } as InferTensorContents;
}
