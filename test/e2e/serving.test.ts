import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ECHO_MODEL, startTestServer, waitFor, writeJsModel, type TestServer } from '../helpers/server.ts';

describe('core serving path against a started server', () => {
  let s: TestServer;
  before(async () => {
    s = await startTestServer();
  });
  after(() => s.close());

  it('registers, deploys, links and predicts (single and batch)', async () => {
    let r = await s.admin('add_app', { name: 'echo', input_type: 'strings', default_output: 'none', latency_slo_micros: 2_000_000 });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    r = await s.admin('add_model', { model_name: 'echo-model', model_version: '1', input_type: 'strings', runtime: 'js', model_data_path: writeJsModel(ECHO_MODEL('v1')) });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal(r.body.ready, true);
    r = await s.admin('add_model_links', { app_name: 'echo', model_names: ['echo-model'] });
    assert.deepEqual(r.body.linked_models, ['echo-model']);

    const one = await s.predict('echo', { input: 'hello' });
    assert.equal(one.status, 200);
    assert.equal(one.body.output, 'v1:hello');
    assert.equal(one.body.default, false);
    assert.deepEqual(one.body.models, ['echo-model:1']);
    assert.equal(typeof one.body.query_id, 'number');

    const batch = await s.predict('echo', { input_batch: ['a', 'b', 'c'] });
    assert.equal(batch.status, 200);
    assert.deepEqual(batch.body.batch_predictions.map((p: any) => p.output), ['v1:a', 'v1:b', 'v1:c']);

    const json = await s.predict('echo', { input: { k: [1, 2] } });
    assert.equal(json.body.output, 'v1:{"k":[1,2]}', 'a JSON object input reaches a strings model as its JSON text');
  });

  it('set_model_version back and forth changes the answers', async () => {
    let r = await s.admin('add_model', { model_name: 'echo-model', model_version: '2', input_type: 'strings', runtime: 'js', model_data_path: writeJsModel(ECHO_MODEL('v2')) });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal((await s.predict('echo', { input: 'x' })).body.output, 'v2:x', 'a new version becomes current');
    r = await s.admin('set_model_version', { model_name: 'echo-model', model_version: '1' });
    assert.equal(r.status, 200);
    assert.equal(r.body.ready, true);
    const back = await s.predict('echo', { input: 'x' });
    assert.equal(back.body.output, 'v1:x');
    assert.deepEqual(back.body.models, ['echo-model:1']);
    await s.admin('set_model_version', { model_name: 'echo-model', model_version: '2' });
    assert.equal((await s.predict('echo', { input: 'x' })).body.output, 'v2:x');
    const models = await s.admin('get_all_models', { verbose: true });
    assert.deepEqual(models.body.filter((m: any) => m.is_current_version).map((m: any) => m.model_version), ['2']);
  });

  it('keeps one replica of the previous version warm, and stops the rest of it', async () => {
    const running = async () => {
      const containers = await s.admin('get_all_containers', { verbose: true });
      return containers.body.filter((c: any) => c.model_name === 'echo-model').map((c: any) => c.replica_id).sort();
    };
    await waitFor(async () => (await running()).length === 2, 5000, 'version 1 to keep a single warm replica');
    assert.deepEqual(await running(), ['echo-model:1#0', 'echo-model:2#0']);
    const status = await s.admin('get_model', { model_name: 'echo-model' });
    assert.equal(status.body.model_version, '2');
  });

  it('scales replicas up and down', async () => {
    const current = (c: any) => c.body.filter((x: any) => x.model_name === 'echo-model' && x.model_version === '2');
    let r = await s.admin('set_num_replicas', { model_name: 'echo-model', num_replicas: 2 });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal(r.body.ready, true);
    let c = await s.admin('get_all_containers', { verbose: true });
    assert.equal(current(c).filter((x: any) => x.state === 'READY').length, 2);
    r = await s.admin('set_num_replicas', { model_name: 'echo-model', num_replicas: 1 });
    assert.equal(r.status, 200);
    c = await s.admin('get_all_containers', { verbose: true });
    assert.equal(current(c).length, 1);
  });

  it('serves replica logs', async () => {
    const logs = await s.admin('get_replica_logs', { model_name: 'echo-model', tail: 5 });
    assert.equal(logs.status, 200);
    assert.equal(logs.body.model_version, '2');
    assert.equal(logs.body.replicas[0].replica_id, 'echo-model:2#0');
    assert.ok(Array.isArray(logs.body.replicas[0].lines));
  });

  it("a deleted app's route answers 404 at once, and a new app is routed at once", async () => {
    assert.equal((await s.admin('delete_app', { name: 'echo' })).status, 200);
    const gone = await s.predict('echo', { input: 'x' });
    assert.equal(gone.status, 404);
    assert.equal(gone.body.error, 'APP_NOT_FOUND');
    await s.admin('add_app', { name: 'echo2', input_type: 'strings', latency_slo_micros: 2_000_000 });
    await s.admin('add_model_links', { app_name: 'echo2', model_names: ['echo-model'] });
    assert.equal((await s.predict('echo2', { input: 'y' })).body.output, 'v2:y');
  });

  it('answers with the default output when no model is linked', async () => {
    await s.admin('add_app', { name: 'lonely', input_type: 'doubles', default_output: '-1', latency_slo_micros: 100_000 });
    const r = await s.predict('lonely', { input: [1, 2] });
    assert.equal(r.status, 200);
    assert.equal(r.body.default, true);
    assert.equal(r.body.output, -1);
    assert.match(r.body.default_explanation, /no model is linked/);
  });

  it('deleting the current version falls back to the previous one', async () => {
    assert.equal((await s.admin('delete_versioned_model', { model_name: 'echo-model', model_version: '2' })).status, 200);
    const m = await s.admin('get_model', { model_name: 'echo-model' });
    assert.equal(m.body.model_version, '1');
    assert.equal((await s.admin('get_model', { model_name: 'echo-model', model_version: '2' })).status, 404);
  });

  it('exposes Prometheus metrics', async () => {
    const text = await (await fetch(`${s.app.queryUrl}/metrics`)).text();
    assert.match(text, /clipper_app_requests_total\{app="echo2"\} 1/);
    assert.match(text, /clipper_app_default_outputs_total\{app="lonely",reason="UNAVAILABLE"\} 1/);
    assert.match(text, /clipper_app_latency_seconds_bucket/);
    assert.match(text, /clipper_inference_count_total\{model="echo-model",version="2"\}/);
  });
});
