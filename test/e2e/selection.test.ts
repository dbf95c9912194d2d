/** Model selection end to end: bandits and ensembles learning from /update, splits, shadow, stragglers, restarts. */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { send, startTestServer, tempDir, writeJsModel, type TestServer } from '../helpers/server.ts';

// The true label of [a, b] is "pos" when a > 0. `good` knows it; `bad` is right only when b < 0.4.
const GOOD = 'export const predict = (xs) => xs.map((x) => (x[0] > 0 ? "pos" : "neg"));\n';
const BAD = 'export const predict = (xs) => xs.map((x) => ((x[0] > 0) === (x[1] < 0.4) ? "pos" : "neg"));\n';
const SLOW = 'export async function predict(xs) { await new Promise((r) => setTimeout(r, 1000)); return xs.map(() => "pos"); }\n';

let seed = 42;
const rand = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
const example = () => {
  const x = [rand() * 2 - 1, rand()];
  return { input: x, label: x[0]! > 0 ? 'pos' : 'neg' };
};

async function deployPair(s: TestServer, app: string, slo = 2_000_000) {
  await s.admin('add_app', { name: app, input_type: 'doubles', default_output: 'unknown', latency_slo_micros: slo });
  await s.admin('add_model_links', { app_name: app, model_names: ['good', 'bad'] });
}

describe('model selection', () => {
  let s: TestServer;
  let dataDir: string;
  before(async () => {
    dataDir = tempDir();
    s = await startTestServer({ dataDir });
    for (const [name, src] of [['good', GOOD], ['bad', BAD], ['slow', SLOW]] as const) {
      const r = await s.admin('add_model', { model_name: name, model_version: '1', input_type: 'doubles', model_data_path: writeJsModel(src) });
      assert.equal(r.status, 200, JSON.stringify(r.body));
    }
  });
  after(() => s.close());

  it('exp3 sends at least 80% of the traffic to the better model within 300 feedback events', async () => {
    await deployPair(s, 'bandit');
    const set = await s.admin('set_selection_policy', { app_name: 'bandit', policy: 'exp3' });
    assert.equal(set.status, 200, JSON.stringify(set.body));
    for (let i = 0; i < 300; i++) {
      const { input, label } = example();
      const r = await send(`${s.app.queryUrl}/bandit/update`, { input, label });
      assert.equal(r.status, 200, JSON.stringify(r.body));
    }
    let good = 0;
    for (let i = 0; i < 200; i++) {
      const r = await s.predict('bandit', { input: example().input });
      if (r.body.models[0] === 'good:1') good++;
    }
    assert.ok(good / 200 >= 0.8, `good got ${good} of 200 queries`);
    const state = await s.admin('get_selection_state', { app_name: 'bandit' });
    assert.equal(state.body.policy, 'exp3');
    assert.ok(state.body.weights.good > state.body.weights.bad);
  });

  it('exp4 gives the better model at least 80% of the weight within 300 feedback events, and answers as an ensemble', async () => {
    await deployPair(s, 'ensemble');
    await s.admin('set_selection_policy', { app_name: 'ensemble', policy: 'exp4' });
    for (let i = 0; i < 300; i++) {
      const { input, label } = example();
      await send(`${s.app.queryUrl}/ensemble/update`, { input, label });
    }
    const state = await s.admin('get_selection_state', { app_name: 'ensemble' });
    assert.ok(state.body.weights.good >= 0.8, JSON.stringify(state.body.weights));
    const r = await s.predict('ensemble', { input: [0.5, 0.9] });
    assert.equal(r.body.output, 'pos');
    assert.deepEqual([...r.body.models].sort(), ['bad:1', 'good:1']);
    assert.equal(typeof r.body.confidence, 'number');
  });

  it('a 90/10 weighted split holds within 3 points over 2,000 queries, and a uid always lands on the same model', async () => {
    await deployPair(s, 'canary');
    const set = await s.admin('set_selection_policy', { app_name: 'canary', policy: 'weighted', params: { weights: { good: 0.9, bad: 0.1 } } });
    assert.equal(set.status, 200, JSON.stringify(set.body));
    const counts: Record<string, number> = { 'good:1': 0, 'bad:1': 0 };
    for (let i = 0; i < 2000; i += 50) {
      const batch = await Promise.all(Array.from({ length: 50 }, (_, k) => s.predict('canary', { input: [i + k, 0.5] })));
      for (const r of batch) counts[r.body.models[0]]!++;
    }
    const share = counts['good:1']! / 2000;
    assert.ok(Math.abs(share - 0.9) <= 0.03, `good got ${(share * 100).toFixed(1)}%`);
    for (const uid of ['alice', 'bob', 'carol']) {
      const seen = new Set<string>();
      for (let i = 0; i < 20; i++) seen.add((await s.predict('canary', { input: [i, 0.5], uid })).body.models[0]);
      assert.equal(seen.size, 1, `uid ${uid} saw ${[...seen]}`);
    }
  });

  it('shadow: every answer comes from the primary while the candidate\'s outputs are recorded', async () => {
    await deployPair(s, 'shadowed');
    await s.admin('set_selection_policy', { app_name: 'shadowed', policy: 'shadow', params: { primary: 'bad', candidates: ['good'] } });
    for (let i = 0; i < 10; i++) {
      const r = await s.predict('shadowed', { input: [0.5, 0.9] });
      assert.deepEqual(r.body.models, ['bad:1']);
      assert.equal(r.body.output, 'neg', 'the primary (wrong here) answers');
    }
    await new Promise((r) => setTimeout(r, 200));
    const state = await s.admin('get_selection_state', { app_name: 'shadowed' });
    const records = state.body.shadow_records;
    assert.equal(records.length, 10);
    assert.deepEqual(records[0].primary, { model: 'bad', output: 'neg' });
    assert.deepEqual(records[0].candidates, [{ model: 'good', output: 'pos' }]);
  });

  it('an ensemble with one model slower than the SLO answers in time from the others, naming them', async () => {
    await s.admin('add_app', { name: 'stragglers', input_type: 'doubles', default_output: 'unknown', latency_slo_micros: 200_000 });
    await s.admin('add_model_links', { app_name: 'stragglers', model_names: ['good', 'bad', 'slow'] });
    await s.admin('set_selection_policy', { app_name: 'stragglers', policy: 'exp4' });
    const t0 = performance.now();
    const r = await s.predict('stragglers', { input: [0.5, 0.1] });
    const ms = performance.now() - t0;
    assert.equal(r.body.default, false);
    assert.equal(r.body.output, 'pos');
    assert.deepEqual([...r.body.models].sort(), ['bad:1', 'good:1']);
    assert.ok(ms < 200 + 300, `answered in ${ms.toFixed(0)} ms`);
  });

  it('a confidence threshold turns a split vote into the default output, marked so', async () => {
    await s.admin('add_app', { name: 'unsure', input_type: 'doubles', default_output: 'unknown', latency_slo_micros: 2_000_000 });
    await s.admin('add_model_links', { app_name: 'unsure', model_names: ['good', 'bad'] });
    const set = await s.admin('set_selection_policy', { app_name: 'unsure', policy: 'exp4', params: { confidence_threshold: 0.9 } });
    assert.equal(set.status, 200, JSON.stringify(set.body));
    const r = await s.predict('unsure', { input: [0.5, 0.9] }); // good says pos, bad says neg
    assert.equal(r.body.default, true);
    assert.equal(r.body.output, 'unknown');
    assert.match(r.body.default_explanation, /confidence .* below the threshold 0.9/);
  });

  it('refuses unknown policies and bad parameters', async () => {
    let r = await s.admin('set_selection_policy', { app_name: 'canary', policy: 'magic' });
    assert.equal(r.status, 400);
    assert.match(r.body.cause, /policy must be one of/);
    r = await s.admin('set_selection_policy', { app_name: 'canary', policy: 'weighted', params: { weights: { ghost: 1 } } });
    assert.equal(r.status, 400);
    assert.match(r.body.cause, /ghost/);
    r = await send(`${s.app.queryUrl}/canary/update`, { input: [1, 2] });
    assert.equal(r.status, 400);
    assert.match(r.body.cause, /label/);
  });

  it('selection state survives a restart of the server', async () => {
    const before = (await s.admin('get_selection_state', { app_name: 'ensemble' })).body;
    await s.close();
    s = await startTestServer({ dataDir });
    const after = (await s.admin('get_selection_state', { app_name: 'ensemble' })).body;
    assert.equal(after.policy, 'exp4');
    assert.deepEqual(after.weights, before.weights);
    const canary = (await s.admin('get_selection_state', { app_name: 'canary' })).body;
    assert.deepEqual(canary.params.weights, { good: 0.9, bad: 0.1 });
  });
});
