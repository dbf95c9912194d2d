/**
 * Builds small ONNX models in code (with onnx-proto) for the onnx runtime's tests, plus float64 JS
 * references that compute the same thing. Models use opset 13 and IR version 8.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import onnxProto from 'onnx-proto';
import { tempDir } from './server.ts';
import { seededRandom } from '../../src/query/selection/random.ts';

export { seededRandom };

const { onnx } = onnxProto;
const FLOAT = onnx.TensorProto.DataType.FLOAT;

export type Dim = number | string;

export interface MlpModel {
  bytes: Uint8Array;
  /** Layer l's weights, row-major [in][out]: w[i * out + j]. */
  weights: Float32Array[];
  biases: Float32Array[];
  layers: number[];
}

export interface MlpOptions {
  seed?: number;
  /** true (default): input [N, ...]; false: the batch dimension is fixed at 1. */
  dynamicBatch?: boolean;
  /** Non-batch input dims (product must equal layers[0]); the model flattens them first. Default [layers[0]]. */
  inputShape?: number[];
  /** Weight scale: uniform in ±scale. Default 0.1. */
  scale?: number;
}


export function valueInfo(name: string, dims: Dim[], elemType: number = FLOAT): onnxProto.onnx.IValueInfoProto {
  return {
    name,
    type: {
      tensorType: {
        elemType,
        shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) },
      },
    },
  };
}

export function floatTensor(name: string, dims: number[], data: Float32Array): onnxProto.onnx.ITensorProto {
  return { name, dims, dataType: FLOAT, rawData: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) };
}

export function intTensor(name: string, data: number[]): onnxProto.onnx.ITensorProto {
  return { name, dims: [data.length], dataType: onnx.TensorProto.DataType.INT64, int64Data: data };
}

export function node(opType: string, input: string[], output: string[], attribute: onnxProto.onnx.IAttributeProto[] = []): onnxProto.onnx.INodeProto {
  return { opType, input, output, name: `${opType}_${output[0]}`, attribute };
}

export function encodeModel(graph: onnxProto.onnx.IGraphProto): Uint8Array {
  const model = onnx.ModelProto.create({
    irVersion: 8,
    producerName: 'clipper-ts-tests',
    opsetImport: [{ domain: '', version: 13 }],
    graph,
  });
  return onnx.ModelProto.encode(model).finish();
}

/** Gemm + Relu layers (no Relu after the last): logits = ... relu(x W0 + b0) W1 + b1 ... */
export function buildMlp(layers: number[], opts: MlpOptions = {}): MlpModel {
  if (layers.length < 2) throw new Error('an MLP needs at least an input and an output size');
  const rand = seededRandom(opts.seed ?? 1);
  const scale = opts.scale ?? 0.1;
  const batch: Dim = opts.dynamicBatch === false ? 1 : 'N';
  const inputShape = opts.inputShape ?? [layers[0]];
  if (inputShape.reduce((a, b) => a * b, 1) !== layers[0]) throw new Error(`input shape ${inputShape} does not hold ${layers[0]} values`);

  const weights: Float32Array[] = [];
  const biases: Float32Array[] = [];
  const initializer: onnxProto.onnx.ITensorProto[] = [];
  const nodes: onnxProto.onnx.INodeProto[] = [];
  let current = 'input';
  if (inputShape.length !== 1) {
    nodes.push(node('Flatten', [current], ['flat'], [{ name: 'axis', type: onnx.AttributeProto.AttributeType.INT, i: 1 }]));
    current = 'flat';
  }
  for (let l = 0; l + 1 < layers.length; l++) {
    const [nIn, nOut] = [layers[l], layers[l + 1]];
    const w = new Float32Array(nIn * nOut).map(() => (rand() * 2 - 1) * scale);
    const b = new Float32Array(nOut).map(() => (rand() * 2 - 1) * scale);
    weights.push(w);
    biases.push(b);
    initializer.push(floatTensor(`W${l}`, [nIn, nOut], w), floatTensor(`B${l}`, [nOut], b));
    const last = l + 2 === layers.length;
    const gemmOut = last ? 'logits' : `gemm${l}`;
    nodes.push(node('Gemm', [current, `W${l}`, `B${l}`], [gemmOut]));
    if (!last) nodes.push(node('Relu', [gemmOut], [`relu${l}`]));
    current = last ? gemmOut : `relu${l}`;
  }
  const bytes = encodeModel({
    name: 'mlp',
    node: nodes,
    initializer,
    input: [valueInfo('input', [batch, ...inputShape])],
    output: [valueInfo('logits', [batch, layers[layers.length - 1]])],
  });
  return { bytes, weights, biases, layers };
}

/** The MLP's output for one example, computed in float64 from the same float32 weights. */
export function mlpReference(model: Pick<MlpModel, 'weights' | 'biases'>, x: ArrayLike<number>): number[] {
  let act = Array.from(x);
  model.weights.forEach((w, l) => {
    const b = model.biases[l];
    const nIn = act.length;
    const nOut = b.length;
    if (w.length !== nIn * nOut) throw new Error(`layer ${l} expects ${w.length / nOut} inputs, got ${nIn}`);
    const out = Array.from(b, Number);
    for (let i = 0; i < nIn; i++) {
      const a = act[i];
      if (a === 0) continue;
      for (let j = 0; j < nOut; j++) out[j] += a * w[i * nOut + j];
    }
    act = l + 1 < model.weights.length ? out.map((v) => Math.max(0, v)) : out;
  });
  return act;
}

/**
 * Two outputs from input x [N, width]: `scaled` = x * 2 + 1 (same shape) and `total` = sum over axis 1 ([N]).
 */
export function buildTwoOutputModel(width: number): Uint8Array {
  return encodeModel({
    name: 'two_outputs',
    node: [
      node('Mul', ['x', 'two'], ['doubled']),
      node('Add', ['doubled', 'one'], ['scaled']),
      node('ReduceSum', ['x', 'axes'], ['total'], [{ name: 'keepdims', type: onnx.AttributeProto.AttributeType.INT, i: 0 }]),
    ],
    initializer: [floatTensor('two', [1], new Float32Array([2])), floatTensor('one', [1], new Float32Array([1])), intTensor('axes', [1])],
    input: [valueInfo('x', ['N', width])],
    output: [valueInfo('scaled', ['N', width]), valueInfo('total', ['N'])],
  });
}

/** A model whose input is a given element type: y = x + x (same type and shape [N, width]). */
export function buildDoublingModel(width: number, elemType: number): Uint8Array {
  return encodeModel({
    name: 'doubling',
    node: [node('Add', ['x', 'x'], ['y'])],
    input: [valueInfo('x', ['N', width], elemType)],
    output: [valueInfo('y', ['N', width], elemType)],
  });
}

/** Writes bytes to `<fresh temp dir>/<name>` and returns the file's path. */
export function writeModelFile(bytes: Uint8Array, name = 'model.onnx', dir = tempDir('clipper-onnx-')): string {
  const file = join(dir, name);
  writeFileSync(file, bytes);
  return file;
}
