import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ECHO_MODEL, send, startTestServer, tempDir, writeJsModel, type TestServer } from '../helpers/server.ts';

/** Every bad request gets a 4xx with a JSON error naming the problem; the server keeps serving. */
describe('bad input on both APIs', () => {
  let s: TestServer;
  const expectError = (r: { status: number; body: any }, status: number, code: string, mention?: RegExp) => {
    assert.equal(r.status, status, JSON.stringify(r.body));
    assert.equal(r.body.error, code);
    assert.equal(typeof r.body.cause, 'string');
    if (mention) assert.match(r.body.cause, mention);
  };

  before(async () => {
    s = await startTestServer({ bodyLimitBytes: 64 * 1024 });
    await s.admin('add_app', { name: 'nums', input_type: 'doubles', latency_slo_micros: 2_000_000 });
    await s.admin('add_model', { model_name: 'nums-model', model_version: '1', input_type: 'doubles', model_data_path: writeJsModel('export const predict = (xs) => xs.map((x) => String(x.length));\n') });
    await s.admin('add_model_links', { app_name: 'nums', model_names: ['nums-model'] });
  });
  after(() => s.close());

  it('query API: malformed JSON', async () => {
    expectError(await send(`${s.app.queryUrl}/nums/predict`, '{"input": [1,', true), 400, 'MALFORMED_JSON', /not valid JSON/);
    expectError(await send(`${s.app.queryUrl}/nums/predict`, '', true), 400, 'INVALID_INPUT', /JSON object/);
    expectError(await send(`${s.app.queryUrl}/nums/predict`, '[1,2]', true), 400, 'INVALID_INPUT', /JSON object/);
  });

  it('query API: wrong input types', async () => {
    expectError(await s.predict('nums', { input: 'text' }), 400, 'INVALID_INPUT', /array of numbers/);
    expectError(await s.predict('nums', { input: [1, 'x'] }), 400, 'INVALID_INPUT', /input\[1\]/);
    expectError(await s.predict('nums', { nothing: 1 }), 400, 'INVALID_INPUT', /"input"/);
    expectError(await s.predict('nums', { input_batch: 'no' }), 400, 'INVALID_INPUT', /input_batch/);
    const mixed = await s.predict('nums', { input_batch: [[1, 2], 'bad', [3]] });
    assert.equal(mixed.status, 200);
    assert.equal(mixed.body.batch_predictions[0].output, 2);
    assert.equal(mixed.body.batch_predictions[1].error, 'INVALID_INPUT');
    assert.equal(mixed.body.batch_predictions[2].output, 1);
  });

  it('query API: unknown app, names off the pattern, hostile paths, unknown version', async () => {
    expectError(await s.predict('nope', { input: [1] }), 404, 'APP_NOT_FOUND', /nope/);
    expectError(await s.predict('Bad_Name', { input: [1] }), 400, 'INVALID_NAME');
    expectError(await send(`${s.app.queryUrl}/..%2F..%2Fetc%2Fpasswd/predict`, { input: [1] }), 400, 'INVALID_NAME');
    expectError(await send(`${s.app.queryUrl}/../../etc/passwd`, { input: [1] }), 404, 'ROUTE_NOT_FOUND');
    expectError(await s.predict('nums', { input: [1], version: '9' }), 404, 'VERSION_NOT_FOUND', /9/);
  });

  it('query API: a body over the limit', async () => {
    const big = { input: new Array(20_000).fill(1.5) };
    expectError(await s.predict('nums', big), 413, 'BODY_TOO_LARGE');
  });

  it('admin API: validation', async () => {
    expectError(await send(`${s.app.adminUrl}/admin/add_app`, '{oops', true), 400, 'MALFORMED_JSON');
    expectError(await s.admin('add_app', { name: 'UPPER', input_type: 'strings' }), 400, 'INVALID_NAME', /UPPER/);
    expectError(await s.admin('add_app', { name: 'a'.repeat(64), input_type: 'strings' }), 400, 'INVALID_NAME');
    expectError(await s.admin('add_app', { name: 'ok', input_type: 'tensors' }), 400, 'INVALID_INPUT', /input_type/);
    expectError(await s.admin('add_app', { name: 'ok', input_type: 'strings', latency_slo_micros: 0 }), 400, 'INVALID_INPUT', /latency_slo_micros/);
    expectError(await s.admin('add_app', { name: 'ok', input_type: 'strings', latency_slo_micros: 'fast' }), 400, 'INVALID_INPUT', /latency_slo_micros/);
    expectError(await s.admin('add_app', { name: 'nums', input_type: 'doubles' }), 409, 'ALREADY_EXISTS', /nums/);
    expectError(await s.admin('delete_app', { name: 'ghost' }), 404, 'APP_NOT_FOUND');
    expectError(await s.admin('get_model', { model_name: 'ghost' }), 404, 'MODEL_NOT_FOUND');
    expectError(await s.admin('set_model_version', { model_name: 'nums-model', model_version: '7' }), 404, 'VERSION_NOT_FOUND');
    expectError(await s.admin('add_model', { model_name: 'x', model_version: '1', input_type: 'doubles', runtime: 'cobol', model_data_path: '/tmp' }), 400, 'INVALID_INPUT', /runtime/);
    expectError(await s.admin('set_num_replicas', { model_name: 'nums-model', num_replicas: -1 }), 400, 'INVALID_INPUT', /num_replicas/);
    expectError(await s.admin('get_replica_logs', { model_name: 'nums-model', replica_id: '../../etc/passwd' }), 404, 'REPLICA_NOT_FOUND');
    expectError(await send(`${s.app.adminUrl}/admin/no_such_endpoint`, {}), 404, 'ROUTE_NOT_FOUND');
  });

  it('admin API: duplicate registration, mismatched link, missing artifact, broken artifact leave nothing behind', async () => {
    expectError(await s.admin('add_model', { model_name: 'nums-model', model_version: '1', input_type: 'doubles', model_data_path: writeJsModel(ECHO_MODEL('x')) }), 409, 'ALREADY_EXISTS', /nums-model/);
    await s.admin('add_app', { name: 'words', input_type: 'strings' });
    expectError(await s.admin('add_model_links', { app_name: 'words', model_names: ['nums-model'] }), 400, 'TYPE_MISMATCH', /doubles/);
    expectError(await s.admin('add_model_links', { app_name: 'words', model_names: ['ghost'] }), 404, 'MODEL_NOT_FOUND');
    const missing = join(tempDir(), 'nothing-here');
    expectError(await s.admin('add_model', { model_name: 'm2', model_version: '1', input_type: 'strings', model_data_path: missing }), 400, 'ARTIFACT_INVALID', /does not exist/);
    const broken = writeJsModel('export const predict = ;\n');
    expectError(await s.admin('add_model', { model_name: 'm2', model_version: '1', input_type: 'strings', model_data_path: broken }), 400, 'ARTIFACT_INVALID', /js artifact refused/);
    const noPredict = writeJsModel('export const other = 1;\n');
    expectError(await s.admin('add_model', { model_name: 'm2', model_version: '1', input_type: 'strings', model_data_path: noPredict }), 400, 'ARTIFACT_INVALID', /predict/);
    expectError(await s.admin('get_model', { model_name: 'm2' }), 404, 'MODEL_NOT_FOUND');
    const list = await s.admin('get_all_models', {});
    assert.deepEqual(list.body, ['nums-model:1']);
  });

  it('keeps serving after all of it', async () => {
    const r = await s.predict('nums', { input: [1, 2, 3] });
    assert.equal(r.status, 200);
    assert.equal(r.body.output, 3);
  });
});
