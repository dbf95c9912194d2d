/**
 * An ONNX model's own inputs and outputs (name, V2 datatype, dims with -1 for a symbolic or unknown
 * dim), read from the file without onnxruntime: what V2 model metadata shows for an `onnx` version.
 *
 * Only the parts needed are read. A model file is a protobuf ModelProto whose graph holds the
 * weights (initializers) before its input and output lists, so a whole-file parse would read and
 * decode every weight. Instead the file is walked field by field with positional reads, skipping
 * any field but the graph's `input` (11), `output` (12) and the initializers' names, which each
 * decode with onnx-proto. A model of several GB costs a few small reads.
 */
import { closeSync, existsSync, fstatSync, openSync, readSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import onnxProto from 'onnx-proto';
import type { Datatype } from '../../v2/datatypes.ts';

const { onnx } = onnxProto;

export interface OnnxTensorInfo {
  name: string;
  datatype: Datatype;
  /** -1 for a symbolic (`N`) or unknown dim; `[-1]` when the rank itself is unknown. */
  shape: number[];
}

export interface OnnxMetadata {
  /** Graph inputs fed at run time (initializers listed as inputs, as older exporters do, are left out). */
  inputs: OnnxTensorInfo[];
  /** Tensor outputs (sequence and map outputs, which the onnx runtime does not return, are left out). */
  outputs: OnnxTensorInfo[];
}

/** The .onnx file a model path names: the file itself, or the single .onnx file in a directory. */
export function resolveOnnxFile(path: string): string {
  if (!path || !existsSync(path)) throw new Error(`model path ${JSON.stringify(path)} does not exist`);
  if (!statSync(path).isDirectory()) return path;
  const found = readdirSync(path).filter((n) => n.toLowerCase().endsWith('.onnx') && statSync(join(path, n)).isFile()).sort();
  if (found.length === 0) throw new Error(`directory ${path} contains no .onnx file`);
  if (found.length > 1) throw new Error(`directory ${path} contains ${found.length} .onnx files (${found.join(', ')}); expected exactly one`);
  return join(path, found[0]!);
}

/** TensorProto.DataType → V2 datatype; complex and 8-bit float types have none. */
const ELEM_DATATYPES: Readonly<Record<number, Datatype>> = {
  1: 'FP32', 2: 'UINT8', 3: 'INT8', 4: 'UINT16', 5: 'INT16', 6: 'INT32', 7: 'INT64', 8: 'BYTES', 9: 'BOOL',
  10: 'FP16', 11: 'FP64', 12: 'UINT32', 13: 'UINT64', 16: 'BF16',
};

/** A value info (and so one tensor) larger than this is not a model's. */
const MAX_VALUE_INFO_BYTES = 16 << 20;

/** Reads the metadata of the model at `path` (a file, or a directory holding one .onnx file); throws why not. */
export function readOnnxMetadata(path: string): OnnxMetadata {
  const file = resolveOnnxFile(path);
  const reader = new FileReader(file);
  try {
    return scanModel(reader);
  } catch (e) {
    throw new Error(`${file} is not a readable ONNX model: ${(e as Error).message}`);
  } finally {
    reader.close();
  }
}

function scanModel(r: FileReader): OnnxMetadata {
  const inputs: onnxProto.onnx.ValueInfoProto[] = [];
  const outputs: onnxProto.onnx.ValueInfoProto[] = [];
  const initializers = new Set<string>();
  let graphs = 0;
  walk(r, 0, r.size, (field, start, end) => {
    if (field !== 7) return; // ModelProto.graph (a repeated singular field merges: read each)
    graphs++;
    walk(r, start, end, (f, s, e) => {
      if (f === 11) inputs.push(decodeValueInfo(r, s, e));
      else if (f === 12) outputs.push(decodeValueInfo(r, s, e));
      else if (f === 5) {
        walk(r, s, e, (tf, ts, te) => { // TensorProto.name
          if (tf === 8) initializers.add(r.read(ts, Math.min(te - ts, 4096)).toString('utf8'));
        });
      }
    });
  });
  if (graphs === 0) throw new Error('it has no graph');
  const tensors = (list: onnxProto.onnx.ValueInfoProto[]) => list.filter((v) => v.type?.tensorType).map(tensorInfo);
  return { inputs: tensors(inputs.filter((v) => !initializers.has(v.name))), outputs: tensors(outputs) };
}

function decodeValueInfo(r: FileReader, start: number, end: number): onnxProto.onnx.ValueInfoProto {
  if (end - start > MAX_VALUE_INFO_BYTES) throw new Error(`a graph input or output of ${end - start} bytes`);
  return onnx.ValueInfoProto.decode(r.read(start, end - start));
}

function tensorInfo(v: onnxProto.onnx.ValueInfoProto): OnnxTensorInfo {
  const t = v.type!.tensorType!;
  const datatype = ELEM_DATATYPES[t.elemType ?? 0];
  if (!datatype) throw new Error(`tensor ${JSON.stringify(v.name)} has ONNX element type ${t.elemType ?? 0}, which has no V2 datatype`);
  const dims = t.shape?.dim;
  const shape = dims ? dims.map((d) => (d.dimValue != null ? toNumber(d.dimValue) : -1)) : [-1];
  return { name: v.name, datatype, shape };
}

function toNumber(v: number | { toString(): string }): number {
  const n = typeof v === 'number' ? v : Number(v.toString());
  return Number.isSafeInteger(n) && n >= 0 ? n : -1;
}

/**
 * Calls `visit(field, start, end)` for each length-delimited field of the message in [start, end);
 * other wire types are skipped. Throws on a truncated or malformed message.
 */
function walk(r: FileReader, start: number, end: number, visit: (field: number, start: number, end: number) => void): void {
  let pos = start;
  while (pos < end) {
    const [key, afterKey] = r.varint(pos, end);
    const field = Math.floor(key / 8);
    const wire = key % 8;
    if (field === 0) throw new Error(`field number 0 at byte ${pos}`);
    switch (wire) {
      case 0: pos = r.varint(afterKey, end, false)[1]; break; // may be a negative int64: 10 bytes, any value
      case 1: pos = afterKey + 8; break;
      case 5: pos = afterKey + 4; break;
      case 2: {
        const [len, body] = r.varint(afterKey, end);
        pos = body + len;
        if (pos > end) throw new Error(`a field of ${len} bytes runs past its message at byte ${body}`);
        visit(field, body, pos);
        break;
      }
      default: throw new Error(`wire type ${wire} at byte ${pos}`);
    }
  }
  if (pos !== end) throw new Error('a field runs past its message');
}

/** Positional reads through a 64 KiB window, so walking small fields costs few system calls. */
class FileReader {
  private readonly fd: number;
  readonly size: number;
  private window = Buffer.alloc(0);
  private windowStart = 0;

  constructor(file: string) {
    this.fd = openSync(file, 'r');
    this.size = fstatSync(this.fd).size;
  }

  close(): void {
    closeSync(this.fd);
  }

  read(pos: number, len: number): Buffer {
    if (pos < 0 || pos + len > this.size) throw new Error(`the file ends at byte ${this.size}, before byte ${pos + len}`);
    if (pos >= this.windowStart && pos + len <= this.windowStart + this.window.length) {
      return this.window.subarray(pos - this.windowStart, pos - this.windowStart + len);
    }
    const size = Math.max(len, Math.min(64 * 1024, this.size - pos));
    const buf = Buffer.allocUnsafe(size);
    let got = 0;
    while (got < size) {
      const n = readSync(this.fd, buf, got, size - got, pos + got);
      if (n === 0) throw new Error(`the file ends at byte ${pos + got}`);
      got += n;
    }
    if (len <= 64 * 1024) [this.window, this.windowStart] = [buf, pos];
    return buf.subarray(0, len);
  }

  /** A varint at `pos` (before `end`): its value (exact below 2^53, else refused unless `exact` is false) and the position after it. */
  varint(pos: number, end: number, exact = true): [number, number] {
    let value = 0;
    let scale = 1;
    for (let i = 0; i < 10; i++) {
      if (pos + i >= end) throw new Error(`a varint runs past its message at byte ${pos}`);
      const b = this.read(pos + i, 1)[0]!;
      value += (b & 0x7f) * scale;
      scale *= 128;
      if (b < 0x80) {
        if (exact && !Number.isSafeInteger(value)) throw new Error(`a varint too large at byte ${pos}`);
        return [value, pos + i + 1];
      }
    }
    throw new Error(`a varint longer than 10 bytes at byte ${pos}`);
  }
}
