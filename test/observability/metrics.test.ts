/**
 * /metrics carries Triton-shaped inference metrics per model and version (success and failure
 * counts, inputs and batches, request, queue and compute durations) and passes
 * `promtool check metrics` (Debian's prometheus package).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { deployJsApp, send, startTestServer, writeJsModel, type TestServer } from '../helpers/server.ts';

const promtool = spawnSync('promtool', ['--version']).status === 0;

/** Answers "ok:<x>", and raises for the input "boom". */
const MODEL = `export function predict(xs) { if (xs.includes('boom')) throw new Error('boom refused'); return xs.map((x) => 'ok:' + x); }\n`;

function sample(text: string, name: string, labels: Record<string, string>): number | undefined {
  const want = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`)) continue;
    const close = line.indexOf('}');
    const got = line.slice(name.length + 1, close).split(',');
    if (want.every((w) => got.includes(w)) && got.length === want.length) return Number(line.slice(close + 2));
  }
  return undefined;
}

describe('metrics', () => {
  let s: TestServer;
  let text = '';
  before(async () => {
    s = await startTestServer();
    await deployJsApp(s, { app: 'words', inputType: 'strings', source: MODEL, defaultOutput: 'none' });
    await s.admin('add_model', { model_name: 'solo', model_version: '3', input_type: 'strings', model_data_path: writeJsModel(MODEL) });
    for (const x of ['a', 'b', 'c']) assert.equal((await s.predict('words', { input: x })).body.default, false);
    assert.equal((await s.predict('words', { input: 'boom' })).body.default, true);
    const direct = await send(`${s.app.queryUrl}/v2/models/solo/infer`, { inputs: [{ name: 'x', datatype: 'BYTES', shape: [1], data: ['d'] }] });
    assert.equal(direct.status, 200, JSON.stringify(direct.body));
    text = await (await fetch(`${s.app.queryUrl}/metrics`)).text();
  });
  after(() => s?.close());

  it('counts successes and failures per model and version, with the failure reason', () => {
    const v1 = { model: 'words-model', version: '1' };
    assert.equal(sample(text, 'clipper_inference_request_success_total', v1), 3);
    assert.equal(sample(text, 'clipper_inference_request_failure_total', { ...v1, reason: 'MODEL_ERROR' }), 1);
    assert.equal(sample(text, 'clipper_inference_request_success_total', { model: 'solo', version: '3' }), 1, 'the direct V2 inference on a model');
  });

  it('counts inputs and batches, and times requests, queueing and compute', () => {
    const v1 = { model: 'words-model', version: '1' };
    assert.equal(sample(text, 'clipper_inference_count_total', v1), 4);
    const batches = sample(text, 'clipper_inference_exec_count_total', v1)!;
    assert.ok(batches >= 1 && batches <= 4, `${batches} batches`);
    for (const h of ['request', 'queue', 'compute']) {
      const count = sample(text, `clipper_inference_${h}_duration_seconds_count`, v1);
      assert.ok(count !== undefined && count >= 1, `${h} duration observed: ${count}`);
      assert.ok(sample(text, `clipper_inference_${h}_duration_seconds_sum`, v1)! > 0);
    }
  });

  it('passes promtool check metrics', { skip: promtool ? false : 'promtool is not installed (Debian package prometheus; npm run setup installs it)' }, () => {
    const r = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
    assert.equal(r.status, 0, `promtool: ${r.stdout}${r.stderr}`);
    assert.equal(`${r.stdout}${r.stderr}`.trim(), '', 'no lint findings');
  });

  it('promtool does fail on a broken exposition (the check above can fail)', { skip: promtool ? false : 'promtool is not installed' }, () => {
    const r = spawnSync('promtool', ['check', 'metrics'], { input: '# TYPE requests counter\nrequests 1\n', encoding: 'utf8' });
    assert.notEqual(r.status, 0);
  });
});
