import assert from 'node:assert/strict';
import { it } from 'node:test';
import { replicaPid } from '../helpers/replica-pid.ts';
import { startTestServer, waitFor, writeJsModel } from '../helpers/server.ts';

// Each batch takes a few ms so that some are in flight when the replica is killed.
const SLOW_ECHO = `export async function predict(inputs) {
  await new Promise((r) => setTimeout(r, 5));
  return inputs.map((x) => 'ok:' + x);
}
`;

it('kill -9 of one of two replicas while 200 queries flow: none fails or hangs, and it comes back', async () => {
  const s = await startTestServer({ heartbeatTimeoutMs: 2000 });
  try {
    await s.admin('add_app', { name: 'ha', input_type: 'strings', default_output: 'DEFAULT', latency_slo_micros: 10_000_000 });
    const dep = await s.admin('add_model', { model_name: 'ha-model', model_version: '1', input_type: 'strings', model_data_path: writeJsModel(SLOW_ECHO), replicas: 2 });
    assert.equal(dep.body.ready, true);
    await s.admin('add_model_links', { app_name: 'ha', model_names: ['ha-model'] });

    const pid = replicaPid('ha-model:1#0')!;
    assert.ok(pid, 'the replica process is running');
    const queries: Array<Promise<{ status: number; body: any }>> = [];
    for (let i = 0; i < 200; i++) {
      queries.push(s.predict('ha', { input: `q${i}` }));
      if (i === 60) process.kill(pid, 'SIGKILL');
      if (i % 10 === 0) await new Promise((r) => setTimeout(r, 5));
    }
    const answers = await Promise.all(queries);
    answers.forEach((a, i) => {
      assert.equal(a.status, 200);
      assert.equal(a.body.default, false, `query ${i} got the default: ${a.body.default_explanation}`);
      assert.equal(a.body.output, `ok:q${i}`);
    });

    const back = await waitFor(() => {
      const r = s.app.manager.replicas().find((x) => x.replicaId === 'ha-model:1#0');
      return r && r.state === 'READY' && replicaPid('ha-model:1#0') !== pid ? r : undefined;
    }, 5000, 'the killed replica to be restarted');
    assert.equal(back!.restarts, 1);
    assert.equal(s.app.rpc.readyReplicas().length, 2);
  } finally {
    await s.close();
  }
});
