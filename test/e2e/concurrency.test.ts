/**
 * Registration under concurrency (issue 11, finding 7): of many identical add_model calls exactly
 * one wins and the rest get 409, never a 500; no loser removes what the winner's replica uses.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { ECHO_MODEL, startTestServer, waitFor, writeJsModel, type TestServer } from '../helpers/server.ts';

describe('concurrent add_model', () => {
  let s: TestServer;
  before(async () => { s = await startTestServer(); });
  after(() => s.close());

  it('50 identical calls: one 200, 49 × 409 ALREADY_EXISTS, and the winner serves', async () => {
    const dir = writeJsModel(ECHO_MODEL('race'));
    const body = { model_name: 'race', model_version: '1', input_type: 'strings', runtime: 'js', model_data_path: dir, replicas: 1 };
    const answers = await Promise.all(Array.from({ length: 50 }, () => s.admin('add_model', body)));
    const statuses = answers.map((a) => a.status);
    assert.equal(statuses.filter((c) => c === 200).length, 1, `statuses: ${statuses.join(',')}`);
    assert.equal(statuses.filter((c) => c === 409).length, 49, `statuses: ${statuses.join(',')}`);
    for (const a of answers.filter((x) => x.status === 409)) assert.equal(a.body.error, 'ALREADY_EXISTS');

    const winner = answers.find((a) => a.status === 200)!;
    assert.equal(winner.body.ready, true);
    const artifact = s.app.registry.requireVersion('race', '1').artifactPath;
    assert.ok(existsSync(artifact), `the winner's artifact ${artifact} is still there`);

    await s.admin('add_app', { name: 'race', input_type: 'strings', latency_slo_micros: 3_000_000 });
    await s.admin('add_model_links', { app_name: 'race', model_names: ['race'] });
    const r = await s.predict('race', { input: 'go' });
    assert.equal(r.body.output, 'race:go', JSON.stringify(r.body));
    await new Promise((res) => setTimeout(res, 500));
    const replicas = s.app.manager.replicas().filter((x) => x.modelName === 'race');
    assert.equal(replicas.length, 1);
    assert.equal(replicas[0]!.restarts, 0, 'the replica is not crash-looping');
  });

  it('two different versions deployed at once both succeed', async () => {
    const [a, b] = await Promise.all(['1', '2'].map((version) =>
      s.admin('add_model', { model_name: 'pair', model_version: version, input_type: 'strings', model_data_path: writeJsModel(ECHO_MODEL(`v${version}`)), replicas: 0 })));
    assert.equal(a!.status, 200, JSON.stringify(a!.body));
    assert.equal(b!.status, 200, JSON.stringify(b!.body));
    assert.deepEqual((await s.admin('get_all_models')).body.filter((m: string) => m.startsWith('pair:')).sort(), ['pair:1', 'pair:2']);
    await waitFor(() => s.app.registry.versionsOf('pair').every((v) => existsSync(v.artifactPath)), 1000, 'both artifacts');
  });

  it('a duplicate of a registered version never touches its artifact', async () => {
    const dir = writeJsModel(ECHO_MODEL('dup'));
    const body = { model_name: 'dup', model_version: '1', input_type: 'strings', model_data_path: dir, replicas: 0 };
    assert.equal((await s.admin('add_model', body)).status, 200);
    const artifact = s.app.registry.requireVersion('dup', '1').artifactPath;
    const again = await Promise.all(Array.from({ length: 10 }, () => s.admin('add_model', body)));
    assert.deepEqual(again.map((a) => a.status), Array(10).fill(409));
    assert.ok(existsSync(artifact));
  });
});
