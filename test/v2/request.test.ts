import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ServingError } from '../../src/errors.ts';
import { GRPC_CODE, grpcCode, grpcCodeOf, v2ErrorBody, v2Status } from '../../src/v2/errors.ts';
import { stringifyV2 } from '../../src/v2/json.ts';
import {
  buildInferResponse, inferResponseToJson, modelMetadata, parseInferRequest, parseJsonBody, selectOutputs,
  serverMetadata, unknownModel, V2Error, wantsBinaryOutput,
} from '../../src/v2/request.ts';
import { tensorFromJson } from '../../src/v2/tensor.ts';

function rejects(fn: () => unknown, status: number, ...fragments: string[]): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof V2Error, `expected a V2Error, got ${String(e)}`);
    assert.equal(e.status, status);
    for (const f of fragments) assert.ok(e.message.includes(f), `"${e.message}" lacks "${f}"`);
    return true;
  });
}

const input = { name: 'x', datatype: 'FP32', shape: [1, 2], data: [1, 2] };

describe('V2 inference requests', () => {
  it('validates a request into typed tensors', () => {
    const req = parseInferRequest({
      id: '42',
      parameters: { content_type: 'pd', custom: { any: 'thing' } },
      inputs: [input, { name: 'y', datatype: 'BOOL', shape: [3], data: [true, false, true] }],
      outputs: [{ name: 'out', parameters: { binary_data: true } }],
    });
    assert.equal(req.id, '42');
    assert.deepEqual(req.parameters, { content_type: 'pd', custom: { any: 'thing' } });
    assert.deepEqual(req.inputs.map((t) => [t.name, t.datatype, t.shape]), [['x', 'FP32', [1, 2]], ['y', 'BOOL', [3]]]);
    assert.deepEqual(req.outputs, [{ name: 'out', parameters: { binary_data: true } }]);
    const bare = parseInferRequest({ inputs: [] });
    assert.equal(bare.id, undefined);
    assert.equal(bare.outputs, undefined);
  });

  it('answers every malformed request with a 400 naming the problem', () => {
    rejects(() => parseJsonBody('{"inputs": ['), 400, 'malformed JSON in request body');
    rejects(() => parseJsonBody(Buffer.from('nope')), 400, 'malformed JSON');
    rejects(() => parseInferRequest([]), 400, 'inference request must be a JSON object');
    rejects(() => parseInferRequest('x'), 400, 'must be a JSON object');
    rejects(() => parseInferRequest({}), 400, 'request must have a list of inputs, got none');
    rejects(() => parseInferRequest({ inputs: {} }), 400, 'request must have a list of inputs, got {}');
    rejects(() => parseInferRequest({ id: 42, inputs: [] }), 400, 'request id must be a string, got 42');
    rejects(() => parseInferRequest({ parameters: 'p', inputs: [] }), 400, 'request: parameters must be an object');
    rejects(() => parseInferRequest({ parameters: { content_type: 3 }, inputs: [] }), 400, "request: parameter 'content_type' must be a string");
    rejects(() => parseInferRequest({ inputs: [5] }), 400, 'inputs[0] must be an object');
    rejects(() => parseInferRequest({ inputs: [input, { ...input, name: undefined }] }), 400, 'inputs[1]: name must be a non-empty string');
    rejects(() => parseInferRequest({ inputs: [{ ...input, parameters: 3 }] }), 400, "input 'x': parameters must be an object");
    rejects(() => parseInferRequest({ inputs: [input, input] }), 400, "input 'x' appears twice");
    rejects(() => parseInferRequest({ inputs: [{ ...input, data: [1, 2, 3] }] }), 400, "tensor 'x': data has 3 elements but shape [1, 2] needs 2");
    rejects(() => parseInferRequest({ inputs: [{ ...input, datatype: 'INT8', data: [1, 300] }] }), 400, "tensor 'x': element 1 (300) is out of range for INT8");
    rejects(() => parseInferRequest({ inputs: [], outputs: {} }), 400, 'request outputs must be a list');
    rejects(() => parseInferRequest({ inputs: [], outputs: [3] }), 400, 'outputs[0] must be an object');
    rejects(() => parseInferRequest({ inputs: [], outputs: [{}] }), 400, 'outputs[0]: name must be a non-empty string');
    rejects(() => parseInferRequest({ inputs: [], outputs: [{ name: 'o' }, { name: 'o' }] }), 400, "output 'o' is requested twice");
    rejects(() => parseInferRequest({ inputs: [], outputs: [{ name: 'o', parameters: [] }] }), 400, "output 'o': parameters must be an object");
  });

  it('decides per output whether it goes as binary', () => {
    const req = parseInferRequest({ inputs: [], parameters: { binary_data_output: true }, outputs: [{ name: 'a', parameters: { binary_data: false } }, { name: 'b' }] });
    assert.equal(wantsBinaryOutput(req, 'a'), false);
    assert.equal(wantsBinaryOutput(req, 'b'), true);
    assert.equal(wantsBinaryOutput(req, 'c'), true);
    const none = parseInferRequest({ inputs: [], outputs: [{ name: 'a', parameters: { binary_data: true } }] });
    assert.equal(wantsBinaryOutput(none, 'a'), true);
    assert.equal(wantsBinaryOutput(none, 'b'), false);
    assert.equal(wantsBinaryOutput({}, 'a'), false);
  });

  it('selects the requested outputs, in the order asked', () => {
    const a = tensorFromJson({ name: 'a', datatype: 'INT8', shape: [1], data: [1] });
    const b = tensorFromJson({ name: 'b', datatype: 'INT8', shape: [1], data: [2] });
    assert.deepEqual(selectOutputs({}, [a, b]).map((t) => t.name), ['a', 'b']);
    assert.deepEqual(selectOutputs({ outputs: [{ name: 'b' }, { name: 'a' }] }, [a, b]).map((t) => t.name), ['b', 'a']);
    assert.deepEqual(selectOutputs({ outputs: [{ name: 'b' }] }, [a, b]).map((t) => t.name), ['b']);
    rejects(() => selectOutputs({ outputs: [{ name: 'c' }] }, [a, b], 'iris'), 400, "unexpected inference output 'c' for model 'iris'; it has 'a', 'b'");
  });

  it('builds responses and their JSON', () => {
    const out = tensorFromJson({ name: 'p', datatype: 'FP32', shape: [2], data: [0.25, 0.75] });
    const r = buildInferResponse({ modelName: 'iris', modelVersion: '1', id: '42', parameters: { content_type: 'np' }, outputs: [out] });
    assert.equal(stringifyV2(inferResponseToJson(r)), '{"model_name":"iris","model_version":"1","id":"42","parameters":{"content_type":"np"},"outputs":[{"name":"p","datatype":"FP32","shape":[2],"data":[0.25,0.75]}]}');
    assert.deepEqual(inferResponseToJson(buildInferResponse({ modelName: 'm', outputs: [] })), { model_name: 'm', outputs: [] });
    rejects(() => buildInferResponse({ modelName: '', outputs: [] }), 500, 'needs a model name');
    rejects(() => buildInferResponse({ modelName: 'm', outputs: [out, out] }), 500, "model 'm' answered output 'p' twice");
  });

  it('builds metadata answers', () => {
    assert.deepEqual(serverMetadata('clipper-ts', '0.1.0', ['binary_tensor_data']), { name: 'clipper-ts', version: '0.1.0', extensions: ['binary_tensor_data'] });
    assert.deepEqual(modelMetadata({ name: 'iris', versions: ['1'], platform: 'onnxruntime_onnx', inputs: [{ name: 'x', datatype: 'FP32', shape: [-1, 4] }], outputs: [] }), {
      name: 'iris', versions: ['1'], platform: 'onnxruntime_onnx', inputs: [{ name: 'x', datatype: 'FP32', shape: [-1, 4] }], outputs: [],
    });
    rejects(() => modelMetadata({ name: 'm', platform: 'p', inputs: [{ name: 'x', datatype: 'F' as 'FP32', shape: [1] }] }), 500, "tensor 'x' has unknown datatype");
    rejects(() => modelMetadata({ name: 'm', platform: 'p', outputs: [{ name: 'y', datatype: 'FP32', shape: [-2] }] }), 500, "tensor 'y' has a bad shape");
  });
});

describe('V2 errors', () => {
  it('carry V2 status codes and the {"error"} body', () => {
    rejects(() => { throw unknownModel('iris'); }, 404, "unknown model 'iris'");
    rejects(() => { throw unknownModel('iris', '3'); }, 404, "unknown version '3' of model 'iris'");
    assert.equal(v2Status(new V2Error(400, 'x')), 400);
    assert.equal(v2Status(new ServingError('APP_NOT_FOUND', 'no app')), 404);
    assert.equal(v2Status(new ServingError('QUEUE_FULL', 'full')), 503);
    assert.equal(v2Status(new Error('boom')), 500);
    assert.deepEqual(v2ErrorBody(new V2Error(400, 'bad shape')), { error: 'bad shape' });
    assert.deepEqual(v2ErrorBody('plain'), { error: 'plain' });
  });

  it('map to the gRPC status codes the protocol uses', () => {
    assert.equal(grpcCode(400), GRPC_CODE.INVALID_ARGUMENT);
    assert.equal(grpcCode(404), GRPC_CODE.NOT_FOUND);
    assert.equal(grpcCode(503), GRPC_CODE.UNAVAILABLE);
    assert.equal(grpcCode(504), GRPC_CODE.DEADLINE_EXCEEDED);
    assert.equal(grpcCode(500), GRPC_CODE.INTERNAL);
    assert.equal(grpcCode(200), GRPC_CODE.OK);
    assert.equal(grpcCodeOf(new ServingError('QUEUE_FULL', 'full')), GRPC_CODE.UNAVAILABLE);
    assert.equal(grpcCodeOf(new ServingError('OVERLOADED', 'shed')), GRPC_CODE.UNAVAILABLE);
    assert.equal(grpcCodeOf(new V2Error(413, 'too big')), GRPC_CODE.RESOURCE_EXHAUSTED);
    assert.equal(grpcCodeOf(new ServingError('DEADLINE_EXCEEDED', 'late')), GRPC_CODE.DEADLINE_EXCEEDED);
    assert.equal(grpcCodeOf(new ServingError('MODEL_NOT_FOUND', 'none')), GRPC_CODE.NOT_FOUND);
    assert.equal(grpcCodeOf(new V2Error(400, 'bad')), GRPC_CODE.INVALID_ARGUMENT);
    assert.equal(grpcCodeOf(new ServingError('UNAVAILABLE', 'down')), GRPC_CODE.UNAVAILABLE);
  });
});

describe('V2 JSON text', () => {
  it('writes bigints as exact integer literals and otherwise matches JSON.stringify', () => {
    const v = { a: [1, 'x', true], b: [2n ** 64n - 1n, -5n, 3], c: undefined, d: null, e: [undefined, { f: 1n }], g: { toJSON: () => 'G' } };
    assert.equal(stringifyV2(v), '{"a":[1,"x",true],"b":[18446744073709551615,-5,3],"d":null,"e":[null,{"f":1}],"g":"G"}');
    const plain = { x: [1.5, -0, 1e21], y: 'é"\\', z: [[]] };
    assert.equal(stringifyV2(plain), JSON.stringify(plain));
    assert.equal(stringifyV2(undefined), 'null');
  });
});
