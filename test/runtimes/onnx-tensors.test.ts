/**
 * The onnx runtime's typed outputs (what travels as `tensors` over RPC) and an ONNX model's own
 * V2 metadata, read from the file without onnxruntime; end to end, V2 model metadata of an onnx
 * version and Clipper predictions served through tensor answers.
 */
import assert from 'node:assert/strict';
import { mkdirSync, truncateSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import onnxProto from 'onnx-proto';
import { loadOnnxModel, type OnnxModel } from '../../src/runtimes/onnx/model.ts';
import { readOnnxMetadata } from '../../src/runtimes/onnx/metadata.ts';
import { InputError, TypedTensor, outputToBuffer } from '../../src/runtimes/sdk.ts';
import {
  buildDoublingModel, buildMlp, buildTwoOutputModel, encodeModel, floatTensor, mlpReference, node, seededRandom, valueInfo, writeModelFile,
} from '../helpers/onnx-builder.ts';
import { startTestServer, tempDir, type TestServer } from '../helpers/server.ts';

const { INT64, DOUBLE, FLOAT } = onnxProto.onnx.TensorProto.DataType;

function examples(n: number, size: number, seed = 7): number[][] {
  const rand = seededRandom(seed);
  return Array.from({ length: n }, () => Array.from({ length: size }, () => Math.fround(rand())));
}

function assertClose(actual: ArrayLike<number>, expected: number[], what: string): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  Array.from(actual).forEach((v, i) => assert.ok(Math.abs(v - expected[i]!) <= 1e-4, `${what}[${i}]: ${v} vs ${expected[i]}`));
}

async function load(bytes: Uint8Array): Promise<OnnxModel> {
  return loadOnnxModel(writeModelFile(bytes), { intraOpThreads: 1, interOpThreads: 1 });
}

describe('onnx runtime: typed outputs', () => {
  it('returns each example\'s output row as a float32 tensor without the batch dim', async () => {
    const mlp = buildMlp([16, 8, 4], { seed: 3 });
    const m = await load(mlp.bytes);
    try {
      const xs = examples(3, 16);
      const outs = await m.predictTensors([...xs.map((x) => Float32Array.from(x)), new Float32Array(5)]);
      for (const [i, x] of xs.entries()) {
        const t = outs[i];
        assert.ok(t instanceof TypedTensor, `output ${i} is a tensor`);
        assert.deepEqual([t.datatype, t.shape], ['FP32', [4]]);
        assertClose(t.data as Float32Array, mlpReference(mlp, x), `example ${i}`);
        assert.equal(outputToBuffer(t).toString(), JSON.stringify((await m.predict([x]))[0]), 'its JSON text is what predict returns');
      }
      assert.ok(outs[3] instanceof InputError);
      const [single] = await m.predictTensors([xs[0]]);
      assert.deepEqual((single as TypedTensor).shape, [4], 'a batch of one');
    } finally {
      await m.close();
    }
  });

  it('keeps the element type (int64, float64), gives rank-1 outputs shape [], and multi-output models an object of tensors', async () => {
    const ints = await load(buildDoublingModel(2, INT64));
    const doubles = await load(buildDoublingModel(3, DOUBLE));
    const two = await load(buildTwoOutputModel(3));
    try {
      const [i64] = await ints.predictTensors([[1, -7]]) as TypedTensor[];
      assert.deepEqual([i64!.datatype, i64!.shape, [...i64!.data as BigInt64Array]], ['INT64', [2], [2n, -14n]]);
      const [f64] = await doubles.predictTensors([[0.1, 1e300, -2]]) as TypedTensor[];
      assert.deepEqual([f64!.datatype, [...f64!.data as Float64Array]], ['FP64', [0.2, 2e300, -4]]);
      const outs = await two.predictTensors([[1, 2, 3], [4, 5, 6]]);
      const first = outs[0] as { scaled: TypedTensor; total: TypedTensor };
      assert.deepEqual([first.scaled.shape, first.total.shape, first.total.datatype], [[3], [], 'FP32']);
      assert.equal(first.total.toJSON(), 6, 'a shape [] tensor is a scalar in JSON');
      assert.deepEqual(outs.map((o) => JSON.parse(outputToBuffer(o).toString())), [{ scaled: [3, 5, 7], total: 6 }, { scaled: [9, 11, 13], total: 15 }]);
    } finally {
      await ints.close();
      await doubles.close();
      await two.close();
    }
  });

  it('runs a fixed-batch model one example at a time and still returns rows', async () => {
    const fixed = buildMlp([784, 8, 3], { seed: 9, dynamicBatch: false, inputShape: [1, 28, 28] });
    const m = await load(fixed.bytes);
    try {
      const xs = examples(2, 784, 11);
      const outs = await m.predictTensors(xs) as TypedTensor[];
      outs.forEach((t, i) => {
        assert.deepEqual(t.shape, [3]);
        assertClose(t.data as Float32Array, mlpReference(fixed, xs[i]!), `fixed-batch example ${i}`);
      });
    } finally {
      await m.close();
    }
  });
});

describe('onnx metadata (read from the file)', () => {
  it('reads a dynamic-batch model: the symbolic batch dim is -1', () => {
    const file = writeModelFile(buildMlp([784, 32, 10]).bytes);
    assert.deepEqual(readOnnxMetadata(file), {
      inputs: [{ name: 'input', datatype: 'FP32', shape: [-1, 784] }],
      outputs: [{ name: 'logits', datatype: 'FP32', shape: [-1, 10] }],
    });
    assert.deepEqual(readOnnxMetadata(join(file, '..')).inputs[0]!.shape, [-1, 784], 'a directory holding one .onnx file');
  });

  it('reads fixed dims, several outputs and element types', () => {
    const fixed = writeModelFile(buildMlp([784, 4, 2], { dynamicBatch: false, inputShape: [1, 28, 28] }).bytes);
    assert.deepEqual(readOnnxMetadata(fixed).inputs, [{ name: 'input', datatype: 'FP32', shape: [1, 1, 28, 28] }]);
    assert.deepEqual(readOnnxMetadata(writeModelFile(buildTwoOutputModel(3))).outputs, [
      { name: 'scaled', datatype: 'FP32', shape: [-1, 3] }, { name: 'total', datatype: 'FP32', shape: [-1] },
    ]);
    assert.deepEqual(readOnnxMetadata(writeModelFile(buildDoublingModel(2, INT64))).inputs, [{ name: 'x', datatype: 'INT64', shape: [-1, 2] }]);
    assert.deepEqual(readOnnxMetadata(writeModelFile(buildDoublingModel(2, DOUBLE))).outputs, [{ name: 'y', datatype: 'FP64', shape: [-1, 2] }]);
  });

  it('leaves out initializers listed as inputs and non-tensor outputs; unknown dims and ranks are -1', () => {
    const big = new Float32Array(1 << 20).fill(0.5); // 4 MiB of weights, skipped unread
    const bytes = encodeModel({
      name: 'old_style',
      node: [node('Add', ['x', 'w'], ['y']), node('SequenceConstruct', ['y'], ['seq'])],
      initializer: [floatTensor('w', [1 << 20], big)],
      input: [
        { name: 'x', type: { tensorType: { elemType: FLOAT, shape: { dim: [{ dimParam: 'N' }, {}] } } } },
        valueInfo('w', [1 << 20]),
      ],
      output: [
        { name: 'y', type: { tensorType: { elemType: FLOAT } } },
        { name: 'seq', type: { sequenceType: { elemType: { tensorType: { elemType: FLOAT } } } } },
      ],
    });
    assert.deepEqual(readOnnxMetadata(writeModelFile(bytes)), {
      inputs: [{ name: 'x', datatype: 'FP32', shape: [-1, -1] }],
      outputs: [{ name: 'y', datatype: 'FP32', shape: [-1] }],
    });
  });

  it('refuses a file that is not an ONNX model, or is cut short', () => {
    const rand = seededRandom(2);
    const junk = writeModelFile(Uint8Array.from({ length: 512 }, () => Math.floor(rand() * 256)), 'junk.onnx');
    assert.throws(() => readOnnxMetadata(junk), /junk\.onnx is not a readable ONNX model/);
    const cut = writeModelFile(buildMlp([64, 64, 2]).bytes, 'cut.onnx');
    truncateSync(cut, Math.floor(statSync(cut).size / 2));
    assert.throws(() => readOnnxMetadata(cut), /cut\.onnx is not a readable ONNX model: .*(runs past|ends at)/);
    assert.throws(() => readOnnxMetadata(join(tempDir(), 'missing.onnx')), /does not exist/);
  });
});

describe('onnx end to end: V2 metadata and tensor answers', () => {
  let s: TestServer;
  before(async () => {
    s = await startTestServer();
  });
  after(() => s.close());

  it('a model\'s V2 metadata is the ONNX model\'s own tensors; the application keeps its own', async () => {
    const mlp = buildMlp([12, 6, 3], { seed: 4 });
    const dir = tempDir('clipper-onnx-meta-');
    mkdirSync(join(dir, 'artifact'));
    const file = writeModelFile(mlp.bytes, 'mlp.onnx', join(dir, 'artifact'));
    let r = await s.admin('add_app', { name: 'tiny', input_type: 'floats', latency_slo_micros: 5_000_000 });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    r = await s.admin('add_model', { model_name: 'tinymlp', model_version: '1', input_type: 'floats', runtime: 'onnx', model_data_path: file });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    r = await s.admin('add_model_links', { app_name: 'tiny', model_names: ['tinymlp'] });
    assert.equal(r.status, 200, JSON.stringify(r.body));

    for (const path of ['/v2/models/tinymlp', '/v2/models/tinymlp/versions/1']) {
      const res = await fetch(`${s.app.queryUrl}${path}`);
      assert.equal(res.status, 200, path);
      assert.deepEqual(await res.json(), {
        name: 'tinymlp', versions: ['1'], platform: 'clipper-onnx',
        inputs: [{ name: 'input', datatype: 'FP32', shape: [-1, 12] }],
        outputs: [{ name: 'logits', datatype: 'FP32', shape: [-1, 3] }],
      }, path);
    }
    const app = await (await fetch(`${s.app.queryUrl}/v2/models/tiny`)).json() as { platform: string; inputs: unknown[] };
    assert.equal(app.platform, 'clipper-application');

    const xs = examples(3, 12, 8);
    const batch = await s.predict('tiny', { input_batch: xs });
    assert.equal(batch.status, 200, JSON.stringify(batch.body));
    batch.body.batch_predictions.forEach((p: { output: number[]; default: boolean }, i: number) => {
      assert.equal(p.default, false);
      assertClose(p.output, mlpReference(mlp, xs[i]!), `prediction ${i}`);
    });
    const replica = s.app.rpc.readyReplicas().find((x) => x.modelName === 'tinymlp');
    assert.ok(replica?.extensions.has('tensors'), 'the onnx replica negotiated tensors');
  });
});
