/**
 * KServe's own request files parse as they are, and the answers built here validate against the
 * response schemas of KServe's rest_predict_v2.yaml.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { decodeInferRequest, encodeInferResponse } from '../../src/v2/binary.ts';
import { tensorFromContents } from '../../src/v2/contents.ts';
import { DATATYPES, isDatatype } from '../../src/v2/datatypes.ts';
import { errorMessage } from '../../src/errors.ts';
import {
  buildInferResponse, inferResponseToJson, modelMetadata, parseInferRequest, selectOutputs, serverMetadata, V2Error,
  wantsBinaryOutput,
} from '../../src/v2/request.ts';
import { v2ErrorBody } from '../../src/v2/errors.ts';
import { checkShape, createTensor, splitBatch, tensorFromJson, tensorsToRecords, tensorToJson } from '../../src/v2/tensor.ts';
import { fixtureJson, fixtureText, KSERVE_SKIP, loadOpenApi, YAML_SKIP } from './fixtures.ts';
import { SchemaChecker } from './json-schema.ts';
import { SAMPLES } from './samples.ts';

const IRIS = [6.8, 2.8, 4.8, 1.4, 6.0, 3.4, 4.5, 1.6];

describe("KServe's request files", { skip: KSERVE_SKIP }, () => {
  it('iris_input_v2.json: nested FP32 data, split into two rows', () => {
    const req = decodeInferRequest(Buffer.from(fixtureText('iris_input_v2.json')));
    assert.equal(req.inputs.length, 1);
    const x = req.inputs[0]!;
    assert.deepEqual([x.name, x.datatype, x.shape], ['input-0', 'FP32', [2, 4]]);
    assert.deepEqual(tensorToJson(x).data, IRIS);
    const rows = splitBatch(x);
    assert.deepEqual(rows.map((r) => tensorToJson(r).data), [IRIS.slice(0, 4), IRIS.slice(4)]);
    assert.equal(wantsBinaryOutput(req, 'output-0'), false);
  });

  it('iris_input_v2_binary.json: asks for output-0 as binary', () => {
    const req = parseInferRequest(fixtureJson('iris_input_v2_binary.json'));
    assert.deepEqual(req.outputs, [{ name: 'output-0', parameters: { binary_data: true } }]);
    assert.equal(wantsBinaryOutput(req, 'output-0'), true);
    const out = createTensor('output-0', 'INT64', [2], new BigInt64Array([1n, 2n]));
    const enc = encodeInferResponse(buildInferResponse({ modelName: 'sklearn-iris', outputs: selectOutputs(req, [out]) }), req);
    assert.equal(enc.headerLength !== undefined && enc.body.length - enc.headerLength, 16);
  });

  it('iris_input_v2_all_binary.json: asks for every output as binary', () => {
    const req = parseInferRequest(fixtureJson('iris_input_v2_all_binary.json'));
    assert.equal(req.parameters?.binary_data_output, true);
    assert.equal(wantsBinaryOutput(req, 'output-0'), true);
    assert.equal(wantsBinaryOutput(req, 'anything'), true);
    assert.deepEqual(tensorToJson(req.inputs[0]!).data, IRIS);
  });

  it('iris_input_v2_grpc.json: typed fp32_contents', () => {
    const j = fixtureJson('iris_input_v2_grpc.json') as { inputs: { name: string; datatype: string; shape: number[]; contents: { fp32_contents: number[] } }[] };
    const i = j.inputs[0]!;
    assert.ok(isDatatype(i.datatype));
    const t = tensorFromContents(i.name, i.datatype, checkShape(i.shape, i.name), i.contents);
    assert.deepEqual(tensorToJson(t).data, IRIS);
  });

  it('sklearn_mixed_v2.json: one tensor per column, content_type pd, into a record', () => {
    const req = parseInferRequest(fixtureJson('sklearn_mixed_v2.json'));
    assert.equal(req.parameters?.content_type, 'pd');
    assert.deepEqual(tensorsToRecords(req.inputs), [{
      MSZoning: 'RL', LotArea: 8450, LotShape: 'Reg', Utilities: 'AllPub', YrSold: 2008,
      Neighborhood: 'CollgCr', OverallQual: 7, YearBuilt: 2003, SaleType: 'WD', GarageArea: 548,
    }]);
  });
});

describe("answers against rest_predict_v2.yaml's schemas", { skip: YAML_SKIP }, () => {
  const load = (): SchemaChecker => new SchemaChecker(loadOpenApi());
  const S = '#/components/schemas/';

  it('inference responses, JSON and binary, for every datatype', () => {
    const schema = load();
    for (const dt of DATATYPES) {
      const out = tensorFromJson({ name: `out_${dt}`, datatype: dt, shape: [2, 3], data: SAMPLES[dt] });
      const r = buildInferResponse({ modelName: 'm', modelVersion: '1', id: 'abc', parameters: { content_type: 'np' }, outputs: [out] });
      assert.deepEqual(schema.validate(inferResponseToJson(r), `${S}inference_response`), [], dt);
      const json = encodeInferResponse(r);
      assert.deepEqual(schema.validate(JSON.parse(json.body.toString()), `${S}inference_response`), [], dt);
    }
    // a binary output carries no data: the JSON header is what the schema describes for JSON answers,
    // so check only that the remaining JSON outputs conform
    const a = tensorFromJson({ name: 'a', datatype: 'FP32', shape: [1], data: [1] });
    const b = tensorFromJson({ name: 'b', datatype: 'FP32', shape: [1], data: [2] });
    const enc = encodeInferResponse(buildInferResponse({ modelName: 'm', outputs: [a, b] }), { outputs: [{ name: 'a' }, { name: 'b', parameters: { binary_data: true } }] });
    const head = JSON.parse(enc.body.subarray(0, enc.headerLength).toString());
    assert.deepEqual(schema.validate(head.outputs[0], `${S}response_output`), []);
  });

  it('the checker catches a broken response', () => {
    const schema = load();
    assert.notDeepEqual(schema.validate({ outputs: [] }, `${S}inference_response`), []);
    assert.notDeepEqual(schema.validate({ model_name: 'm', outputs: [{ name: 'x', shape: [1], datatype: 'FP32', data: [{}] }] }, `${S}inference_response`), []);
    assert.notDeepEqual(schema.validate({ model_name: 'm', outputs: [{ name: 'x', shape: [1.5], datatype: 'FP32', data: [] }] }, `${S}inference_response`), []);
  });

  it("KServe's request files and our request encoding validate as inference_request", () => {
    const schema = load();
    for (const f of ['iris_input_v2.json', 'iris_input_v2_binary.json', 'iris_input_v2_all_binary.json', 'sklearn_mixed_v2.json']) {
      assert.deepEqual(schema.validate(fixtureJson(f), `${S}inference_request`), [], f);
    }
  });

  it('metadata and error answers', () => {
    const schema = load();
    assert.deepEqual(schema.validate(serverMetadata('clipper-ts', '0.1.0', ['binary_tensor_data']), `${S}metadata_server_response`), []);
    const meta = modelMetadata({ name: 'iris', versions: ['1', '2'], platform: 'onnxruntime_onnx', inputs: [{ name: 'x', datatype: 'FP32', shape: [-1, 4] }], outputs: [{ name: 'y', datatype: 'INT64', shape: [-1] }] });
    assert.deepEqual(schema.validate(meta, `${S}metadata_model_response`), []);
    let err: unknown;
    try {
      parseInferRequest({ inputs: [{ name: 'x', datatype: 'INT8', shape: [1], data: [300] }] });
    } catch (e) {
      err = e;
    }
    assert.ok(err instanceof V2Error, errorMessage(err));
    for (const s of ['inference_error_response', 'metadata_server_error_response', 'metadata_model_error_response']) {
      assert.deepEqual(schema.validate(v2ErrorBody(err), `${S}${s}`), [], s);
    }
  });
});
