import assert from 'node:assert/strict';
import { it } from 'node:test';
import { ECHO_MODEL, startTestServer, tempDir, waitFor, writeJsModel } from '../helpers/server.ts';

it('a restart on the same data directory brings back apps, models, versions, links, current versions and replicas', async () => {
  const dataDir = tempDir();
  const first = await startTestServer({ dataDir });
  try {
    await first.admin('add_app', { name: 'keep', input_type: 'strings', default_output: 'd', latency_slo_micros: 3_000_000 });
    await first.admin('add_model', { model_name: 'm', model_version: '1', input_type: 'strings', model_data_path: writeJsModel(ECHO_MODEL('one')) });
    await first.admin('add_model', { model_name: 'm', model_version: '2', input_type: 'strings', model_data_path: writeJsModel(ECHO_MODEL('two')), replicas: 2 });
    await first.admin('set_model_version', { model_name: 'm', model_version: '1' });
    await first.admin('add_model_links', { app_name: 'keep', model_names: ['m'] });
    assert.equal((await first.predict('keep', { input: 'a' })).body.output, 'one:a');
  } finally {
    await first.close();
  }

  const second = await startTestServer({ dataDir });
  try {
    const app = await second.admin('get_application', { name: 'keep' });
    assert.equal(app.status, 200);
    assert.deepEqual(app.body, { name: 'keep', input_type: 'strings', default_output: 'd', latency_slo_micros: 3_000_000, overload_default: false, linked_models: ['m'], policy: 'single', protected: false });
    const models = await second.admin('get_all_models', { verbose: true });
    assert.deepEqual(models.body.map((m: any) => [m.model_version, m.is_current_version, m.replicas]), [['1', true, 1], ['2', false, 2]]);
    await waitFor(async () => (await second.predict('keep', { input: 'b' })).body.output === 'one:b', 15_000, 'replicas of m:1 to start again');
    // The current version at its count, and the superseded one warm with a single replica.
    await second.app.manager.waitReady('m', '2', 1, 15_000);
    const containers = await second.admin('get_all_containers', { verbose: true });
    assert.deepEqual(containers.body.map((c: any) => c.replica_id).sort(), ['m:1#0', 'm:2#0']);
  } finally {
    await second.close();
  }
});
