/**
 * The `onnx` runtime's model: an onnxruntime-node session over CLIPPER_MODEL_PATH (an .onnx file, or a
 * directory holding exactly one). Each query is one example; a batch of queries runs as one tensor
 * [n, ...] when the model's batch dimension is dynamic, else one example at a time.
 */
import { InferenceSession, type Tensor } from 'onnxruntime-node';
import { errorMessage } from '../../errors.ts';
import { InputError } from '../sdk.ts';
import { resolveOnnxFile } from './metadata.ts';
import {
  describeInput, prepareExample, sliceOutput, sliceTensor, stackExamples, wholeOutput, wholeTensor, type Example, type InputSpec,
} from './tensors.ts';

export interface OnnxModelOptions {
  /** Threads inside one operator (default 1: the machine is shared with the frontend). 0 lets onnxruntime choose. */
  intraOpThreads?: number;
  /** Threads running independent operators in parallel (default 1, which also selects sequential execution). */
  interOpThreads?: number;
  /** Run one zero example at load so the first query does not pay for allocations (default true). */
  warmUp?: boolean;
}

export interface OnnxModel {
  readonly file: string;
  readonly input: InputSpec;
  readonly outputNames: readonly string[];
  /** One output per input: the example's output (an object name → value when the model has several outputs), or an InputError. */
  predict(inputs: unknown[]): Promise<unknown[]>;
  /**
   * As predict, with each output tensor a TypedTensor (the example's row, without the batch
   * dimension) instead of nested arrays: what the container serves, so a single-output model's
   * answers travel as raw tensors to a frontend that accepted them (string outputs stay arrays).
   */
  predictTensors(inputs: unknown[]): Promise<unknown[]>;
  close(): Promise<void>;
}

function threadCount(env: NodeJS.ProcessEnv, key: string, fallback: number): number {
  const text = env[key];
  if (text === undefined || text.trim() === '') return fallback;
  const n = Number(text);
  if (!Number.isInteger(n) || n < 0) throw new Error(`${key} must be a non-negative integer, got ${JSON.stringify(text)}`);
  return n;
}

export function onnxOptionsFromEnv(env: NodeJS.ProcessEnv = process.env): OnnxModelOptions {
  return {
    intraOpThreads: threadCount(env, 'CLIPPER_ONNX_INTRA_OP_THREADS', 1),
    interOpThreads: threadCount(env, 'CLIPPER_ONNX_INTER_OP_THREADS', 1),
  };
}

async function openSession(file: string, opts: OnnxModelOptions): Promise<InferenceSession> {
  const inter = opts.interOpThreads ?? 1;
  try {
    return await InferenceSession.create(file, {
      intraOpNumThreads: opts.intraOpThreads ?? 1,
      interOpNumThreads: inter,
      executionMode: inter > 1 ? 'parallel' : 'sequential',
      graphOptimizationLevel: 'all',
    });
  } catch (e) {
    throw new Error(`${file} is not a valid ONNX model: ${errorMessage(e)}`);
  }
}

/** Validates the session's inputs and outputs; returns the input spec and the tensor outputs to fetch. */
function inspect(session: InferenceSession, file: string): { input: InputSpec; outputNames: string[] } {
  const inputs = session.inputMetadata;
  if (inputs.length === 0) throw new Error(`${file} has no inputs; the onnx runtime needs one numeric input`);
  if (inputs.length > 1) {
    throw new Error(`${file} has ${inputs.length} inputs (${inputs.map((m) => m.name).join(', ')}); the onnx runtime feeds each query to a single numeric input`);
  }
  const input = describeInput(inputs[0]);
  const outputNames = session.outputMetadata.filter((m) => m.isTensor).map((m) => m.name);
  if (outputNames.length === 0) throw new Error(`${file} has no tensor outputs; the onnx runtime returns tensor outputs`);
  return { input, outputNames };
}

/** Deploy-time check: the artifact loads in onnxruntime and has an input/outputs the runtime can serve. */
export async function checkOnnxModel(path: string): Promise<void> {
  const file = resolveOnnxFile(path);
  const session = await openSession(file, { intraOpThreads: 1, interOpThreads: 1 });
  try {
    inspect(session, file);
  } finally {
    await session.release();
  }
}

export async function loadOnnxModel(path: string, opts: OnnxModelOptions = onnxOptionsFromEnv()): Promise<OnnxModel> {
  const file = resolveOnnxFile(path);
  const session = await openSession(file, opts);
  let model: OnnxRunner;
  try {
    const { input, outputNames } = inspect(session, file);
    model = new OnnxRunner(file, session, input, outputNames);
  } catch (e) {
    await session.release();
    throw e;
  }
  if (opts.warmUp !== false) await model.warmUp();
  return model;
}

export { resolveOnnxFile };

class OnnxRunner implements OnnxModel {
  /** Cleared when a batched run's outputs lack the batch dimension: later batches run one example at a time. */
  private batchable: boolean;

  constructor(readonly file: string, private readonly session: InferenceSession, readonly input: InputSpec, readonly outputNames: readonly string[]) {
    this.batchable = input.batch === 'dynamic';
  }

  async warmUp(): Promise<void> {
    if (this.input.dims.includes(null)) return;
    try {
      await this.predict([new Array<number>(this.input.knownSize).fill(0)]);
    } catch (e) {
      console.error(`clipper onnx: warm-up run of ${this.file} failed: ${errorMessage(e)}`);
    }
  }

  predict(inputs: unknown[]): Promise<unknown[]> {
    return this.predictAs(inputs, false);
  }

  predictTensors(inputs: unknown[]): Promise<unknown[]> {
    return this.predictAs(inputs, true);
  }

  private async predictAs(inputs: unknown[], typed: boolean): Promise<unknown[]> {
    const outputs: unknown[] = new Array(inputs.length);
    const groups = new Map<string, { index: number[]; examples: Example[] }>();
    inputs.forEach((raw, i) => {
      const ex = prepareExample(this.input, raw);
      if (ex instanceof InputError) {
        outputs[i] = ex;
        return;
      }
      const key = ex.dims.join('x');
      const group = groups.get(key) ?? { index: [], examples: [] };
      group.index.push(i);
      group.examples.push(ex);
      groups.set(key, group);
    });
    for (const { index, examples } of groups.values()) {
      const results = await this.runGroup(examples, typed);
      index.forEach((i, k) => { outputs[i] = results[k]; });
    }
    return outputs;
  }

  private async runGroup(examples: Example[], typed: boolean): Promise<unknown[]> {
    const [slice, whole] = typed ? [sliceTensor, wholeTensor] : [sliceOutput, wholeOutput];
    if (this.batchable && examples.length > 1) {
      const result = await this.run(stackExamples(this.input, examples, true));
      if (this.outputNames.every((name) => result[name].dims[0] === examples.length)) {
        return examples.map((_, k) => this.shape(result, (t) => slice(t, k)));
      }
      console.error(`clipper onnx: ${this.file}'s outputs do not keep the batch dimension; running examples one at a time`);
      this.batchable = false;
    }
    const out: unknown[] = [];
    for (const ex of examples) out.push(await this.runOne(ex, slice, whole));
    return out;
  }

  private async runOne(ex: Example, slice: (t: Tensor, index: number) => unknown, whole: (t: Tensor) => unknown): Promise<unknown> {
    const withBatch = this.input.batch !== 'none';
    const result = await this.run(stackExamples(this.input, [ex], withBatch));
    return this.shape(result, (t) => (withBatch && t.dims[0] === 1 ? slice(t, 0) : whole(t)));
  }

  private async run(feed: Tensor): Promise<InferenceSession.ReturnType> {
    try {
      return await this.session.run({ [this.input.name]: feed }, this.outputNames as string[]);
    } finally {
      feed.dispose();
    }
  }

  /** One output's value, or an object output name → value when the model has several. */
  private shape(result: InferenceSession.ReturnType, pick: (t: Tensor) => unknown): unknown {
    if (this.outputNames.length === 1) return pick(result[this.outputNames[0]]);
    return Object.fromEntries(this.outputNames.map((name) => [name, pick(result[name])]));
  }

  async close(): Promise<void> {
    await this.session.release();
  }
}
