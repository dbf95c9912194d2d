import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import onnxProto from 'onnx-proto';
import { checkOnnxModel, loadOnnxModel, onnxOptionsFromEnv, type OnnxModel } from '../../src/runtimes/onnx/model.ts';
import { InputError } from '../../src/runtimes/sdk.ts';
import {
  buildDoublingModel, buildMlp, buildTwoOutputModel, encodeModel, mlpReference, node, seededRandom, valueInfo, writeModelFile, type MlpModel,
} from '../helpers/onnx-builder.ts';
import { startTestServer, tempDir, type TestServer } from '../helpers/server.ts';

const TOL = 1e-4;

/** n float32-representable examples of `size` values in [0, 1). */
function examples(n: number, size: number, seed = 7): number[][] {
  const rand = seededRandom(seed);
  return Array.from({ length: n }, () => Array.from({ length: size }, () => Math.fround(rand())));
}

function assertClose(actual: unknown, expected: number[], what: string): void {
  assert.ok(Array.isArray(actual), `${what}: expected an array, got ${JSON.stringify(actual)}`);
  assert.equal(actual.length, expected.length, `${what}: length`);
  actual.forEach((v, i) => assert.ok(Math.abs((v as number) - expected[i]) <= TOL, `${what}[${i}]: ${v} vs reference ${expected[i]}`));
}

async function load(bytes: Uint8Array): Promise<OnnxModel> {
  return loadOnnxModel(writeModelFile(bytes), { intraOpThreads: 1, interOpThreads: 1 });
}

describe('onnx runtime: loadOnnxModel', () => {
  let mlp: MlpModel;
  let model: OnnxModel;
  before(async () => {
    mlp = buildMlp([784, 256, 10], { seed: 42 });
    model = await load(mlp.bytes);
  });
  after(() => model.close());

  it('reads the input metadata', () => {
    assert.deepEqual(model.input, { name: 'input', type: 'float32', batch: 'dynamic', dims: [784], knownSize: 784 });
    assert.deepEqual(model.outputNames, ['logits']);
  });

  it('predicts a batch of 5 and single examples within 1e-4 of the JS reference', async () => {
    const xs = examples(5, 784);
    const outs = await model.predict(xs.map((x) => Float32Array.from(x)));
    assert.equal(outs.length, 5);
    outs.forEach((o, i) => assertClose(o, mlpReference(mlp, xs[i]), `batch example ${i}`));
    for (const [i, x] of xs.slice(0, 2).entries()) {
      const [one] = await model.predict([x]);
      assertClose(one, mlpReference(mlp, x), `single example ${i} (plain array)`);
    }
    const [fromDoubles] = await model.predict([Float64Array.from(xs[2])]);
    assertClose(fromDoubles, mlpReference(mlp, xs[2]), 'a Float64Array converted to the model\'s float32');
    assert.deepEqual(await model.predict([]), []);
  });

  it('fails only the input with the wrong length, naming expected and actual lengths', async () => {
    const [a, b] = examples(2, 784, 3);
    const outs = await model.predict([Float32Array.from(a), new Float32Array(783), Float32Array.from(b), 'not json', new Uint8Array(Buffer.from('x'))]);
    assertClose(outs[0], mlpReference(mlp, a), 'first good input');
    assertClose(outs[2], mlpReference(mlp, b), 'second good input');
    assert.ok(outs[1] instanceof InputError);
    assert.match(outs[1].message, /expects 784 values per example, got 783/);
    assert.ok(outs[3] instanceof InputError);
    assert.match(outs[3].message, /JSON array of numbers/);
    assert.ok(outs[4] instanceof InputError, 'a one-value array is the wrong length');
  });

  it('accepts a JSON array string as one example', async () => {
    const [x] = examples(1, 784, 5);
    const [out] = await model.predict([JSON.stringify(x)]);
    assertClose(out, mlpReference(mlp, x), 'string input');
  });

  it('returns an object of outputs for a multi-output model', async () => {
    const m = await load(buildTwoOutputModel(3));
    try {
      const outs = await m.predict([Float32Array.of(1, 2, 3), Float32Array.of(4, 5, 6), Float32Array.of(1)]);
      assert.deepEqual(outs.slice(0, 2), [{ scaled: [3, 5, 7], total: 6 }, { scaled: [9, 11, 13], total: 15 }]);
      assert.ok(outs[2] instanceof InputError);
      assert.match(outs[2].message, /expects 3 values per example, got 1/);
    } finally {
      await m.close();
    }
  });

  it('runs a model whose batch dimension is fixed at 1, one example at a time, with a [1, 28, 28] input', async () => {
    const fixed = buildMlp([784, 32, 4], { seed: 9, dynamicBatch: false, inputShape: [1, 28, 28] });
    const m = await load(fixed.bytes);
    try {
      assert.equal(m.input.batch, 'single');
      assert.deepEqual(m.input.dims, [1, 28, 28]);
      const xs = examples(3, 784, 11);
      const outs = await m.predict(xs.map((x) => Float32Array.from(x)));
      outs.forEach((o, i) => assertClose(o, mlpReference(fixed, xs[i]), `fixed-batch example ${i}`));
      const [bad] = await m.predict([new Float32Array(28)]);
      assert.ok(bad instanceof InputError);
      assert.match(bad.message, /784 values shaped \[1, 28, 28\].*got 28/);
    } finally {
      await m.close();
    }
  });

  it('batches a dynamic [N, 1, 28, 28] model from flat examples', async () => {
    const img = buildMlp([784, 8, 3], { seed: 5, inputShape: [1, 28, 28] });
    const m = await load(img.bytes);
    try {
      const xs = examples(4, 784, 13);
      const outs = await m.predict(xs);
      outs.forEach((o, i) => assertClose(o, mlpReference(img, xs[i]), `image example ${i}`));
    } finally {
      await m.close();
    }
  });

  it('converts to int64 and float64 inputs, refusing non-integers for int models', async () => {
    const { INT64, DOUBLE } = onnxProto.onnx.TensorProto.DataType;
    const ints = await load(buildDoublingModel(2, INT64));
    const doubles = await load(buildDoublingModel(2, DOUBLE));
    try {
      const outs = await ints.predict([Int32Array.of(1, -7), Float32Array.of(0.5, 1)]);
      assert.deepEqual(outs[0], [2, -14]);
      assert.ok(outs[1] instanceof InputError);
      assert.match(outs[1].message, /int64, but value 0 is 0.5/);
      assert.deepEqual(await doubles.predict([Float64Array.of(0.1, 1e300)]), [[0.2, 2e300]]);
    } finally {
      await ints.close();
      await doubles.close();
    }
  });

  it('groups examples by length for a symbolic non-batch dim, and falls back to one at a time when outputs lose the batch dim', async () => {
    const { AttributeType } = onnxProto.onnx.AttributeProto;
    const keepdims0 = [{ name: 'keepdims', type: AttributeType.INT, i: 0 }];
    const perStep = await load(encodeModel({
      name: 'per_step', node: [node('ReduceSum', ['x', 'axes'], ['s'], keepdims0)],
      initializer: [{ name: 'axes', dims: [1], dataType: onnxProto.onnx.TensorProto.DataType.INT64, int64Data: [2] }],
      input: [valueInfo('x', ['N', 'T', 2])], output: [valueInfo('s', ['N', 'T'])],
    }));
    const total = await load(encodeModel({
      name: 'total', node: [node('ReduceSum', ['x'], ['s'], keepdims0)], input: [valueInfo('x', ['N', 2])], output: [valueInfo('s', [])],
    }));
    try {
      const outs = await perStep.predict([[1, 2, 3, 4], [1, 1], [5, 5, 5, 5], [1, 2, 3]]);
      assert.deepEqual(outs.slice(0, 3), [[3, 7], [2], [10, 10]]);
      assert.match((outs[3] as InputError).message, /a positive multiple of 2 per example, got 3/);
      assert.deepEqual(await total.predict([[1, 2], [3, 4]]), [3, 7], 'a sum over the whole batch is recomputed per example');
    } finally {
      await perStep.close();
      await total.close();
    }
  });

  it('reads thread counts from the environment', () => {
    assert.deepEqual(onnxOptionsFromEnv({}), { intraOpThreads: 1, interOpThreads: 1 });
    assert.deepEqual(onnxOptionsFromEnv({ CLIPPER_ONNX_INTRA_OP_THREADS: '2', CLIPPER_ONNX_INTER_OP_THREADS: '3' }), { intraOpThreads: 2, interOpThreads: 3 });
    assert.throws(() => onnxOptionsFromEnv({ CLIPPER_ONNX_INTRA_OP_THREADS: 'many' }), /CLIPPER_ONNX_INTRA_OP_THREADS must be a non-negative integer/);
  });
});

describe('onnx runtime: checkOnnxModel', () => {
  it('accepts an .onnx file and a directory holding exactly one', async () => {
    const file = writeModelFile(buildMlp([4, 3, 2]).bytes);
    await checkOnnxModel(file);
    await checkOnnxModel(join(file, '..'));
  });

  it('refuses a corrupt file', async () => {
    const rand = seededRandom(1);
    const file = writeModelFile(Uint8Array.from({ length: 512 }, () => Math.floor(rand() * 256)), 'broken.onnx');
    await assert.rejects(checkOnnxModel(file), /broken\.onnx is not a valid ONNX model: .*(protobuf|parsing|load)/i);
  });

  it('refuses a directory without an .onnx file, or with several', async () => {
    const dir = tempDir('clipper-onnx-empty-');
    writeFileSync(join(dir, 'README.txt'), 'no model here');
    await assert.rejects(checkOnnxModel(dir), /contains no \.onnx file/);
    const two = tempDir('clipper-onnx-two-');
    writeModelFile(buildMlp([2, 2]).bytes, 'a.onnx', two);
    writeModelFile(buildMlp([2, 2]).bytes, 'b.onnx', two);
    await assert.rejects(checkOnnxModel(two), /contains 2 \.onnx files \(a\.onnx, b\.onnx\); expected exactly one/);
    await assert.rejects(checkOnnxModel(join(dir, 'missing.onnx')), /does not exist/);
  });

  it('refuses models the runtime cannot feed: several inputs, or a non-numeric input', async () => {
    const twoInputs = encodeModel({
      name: 'two_inputs', node: [node('Add', ['x', 'y'], ['z'])],
      input: [valueInfo('x', ['N', 2]), valueInfo('y', ['N', 2])], output: [valueInfo('z', ['N', 2])],
    });
    await assert.rejects(checkOnnxModel(writeModelFile(twoInputs)), /has 2 inputs \(x, y\); the onnx runtime feeds each query to a single numeric input/);
    const strings = encodeModel({
      name: 'strings', node: [node('Identity', ['s'], ['t'])],
      input: [valueInfo('s', ['N'], onnxProto.onnx.TensorProto.DataType.STRING)], output: [valueInfo('t', ['N'], onnxProto.onnx.TensorProto.DataType.STRING)],
    });
    await assert.rejects(checkOnnxModel(writeModelFile(strings)), /element type string; the onnx runtime feeds float32, float64, int32, int64/);
  });
});

describe('onnx runtime end to end', () => {
  let s: TestServer;
  before(async () => {
    s = await startTestServer();
  });
  after(() => s.close());

  it('deploys an MLP and serves single and batch predictions', async () => {
    const mlp = buildMlp([784, 256, 10], { seed: 42 });
    const dir = tempDir('clipper-onnx-e2e-');
    mkdirSync(join(dir, 'artifact'));
    const file = writeModelFile(mlp.bytes, 'mlp.onnx', join(dir, 'artifact'));
    let r = await s.admin('add_app', { name: 'mnist', input_type: 'floats', latency_slo_micros: 5_000_000 });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    r = await s.admin('add_model', { model_name: 'mlp', model_version: '1', input_type: 'floats', runtime: 'onnx', model_data_path: file });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    r = await s.admin('add_model_links', { app_name: 'mnist', model_names: ['mlp'] });
    assert.equal(r.status, 200, JSON.stringify(r.body));

    const xs = examples(4, 784, 21);
    const one = await s.predict('mnist', { input: xs[0] });
    assert.equal(one.status, 200, JSON.stringify(one.body));
    assert.equal(one.body.default, false, JSON.stringify(one.body));
    assertClose(one.body.output, mlpReference(mlp, xs[0]), 'single prediction');

    const batch = await s.predict('mnist', { input_batch: xs });
    assert.equal(batch.status, 200, JSON.stringify(batch.body));
    batch.body.batch_predictions.forEach((p: { output: unknown }, i: number) => assertClose(p.output, mlpReference(mlp, xs[i]), `batch prediction ${i}`));
  });

  it('refuses to deploy a corrupt artifact with onnxruntime\'s reason', async () => {
    const file = writeModelFile(new TextEncoder().encode('definitely not protobuf'), 'bad.onnx');
    const r = await s.admin('add_model', { model_name: 'bad', model_version: '1', input_type: 'floats', runtime: 'onnx', model_data_path: file });
    assert.notEqual(r.status, 200);
    assert.match(JSON.stringify(r.body), /not a valid ONNX model/);
  });
});
