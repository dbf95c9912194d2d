/**
 * A query of death (issue 11, finding 6): a model that exits on one input. Before, the input was
 * retried on each replica in turn and killed all three. Now the replica it crashed is the only one:
 * the input is quarantined, answered with the default and the reason, and a repeat is answered at
 * once; the queries beside it are answered.
 */
import assert from 'node:assert/strict';
import { tmpdir } from 'node:os';
import { after, before, describe, it } from 'node:test';
import { startTestServer, waitFor, writeJsModel, type TestServer } from '../helpers/server.ts';

const CRASHES_ON_POISON = `export async function predict(inputs) {
  if (inputs.some((x) => x.startsWith('poison'))) process.exit(1);
  await new Promise((r) => setTimeout(r, 2));
  return inputs.map((x) => 'ok:' + x);
}
`;

describe('query of death', () => {
  let s: TestServer;
  const restarts = async () => {
    const all = (await s.admin('get_all_containers', { verbose: true })).body as Array<{ model_name?: string; replica_id: string; restarts: number }>;
    return all.filter((c) => c.replica_id.startsWith('crashy:')).reduce((n, c) => n + c.restarts, 0);
  };
  const allReady = () => waitFor(() => s.app.rpc.readyReplicas().filter((r) => r.modelName === 'crashy').length === 3, 20_000, 'three ready replicas');

  before(async () => {
    s = await startTestServer({ artifactRoot: tmpdir() });
    await s.admin('add_app', { name: 'qod', input_type: 'strings', default_output: 'DEFAULT', latency_slo_micros: 10_000_000 });
    const dep = await s.admin('add_model', { model_name: 'crashy', model_version: '1', input_type: 'strings', model_data_path: writeJsModel(CRASHES_ON_POISON), replicas: 3 });
    assert.equal(dep.status, 200, JSON.stringify(dep.body));
    await s.admin('add_model_links', { app_name: 'qod', model_names: ['crashy'] });
    await allReady();
  });
  after(() => s.close());

  it('kills one replica, answers the default with the reason, and the queries beside it are answered', async () => {
    assert.equal(await restarts(), 0);
    const poison = s.predict('qod', { input: 'poison' });
    await new Promise((r) => setTimeout(r, 5));
    const others = Array.from({ length: 30 }, (_, i) => s.predict('qod', { input: `n${i}` }));

    const p = await poison;
    await waitFor(async () => (await restarts()) >= 1, 10_000, 'the crashed replica to be restarted');
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(await restarts(), 1, 'one replica died');
    assert.equal(p.status, 200);
    assert.equal(p.body.default, true);
    assert.equal(p.body.output, 'DEFAULT');
    assert.match(p.body.default_explanation, /this input was in flight when a replica of crashy:1 crashed \(exited with code 1\); not retried on other replicas/);
    for (const [i, a] of (await Promise.all(others)).entries()) {
      assert.equal(a.status, 200);
      assert.equal(a.body.output, `ok:n${i}`, JSON.stringify(a.body));
    }
  });

  it('answers a repeat at once from the quarantine, with no replica harmed', async () => {
    const started = Date.now();
    const again = await s.predict('qod', { input: 'poison' });
    const ms = Date.now() - started;
    assert.equal(again.body.default, true);
    assert.match(again.body.default_explanation, /^quarantined: this input was in flight when a replica of crashy:1 crashed/);
    assert.ok(ms < 500, `answered in ${ms} ms`);
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(await restarts(), 1, 'no further replica died');
  });

  it('a poison input inside a batch: isolated, quarantined, and the rest of the batch answered', async () => {
    await allReady();
    const before = await restarts();
    const r = await s.predict('qod', { input_batch: ['b1', 'poison-in-batch', 'b2', 'b3'] });
    assert.equal(r.status, 200);
    const [b1, poison, b2, b3] = r.body.batch_predictions;
    for (const [a, x] of [[b1, 'b1'], [b2, 'b2'], [b3, 'b3']] as const) assert.equal(a.output, `ok:${x}`);
    assert.equal(poison.default, true);
    assert.match(poison.default_explanation, /not retried on other replicas/);
    // Its own batch's replica, and at most the one it was then isolated on.
    await new Promise((r) => setTimeout(r, 500));
    const died = (await restarts()) - before;
    assert.ok(died >= 1 && died <= 2, `${died} replicas died`);
  });
});
