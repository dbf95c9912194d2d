import assert from 'node:assert/strict';
import { it } from 'node:test';
import { startTestServer, writeJsModel } from '../helpers/server.ts';

it('a model slower than the SLO: the default output with the explanation arrives within the SLO plus a small margin', async () => {
  const s = await startTestServer();
  try {
    await s.admin('add_app', { name: 'slow', input_type: 'doubles', default_output: '{"fallback": true}', latency_slo_micros: 50_000 });
    await s.admin('add_model', {
      model_name: 'sleepy', model_version: '1', input_type: 'doubles',
      model_data_path: writeJsModel('export async function predict(xs) { await new Promise((r) => setTimeout(r, 400)); return xs.map(() => "late"); }\n'),
    });
    await s.admin('add_model_links', { app_name: 'slow', model_names: ['sleepy'] });
    for (let i = 0; i < 5; i++) {
      const t0 = performance.now();
      const r = await s.predict('slow', { input: [1, 2, 3] });
      const ms = performance.now() - t0;
      assert.equal(r.status, 200);
      assert.equal(r.body.default, true);
      assert.deepEqual(r.body.output, { fallback: true });
      assert.match(r.body.default_explanation, /within the latency SLO of 50 ms/);
      assert.ok(ms < 50 + 150, `answered in ${ms.toFixed(1)} ms`);
    }
  } finally {
    await s.close();
  }
});
