/** Errors of a js model reach the caller with their reason, land in the replica's log, and the replica keeps serving. */
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { startTestServer, waitFor, writeJsModel } from '../helpers/server.ts';

const MODEL = `export function predict(inputs) {
  if (inputs.includes('throw')) throw new TypeError('bad thing happened');
  if (inputs.includes('count')) return [];
  if (inputs.includes('undef')) return inputs.map(() => undefined);
  return inputs.map((x) => x + '!');
}
`;

it('a js model that throws, miscounts or returns a non-string', async () => {
  const s = await startTestServer();
  try {
    await s.admin('add_app', { name: 'errs', input_type: 'strings', default_output: 'fallback', latency_slo_micros: 5_000_000 });
    await s.admin('add_model', { model_name: 'errs', model_version: '1', input_type: 'strings', model_data_path: writeJsModel(MODEL) });
    await s.admin('add_model_links', { app_name: 'errs', model_names: ['errs'] });
    const cases: Array<[string, RegExp]> = [
      ['throw', /predict failed: bad thing happened/],
      ['count', /predict returned 0 outputs for 1 inputs/],
      ['undef', /predict returned undefined/],
    ];
    for (const [input, reason] of cases) {
      const r = await s.predict('errs', { input });
      assert.equal(r.status, 200);
      assert.equal(r.body.default, true, input);
      assert.equal(r.body.output, 'fallback');
      assert.match(r.body.default_explanation, reason);
    }
    assert.equal((await s.predict('errs', { input: 'fine' })).body.output, 'fine!');
    const logs = await waitFor(async () => {
      const l = await s.admin('get_replica_logs', { model_name: 'errs' });
      const text = l.body.replicas[0].lines.join('\n');
      return /TypeError: bad thing happened/.test(text) ? text : undefined;
    }, 3000, 'the error in the log');
    assert.match(logs, /0 outputs for 1 inputs/);
    assert.equal(s.app.manager.replicas()[0]!.restarts, 0, 'the replica did not crash');
    const metrics = await (await fetch(`${s.app.queryUrl}/metrics`)).text();
    assert.match(metrics, /clipper_inference_request_failure_total\{model="errs",version="1",reason="MODEL_ERROR"\} 3/);
  } finally {
    await s.close();
  }
});
