/**
 * The `onnx` runtime: serves the ONNX model at CLIPPER_MODEL_PATH (an .onnx file, or a directory holding
 * exactly one) with onnxruntime-node. Threads: CLIPPER_ONNX_INTRA_OP_THREADS / CLIPPER_ONNX_INTER_OP_THREADS (default 1).
 */
import { serve } from '../sdk.ts';
import { loadOnnxModel } from './model.ts';

const model = await loadOnnxModel(process.env.CLIPPER_MODEL_PATH ?? '');
// Typed outputs: raw tensors to a frontend that accepted the `tensors` RPC extension, JSON text to any other.
await serve((inputs) => model.predictTensors(inputs));
