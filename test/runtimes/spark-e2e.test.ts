/** Every shared Spark fixture pipeline, deployed with runtime spark and queried through the query API. */
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startTestServer, tempDir, type TestServer } from '../helpers/server.ts';
import { FIXTURES_PRESENT, FIXTURE_DIR, PIPELINE_INPUTS, pipelinePath, readTable } from '../spark/fixture-csv.ts';

const SKIP = FIXTURES_PRESENT ? false : `shared Spark fixtures not found at ${FIXTURE_DIR}; Spark end-to-end conformance skipped`;
const REL = 1e-9;
const ABS = 1e-12;

describe('spark runtime through the query API', () => {
  let s: TestServer;
  before(async () => {
    // Root '/': the pipelines come from the shared fixtures, the odd artifacts from the temp directory.
    s = await startTestServer({ artifactRoot: '/' });
  });
  after(() => s.close());

  for (const [name, input] of Object.entries(PIPELINE_INPUTS)) {
    it(`${name} answers as Spark did, row by row`, { skip: SKIP }, async () => {
      const model = name.toLowerCase();
      await s.admin('add_app', { name: model, input_type: 'strings', default_output: 'null', latency_slo_micros: 20_000_000 });
      const dep = await s.admin('add_model', { model_name: model, model_version: '1', input_type: 'strings', runtime: 'spark', model_data_path: pipelinePath(name) });
      assert.equal(dep.status, 200, JSON.stringify(dep.body));
      await s.admin('add_model_links', { app_name: model, model_names: [model] });
      const rows = readTable('input', input);
      const expected = readTable('expected', name);
      const r = await s.predict(model, { input_batch: rows });
      assert.equal(r.status, 200, JSON.stringify(r.body).slice(0, 300));
      const answers = r.body.batch_predictions as Array<{ output: { prediction: unknown; probability?: Record<string, number> }; default: boolean; default_explanation?: string }>;
      assert.equal(answers.length, rows.length);
      answers.forEach((a, i) => {
        assert.equal(a.default, false, `row ${i}: ${a.default_explanation}`);
        for (const [col, want] of Object.entries(expected[i]!)) {
          const pm = /^probability\((.*)\)$/.exec(col);
          const got = pm ? a.output.probability?.[pm[1]!] : a.output.prediction;
          if (typeof want === 'number' && typeof got === 'number') {
            const d = Math.abs(got - want);
            assert.ok(d <= ABS || d / Math.max(Math.abs(got), Math.abs(want)) <= REL, `row ${i} ${col}: got ${got}, want ${want}`);
          } else {
            assert.equal(String(got), String(want), `row ${i} ${col}`);
          }
        }
      });
      await s.admin('delete_app', { name: model });
      await s.admin('delete_versioned_model', { model_name: model, model_version: '1' });
    });
  }

  it('a row missing a column gets a clear per-row error; the other rows are answered', { skip: SKIP }, async () => {
    await s.admin('add_app', { name: 'iris', input_type: 'strings', latency_slo_micros: 20_000_000 });
    await s.admin('add_model', { model_name: 'iris-rf', model_version: '1', input_type: 'strings', runtime: 'spark', model_data_path: pipelinePath('RandomForestIris') });
    await s.admin('add_model_links', { app_name: 'iris', model_names: ['iris-rf'] });
    const [row] = readTable('input', 'Iris');
    const { Petal_Length: _dropped, ...missing } = row as Record<string, unknown>;
    const r = await s.predict('iris', { input_batch: [row, missing, 'not json'] });
    const [ok, bad, notJson] = r.body.batch_predictions;
    assert.equal(ok.output.prediction, 'setosa');
    assert.equal(bad.default, true);
    assert.match(bad.default_explanation, /Petal_Length/);
    assert.match(notJson.default_explanation, /JSON/);
  });

  it('refuses at deploy time a directory that is not a Spark model, and an unsupported stage', async () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'README.txt'), 'not a model');
    const r = await s.admin('add_model', { model_name: 'notspark', model_version: '1', input_type: 'strings', runtime: 'spark', model_data_path: dir });
    assert.equal(r.status, 400);
    assert.equal(r.body.error, 'ARTIFACT_INVALID');
    assert.match(r.body.cause, /spark artifact refused: .*metadata/i);

    const odd = tempDir();
    mkdirSync(join(odd, 'metadata'));
    writeFileSync(join(odd, 'metadata', 'part-00000'), JSON.stringify({ class: 'org.apache.spark.ml.feature.Foo', timestamp: 0, sparkVersion: '3.5.0', uid: 'Foo_1', paramMap: {}, defaultParamMap: {} }));
    const u = await s.admin('add_model', { model_name: 'foo', model_version: '1', input_type: 'strings', runtime: 'spark', model_data_path: odd });
    assert.equal(u.status, 400);
    assert.match(u.body.cause, /org\.apache\.spark\.ml\.feature\.Foo/);
    assert.equal((await s.admin('get_model', { model_name: 'foo' })).status, 404);
  });
});
