import assert from 'node:assert/strict';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { it } from 'node:test';
import { startTestServer } from '../helpers/server.ts';

const CONTAINER = join(dirname(fileURLToPath(import.meta.url)), '../fixtures/plain-v3-container.mjs');

it('serves a plain RPC v3 container (runtime command, no extensions)', async () => {
  const s = await startTestServer({ allowCommandRuntime: true });
  try {
    await s.admin('add_app', { name: 'shout', input_type: 'strings', latency_slo_micros: 3_000_000 });
    const dep = await s.admin('add_model', {
      model_name: 'upper', model_version: 'v1.0', input_type: 'strings', runtime: 'command',
      container_name: `${JSON.stringify(process.execPath)} ${JSON.stringify(CONTAINER)}`,
    });
    assert.equal(dep.status, 200, JSON.stringify(dep.body));
    assert.equal(dep.body.ready, true, 'the foreign container registered (the manager matched it by model and version)');
    await s.admin('add_model_links', { app_name: 'shout', model_names: ['upper'] });
    const r = await s.predict('shout', { input_batch: ['abc', 'Hello'] });
    assert.deepEqual(r.body.batch_predictions.map((p: any) => p.output), ['ABC', 'HELLO']);
    assert.deepEqual(r.body.batch_predictions[0].models, ['upper:v1.0']);
  } finally {
    await s.close();
  }
});
