/**
 * KServe V2 REST on the query port, against a started server with small JS models: health and
 * metadata, inference with JSON (flat, nested), batches, BYTES, records (content_type pd), the
 * binary extension both ways, KServe's request files as they are, answers checked against
 * rest_predict_v2.yaml, and every error path's status and `{"error": "..."}` body.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { decodeInferResponse, encodeInferRequest } from '../../src/v2/binary.ts';
import { createTensor, tensorToJson } from '../../src/v2/tensor.ts';
import { bearer, deployJsApp, ECHO_MODEL, startTestServer, SUM_MODEL, writeJsModel, type TestServer } from '../helpers/server.ts';
import { fixtureText, KSERVE_SKIP, loadOpenApi, YAML_SKIP } from '../v2/fixtures.ts';
import { SchemaChecker } from '../v2/json-schema.ts';

const PAIR_MODEL = 'export function predict(inputs) { return inputs.map((x) => [x.length, Array.from(x).reduce((a, b) => a + b, 0)]); }\n';
const S = '#/components/schemas/';
const LIMIT = 256 * 1024;
const KEY = 'v2-key-7f3a9c1e5b';

interface Answer { status: number; body: any; headers: Headers; raw: Buffer }

describe('V2 REST on the query port', () => {
  let s: TestServer;
  let url: string;
  let schema: SchemaChecker | undefined;

  const get = async (path: string, headers: Record<string, string> = {}): Promise<Answer> => {
    const res = await fetch(url + path, { headers });
    return answer(res);
  };
  const post = async (path: string, body: string | Buffer, headers: Record<string, string> = {}): Promise<Answer> => {
    const res = await fetch(url + path, { method: 'POST', headers, body: typeof body === 'string' ? body : new Uint8Array(body) });
    return answer(res);
  };
  const infer = (model: string, body: unknown, headers: Record<string, string> = { 'content-type': 'application/json' }) =>
    post(`/v2/models/${model}/infer`, JSON.stringify(body), headers);
  async function answer(res: Response): Promise<Answer> {
    const raw = Buffer.from(await res.arrayBuffer());
    let body: unknown = raw.toString('utf8');
    try {
      body = JSON.parse(raw.toString('utf8'));
    } catch {
      // binary answers: decoded by the test
    }
    return { status: res.status, body, headers: res.headers, raw };
  }
  const valid = (value: unknown, name: string) => {
    if (schema) assert.deepEqual(schema.validate(value, `${S}${name}`), [], `${name}: ${JSON.stringify(value).slice(0, 300)}`);
  };
  const expectError = (r: Answer, status: number, pattern: RegExp) => {
    assert.equal(r.status, status, JSON.stringify(r.body));
    assert.equal(typeof r.body, 'object', `a JSON body, got ${String(r.body).slice(0, 200)}`);
    assert.deepEqual(Object.keys(r.body), ['error']);
    assert.match(r.body.error, pattern);
    assert.match(r.headers.get('content-type') ?? '', /application\/json/);
    valid(r.body, 'inference_error_response');
  };

  before(async () => {
    if (!YAML_SKIP) schema = new SchemaChecker(loadOpenApi());
    s = await startTestServer({ bodyLimitBytes: LIMIT });
    url = s.app.queryUrl;
    const ok = (r: { status: number; body: unknown }) => assert.equal(r.status, 200, JSON.stringify(r.body));
    await deployJsApp(s, { app: 'echo', inputType: 'strings', source: ECHO_MODEL('v1'), defaultOutput: 'none', sloMicros: 2_000_000 });
    await deployJsApp(s, { app: 'sum', inputType: 'doubles', source: SUM_MODEL, defaultOutput: '-1', sloMicros: 2_000_000 });
    await deployJsApp(s, { app: 'pair', inputType: 'ints', source: PAIR_MODEL, defaultOutput: '[]', sloMicros: 2_000_000 });
    // No linked model: every input gets the default output.
    ok(await s.admin('add_app', { name: 'lonely', input_type: 'strings', default_output: 'fallback', latency_slo_micros: 100_000 }));
    ok(await s.admin('add_app', { name: 'locked', input_type: 'strings', default_output: 'none', latency_slo_micros: 2_000_000 }));
    ok(await s.admin('add_model_links', { app_name: 'locked', model_names: ['echo-model'] }));
    ok(await s.admin('set_app_keys', { app_name: 'locked', keys: [KEY] }));
    // A model linked only to the keyed application, and one that raises.
    ok(await s.admin('add_model', { model_name: 'vault-model', model_version: '1', input_type: 'strings', model_data_path: writeJsModel(ECHO_MODEL('vault')) }));
    ok(await s.admin('add_model_links', { app_name: 'locked', model_names: ['vault-model'] }));
    ok(await s.admin('add_model', { model_name: 'fragile', model_version: '1', input_type: 'strings', model_data_path: writeJsModel('export function predict() { throw new Error("fragile refuses"); }\n') }));
  });
  after(() => s?.close());

  it('server metadata and health', async () => {
    const meta = await get('/v2');
    assert.equal(meta.status, 200);
    assert.equal(meta.body.name, 'clipper-ts');
    assert.equal(typeof meta.body.version, 'string');
    assert.ok(meta.body.extensions.includes('binary_tensor_data'));
    valid(meta.body, 'metadata_server_response');
    assert.deepEqual((await get('/v2/health/live')).status, 200);
    const ready = await get('/v2/health/ready');
    assert.equal(ready.status, 200);
    assert.equal(ready.body.ready, true);
  });

  it('model metadata and readiness, for applications and models', async () => {
    const app = await get('/v2/models/sum');
    assert.equal(app.status, 200, JSON.stringify(app.body));
    assert.equal(app.body.name, 'sum');
    assert.deepEqual(app.body.versions, ['1']);
    assert.deepEqual(app.body.inputs, [{ name: 'input', datatype: 'FP64', shape: [-1, -1] }]);
    valid(app.body, 'metadata_model_response');
    const pinned = await get('/v2/models/sum/versions/1');
    assert.equal(pinned.status, 200);
    const model = await get('/v2/models/echo-model');
    assert.equal(model.status, 200);
    assert.equal(model.body.platform, 'clipper-js');
    assert.deepEqual(model.body.inputs, [{ name: 'input', datatype: 'BYTES', shape: [-1] }]);
    valid(model.body, 'metadata_model_response');

    const r = await get('/v2/models/echo/ready');
    assert.equal(r.status, 200);
    assert.deepEqual(r.body, { name: 'echo', ready: true });
    assert.equal((await get('/v2/models/echo/versions/1/ready')).status, 200);
    assert.equal((await get('/v2/models/echo-model/ready')).status, 200);
    expectError(await get('/v2/models/lonely/ready'), 503, /not ready/);
    expectError(await get('/v2/models/nope'), 404, /unknown model 'nope'/);
    expectError(await get('/v2/models/nope/ready'), 404, /unknown model/);
    expectError(await get('/v2/models/sum/versions/7'), 404, /unknown version '7'/);
    expectError(await get('/v2/models/sum/versions/7/ready'), 404, /unknown version/);
    expectError(await get('/v2/nothing/here'), 404, /no V2 route/);
  });

  it('infers with JSON data, flat and nested, and echoes the id', async () => {
    const flat = await infer('sum', { id: 'q1', inputs: [{ name: 'x', datatype: 'FP64', shape: [2, 3], data: [1, 2, 3, 4, 5, 6] }] });
    assert.equal(flat.status, 200, JSON.stringify(flat.body));
    assert.deepEqual(flat.body, { model_name: 'sum', model_version: '1', id: 'q1', outputs: [{ name: 'output', datatype: 'FP64', shape: [2], data: [6, 15] }] });
    valid(flat.body, 'inference_response');
    const nested = await infer('sum', { inputs: [{ name: 'x', datatype: 'FP64', shape: [2, 3], data: [[1, 2, 3], [4, 5, 6]] }] });
    assert.deepEqual(nested.body.outputs[0].data, [6, 15]);
    // 1-D: one input of k values.
    const one = await infer('sum', { inputs: [{ name: 'x', datatype: 'INT32', shape: [4], data: [1, 2, 3, 4] }] });
    assert.equal(one.status, 200, JSON.stringify(one.body));
    assert.deepEqual(one.body.outputs[0], { name: 'output', datatype: 'FP64', shape: [1], data: [10] });
  });

  it('splits a [3, 4] FP64 batch into 3 inputs; numeric array outputs come back as [n, k]', async () => {
    const r = await infer('sum', { inputs: [{ name: 'x', datatype: 'FP64', shape: [3, 4], data: [1, 1, 1, 1, 2, 2, 2, 2, 0.5, 0.5, 0.5, 0.5] }] });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.deepEqual(r.body.outputs[0], { name: 'output', datatype: 'FP64', shape: [3], data: [4, 8, 2] });
    const p = await infer('pair', { inputs: [{ name: 'x', datatype: 'INT64', shape: [2, 3], data: [1, 2, 3, 10, 20, 30] }] });
    assert.equal(p.status, 200, JSON.stringify(p.body));
    assert.deepEqual(p.body.outputs[0], { name: 'output', datatype: 'FP64', shape: [2, 2], data: [3, 6, 3, 60] });
    valid(p.body, 'inference_response');
  });

  it('BYTES inputs: one input per element, [n] or [n, 1]; the output name follows the request', async () => {
    const r = await infer('echo', { inputs: [{ name: 'text', datatype: 'BYTES', shape: [3], data: ['a', 'b', 'c'] }], outputs: [{ name: 'reply' }] });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.deepEqual(r.body.outputs, [{ name: 'reply', datatype: 'BYTES', shape: [3], data: ['v1:a', 'v1:b', 'v1:c'] }]);
    valid(r.body, 'inference_response');
    const col = await infer('echo', { inputs: [{ name: 'text', datatype: 'BYTES', shape: [2, 1], data: [['x'], ['y']] }] });
    assert.deepEqual(col.body.outputs[0].data, ['v1:x', 'v1:y']);
    const pinned = await infer('echo/versions/1', { inputs: [{ name: 'text', datatype: 'BYTES', shape: [1], data: ['z'] }] });
    assert.equal(pinned.status, 200, JSON.stringify(pinned.body));
    assert.equal(pinned.body.model_version, '1');
  });

  it('several named tensors (content_type pd) become one JSON record per row', async () => {
    const r = await infer('echo', {
      parameters: { content_type: 'pd' },
      inputs: [
        { name: 'kind', datatype: 'BYTES', shape: [2], data: ['a', 'b'] },
        { name: 'n', datatype: 'INT32', shape: [2, 1], data: [1, 2] },
      ],
    });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.deepEqual(r.body.outputs[0].data, ['v1:{"kind":"a","n":1}', 'v1:{"kind":"b","n":2}']);
    // One numeric tensor to a strings application: each row as its JSON array text.
    const rows = await infer('echo', { inputs: [{ name: 'v', datatype: 'FP16', shape: [2, 2], data: [1, 2.5, 3, 4] }] });
    assert.equal(rows.status, 200, JSON.stringify(rows.body));
    assert.deepEqual(rows.body.outputs[0].data, ['v1:[1,2.5]', 'v1:[3,4]']);
  });

  it('marks default answers in the response parameters', async () => {
    const r = await infer('lonely', { inputs: [{ name: 't', datatype: 'BYTES', shape: [2], data: ['a', 'b'] }] });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.deepEqual(r.body.parameters.default, [0, 1]);
    assert.match(r.body.parameters.default_explanation, /no model is linked/);
    assert.deepEqual(r.body.outputs[0].data, ['fallback', 'fallback']);
    valid(r.body, 'inference_response');
  });

  it('binary tensor data in and out', async () => {
    const x = createTensor('x', 'FP32', [2, 3], new Float32Array([1, 2, 3, 4, 5, 6]));
    const enc = encodeInferRequest({ id: 'bin', inputs: [x], parameters: { binary_data_output: true } }, true);
    assert.ok(enc.headerLength !== undefined);
    for (const contentType of ['application/octet-stream', undefined]) {
      const headers: Record<string, string> = { 'inference-header-content-length': String(enc.headerLength) };
      if (contentType) headers['content-type'] = contentType;
      const r = await post('/v2/models/sum/infer', enc.body, headers);
      assert.equal(r.status, 200, r.raw.toString().slice(0, 300));
      const hl = r.headers.get('inference-header-content-length');
      assert.ok(hl, 'the answer carries its JSON header length');
      assert.equal(r.headers.get('content-type'), 'application/octet-stream');
      const head = JSON.parse(r.raw.subarray(0, Number(hl)).toString());
      assert.equal(head.outputs[0].parameters.binary_data_size, 16);
      const decoded = decodeInferResponse(r.raw, hl!);
      assert.equal(decoded.id, 'bin');
      const out = tensorToJson(decoded.outputs[0]!);
      assert.deepEqual([out.name, out.datatype, out.shape, out.data], ['output', 'FP64', [2], [6, 15]]);
    }
    // Binary in, JSON out; and JSON in with one output asked for as binary.
    const jsonOut = encodeInferRequest({ inputs: [x] }, true);
    const r1 = await post('/v2/models/sum/infer', jsonOut.body, { 'content-type': 'application/json', 'inference-header-content-length': String(jsonOut.headerLength) });
    assert.equal(r1.status, 200, JSON.stringify(r1.body));
    assert.deepEqual(r1.body.outputs[0].data, [6, 15]);
    const r2 = await infer('echo', { inputs: [{ name: 't', datatype: 'BYTES', shape: [1], data: ['hé'] }], outputs: [{ name: 'o', parameters: { binary_data: true } }] });
    assert.equal(r2.status, 200);
    const d2 = decodeInferResponse(r2.raw, r2.headers.get('inference-header-content-length')!);
    assert.deepEqual(tensorToJson(d2.outputs[0]!).data, ['v1:hé']);
  });

  it("KServe's request files, sent as they are", { skip: KSERVE_SKIP }, async () => {
    const iris = await post('/v2/models/sum/infer', fixtureText('iris_input_v2.json'), { 'content-type': 'application/json' });
    assert.equal(iris.status, 200, JSON.stringify(iris.body));
    assert.equal(iris.body.outputs[0].datatype, 'FP64');
    assert.deepEqual(iris.body.outputs[0].shape, [2]);
    const sums = iris.body.outputs[0].data as number[];
    assert.ok(Math.abs(sums[0]! - 15.8) < 1e-5 && Math.abs(sums[1]! - 15.5) < 1e-5, JSON.stringify(sums));
    valid(iris.body, 'inference_response');
    const mixed = await post('/v2/models/echo/infer', fixtureText('sklearn_mixed_v2.json'), { 'content-type': 'application/json' });
    assert.equal(mixed.status, 200, JSON.stringify(mixed.body));
    const record = JSON.parse((mixed.body.outputs[0].data[0] as string).slice('v1:'.length));
    assert.deepEqual(record, {
      MSZoning: 'RL', LotArea: 8450, LotShape: 'Reg', Utilities: 'AllPub', YrSold: 2008,
      Neighborhood: 'CollgCr', OverallQual: 7, YearBuilt: 2003, SaleType: 'WD', GarageArea: 548,
    });
    valid(mixed.body, 'inference_response');
  });

  it('every error path answers {"error"} with its status', async () => {
    const t = (data: unknown, datatype = 'FP64', shape = [1, 2]) => ({ inputs: [{ name: 'x', datatype, shape, data }] });
    expectError(await infer('nope', t([1, 2])), 404, /unknown model 'nope'/);
    expectError(await infer('sum/versions/9', t([1, 2])), 404, /unknown version '9'/);
    expectError(await infer('sum', t(['a', 'b'], 'BYTES', [2])), 400, /tensor 'x': datatype BYTES does not fit application 'sum'/);
    expectError(await infer('pair', t([1.5, 2], 'FP32', [1, 2])), 400, /tensor 'x': datatype FP32/);
    expectError(await infer('sum', t([true, false], 'BOOL', [1, 2])), 400, /datatype BOOL/);
    expectError(await infer('sum', t([1, 2, 3], 'FP64', [2, 2])), 400, /tensor 'x'.*3 elements|shape/);
    expectError(await infer('echo', t(['a', 'b', 'c', 'd'], 'BYTES', [2, 2])), 400, /tensor 'x': a BYTES input must have shape \[n\] or \[n, 1\]/);
    expectError(await infer('sum', t([], 'FP64', [0, 2])), 400, /holds no inputs/);
    expectError(await infer('sum', t([], 'FP64', [1e12, 0])), 400, /at most 10000/);
    expectError(await infer('sum', { inputs: [{ name: 'a', datatype: 'FP64', shape: [1], data: [1] }, { name: 'b', datatype: 'FP64', shape: [1], data: [1] }] }), 400, /takes one input tensor/);
    expectError(await infer('sum', { inputs: [] }), 400, /no inputs/);
    expectError(await infer('sum', { outputs: [{ name: 'a' }, { name: 'b' }], ...t([1, 2]) }), 400, /one output/);
    expectError(await infer('pair', t([1, 2 ** 40], 'INT64', [1, 2])), 400, /32-bit/);
    expectError(await post('/v2/models/sum/infer', '{"inputs": [', { 'content-type': 'application/json' }), 400, /malformed JSON/);
    expectError(await post('/v2/models/sum/infer', '', { 'content-type': 'application/json' }), 400, /no body/);
    expectError(await post('/v2/models/sum/infer', '[' .repeat(5000), { 'content-type': 'application/json' }), 400, /malformed JSON|nests/);
    const deep = `{"inputs":[{"name":"x","datatype":"FP64","shape":[1],"data":${'['.repeat(3000)}1${']'.repeat(3000)}}]}`;
    expectError(await post('/v2/models/sum/infer', deep, { 'content-type': 'application/json' }), 400, /nests/);

    // Binary framing.
    const x = createTensor('x', 'FP64', [1, 2], new Float64Array([1, 2]));
    const enc = encodeInferRequest({ inputs: [x] }, true);
    const hl = enc.headerLength!;
    const bin = (body: Buffer, header: string) => post('/v2/models/sum/infer', body, { 'content-type': 'application/octet-stream', 'inference-header-content-length': header });
    expectError(await bin(enc.body, String(enc.body.length + 1)), 400, /Inference-Header-Content-Length is/);
    expectError(await bin(enc.body, 'abc'), 400, /non-negative integer/);
    expectError(await bin(enc.body.subarray(0, enc.body.length - 3), String(hl)), 400, /binary_data_size|runs past/);
    expectError(await bin(Buffer.concat([enc.body, Buffer.alloc(4)]), String(hl)), 400, /add up to/);
    expectError(await post('/v2/models/sum/infer', enc.body.subarray(0, hl), { 'content-type': 'application/json' }), 400, /no binary data/);

    // Oversized.
    const big = JSON.stringify(t(new Array(LIMIT / 2).fill(1), 'FP64', [1, LIMIT / 2]));
    expectError(await post('/v2/models/sum/infer', big, { 'content-type': 'application/json' }), 413, /larger than/);
    // Overloaded/not ready maps to 503 (see readiness); an unknown method on a V2 path is a 404.
    expectError(await post('/v2/health/ready', '{}', { 'content-type': 'application/json' }), 404, /no V2 route/);
  });

  it('infers on a model directly: its current or pinned version, and a failure is an error (no default output)', async () => {
    const body = (x: string) => ({ inputs: [{ name: 't', datatype: 'BYTES', shape: [1], data: [x] }] });
    const direct = await infer('echo-model', body('a'));
    assert.equal(direct.status, 200, JSON.stringify(direct.body));
    assert.equal(direct.body.model_name, 'echo-model');
    assert.equal(direct.body.model_version, '1');
    assert.deepEqual(direct.body.outputs[0].data, ['v1:a']);
    valid(direct.body, 'inference_response');
    assert.equal((await infer('echo-model/versions/1', body('b'))).body.outputs[0].data[0], 'v1:b');
    expectError(await infer('echo-model/versions/7', body('c')), 404, /unknown version '7'/);
    expectError(await infer('fragile', body('d')), 502, /fragile refuses/);
  });

  it('a model linked only to applications with keys needs one of their keys', async () => {
    const body = JSON.stringify({ inputs: [{ name: 't', datatype: 'BYTES', shape: [1], data: ['v'] }] });
    const json = { 'content-type': 'application/json' };
    expectError(await post('/v2/models/vault-model/infer', body, json), 401, /model vault-model is linked to application locked, which needs a key/);
    expectError(await post('/v2/models/vault-model/infer', body, { ...json, ...bearer('wrong-key-0000000') }), 401, /not valid for any of them/);
    const ok = await post('/v2/models/vault-model/infer', body, { ...json, ...bearer(KEY) });
    assert.equal(ok.status, 200, JSON.stringify(ok.body));
    assert.deepEqual(ok.body.outputs[0].data, ['vault:v']);
    // echo-model is also linked to the open application echo: open directly too.
    assert.equal((await post('/v2/models/echo-model/infer', body, json)).status, 200);
  });

  it('application keys apply to /v2/models/{app}/...', async () => {
    const body = JSON.stringify({ inputs: [{ name: 't', datatype: 'BYTES', shape: [1], data: ['k'] }] });
    const json = { 'content-type': 'application/json' };
    const missing = await post('/v2/models/locked/infer', body, json);
    expectError(missing, 401, /needs a key/);
    assert.equal(missing.headers.get('www-authenticate'), 'Bearer');
    expectError(await post('/v2/models/locked/infer', body, { ...json, ...bearer('wrong-key-0000000') }), 401, /not valid/);
    expectError(await post('/v2/models/locked/versions/1/infer', body, { ...json, 'x-api-key': 'wrong-key-0000000' }), 401, /not valid/);
    expectError(await get('/v2/models/locked'), 401, /needs a key/);
    expectError(await get('/v2/models/locked/ready'), 401, /needs a key/);
    const ok = await post('/v2/models/locked/infer', body, { ...json, ...bearer(KEY) });
    assert.equal(ok.status, 200, JSON.stringify(ok.body));
    assert.deepEqual(ok.body.outputs[0].data, ['v1:k']);
    assert.equal((await post('/v2/models/locked/infer', body, { ...json, 'x-api-key': KEY })).status, 200);
    assert.equal((await get('/v2/models/locked', { 'x-api-key': KEY })).status, 200);
    // Other applications stay open, and the Clipper API's own guard still works.
    assert.equal((await post('/v2/models/echo/infer', body, json)).status, 200);
    assert.equal((await s.predict('locked', { input: 'k' })).status, 401);
  });
});
