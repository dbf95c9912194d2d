/**
 * The resource manager against a started server with real child processes: stuck replicas,
 * memory limits, warm and on-demand versions, scale to zero, and its admin endpoints.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { describe, it } from 'node:test';
import { replicaPid } from '../helpers/replica-pid.ts';
import { ECHO_MODEL, startTestServer, waitFor, writeJsModel } from '../helpers/server.ts';

const alive = (pid: number) => existsSync(`/proc/${pid}`);

async function deploy(s: Awaited<ReturnType<typeof startTestServer>>, model: string, version: string, source: string, extra: Record<string, unknown> = {}) {
  const r = await s.admin('add_model', { model_name: model, model_version: version, input_type: 'strings', model_data_path: writeJsModel(source), ...extra });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  return r.body;
}

describe('resource manager', () => {
  it('a replica stuck in predict is killed and restarted; status tells why', async () => {
    const s = await startTestServer({ heartbeatTimeoutMs: 1000, predictTimeoutMs: 1500, stopGraceMs: 500 });
    try {
      await s.admin('add_app', { name: 'hang', input_type: 'strings', default_output: 'D', latency_slo_micros: 200_000 });
      await deploy(s, 'hang-model', '1', `export function predict(inputs) {
        if (inputs[0] === 'hang') { for (;;) {} }
        return inputs.map((x) => 'ok:' + x);
      }\n`);
      await s.admin('add_model_links', { app_name: 'hang', model_names: ['hang-model'] });
      assert.equal((await s.predict('hang', { input: 'a' })).body.output, 'ok:a');
      const pid = replicaPid('hang-model:1#0')!;
      const stuck = await s.predict('hang', { input: 'hang' });
      assert.equal(stuck.body.default, true);
      const info = await waitFor(async () => {
        const c = (await s.admin('get_container', { model_name: 'hang-model' })).body;
        return c.restarts >= 1 && c.state === 'READY' ? c : undefined;
      }, 20_000, 'the stuck replica to be killed and come back');
      assert.match(info.last_exit.reason, /^unresponsive: a batch has been in flight/);
      assert.equal(alive(pid), false, 'the stuck process is gone, not left burning a core');
      assert.equal((await s.predict('hang', { input: 'b' })).body.output, 'ok:b');
    } finally {
      await s.close();
    }
  });

  it('a replica over its memory limit is killed, restarted, and the reason is in status and its log', async () => {
    const s = await startTestServer();
    try {
      await s.admin('add_app', { name: 'mem', input_type: 'strings', default_output: 'D', latency_slo_micros: 5_000_000 });
      const body = await deploy(s, 'mem-model', '1', `const held = [];
        export function predict(inputs) {
          if (inputs[0] === 'grow') for (let i = 0; i < 40; i++) held.push(Buffer.alloc(16 * 1024 * 1024, 1));
          return inputs.map((x) => 'ok:' + x);
        }\n`, { memory_mb: 200 });
      assert.equal(body.model.memory_mb, 200);
      await s.admin('add_model_links', { app_name: 'mem', model_names: ['mem-model'] });
      const before = (await s.admin('get_container', { model_name: 'mem-model' })).body;
      assert.deepEqual(before.limits, { cpus: 0, memory_mb: 200 });
      assert.notEqual(before.enforcement.memory, 'none set');
      await s.predict('mem', { input: 'grow' });
      const after = await waitFor(async () => {
        const c = (await s.admin('get_container', { model_name: 'mem-model' })).body;
        return c.restarts >= 1 && c.state === 'READY' ? c : undefined;
      }, 20_000, 'the replica to be killed for memory and restarted');
      assert.match(after.last_exit.reason, /out of memory/);
      const logs = await s.admin('get_replica_logs', { model_name: 'mem-model', tail: 50 });
      const text = logs.body.replicas.flatMap((r: any) => r.lines).join('\n');
      assert.match(text, /out of memory|killed/);
      assert.equal((await s.predict('mem', { input: 'x' })).body.output, 'ok:x');
    } finally {
      await s.close();
    }
  });

  it('queries pinned to the previous version are answered by its warm replica; older ones start on demand', async () => {
    const s = await startTestServer({ onDemandIdleMs: 60_000 });
    try {
      await s.admin('add_app', { name: 'pin', input_type: 'strings', default_output: 'D', latency_slo_micros: 20_000_000 });
      for (const v of ['1', '2', '3']) await deploy(s, 'pin-model', v, ECHO_MODEL(`v${v}`));
      await s.admin('add_model_links', { app_name: 'pin', model_names: ['pin-model'] });
      await s.app.manager.waitReady('pin-model', '2', 1, 15_000);
      const previous = s.app.manager.replicas().find((r) => r.replicaId === 'pin-model:2#0');
      assert.equal(previous?.lastExit, undefined, 'deploying v3 did not stop and restart v2 on its way to warm');
      // v2 is warm (the previous version): answered at once.
      const warm = await s.predict('pin', { input: 'x', version: '2' });
      assert.deepEqual([warm.body.output, warm.body.default], ['v2:x', false]);
      // v1 has no replica: the query starts one and waits for it within its SLO.
      assert.equal(s.app.manager.replicas().some((r) => r.modelVersion === '1'), false);
      const cold = await s.predict('pin', { input: 'y', version: '1' });
      assert.deepEqual([cold.body.output, cold.body.default], ['v1:y', false]);
      // Rollback to the warm version answers at once.
      const t0 = Date.now();
      const roll = await s.admin('set_model_version', { model_name: 'pin-model', model_version: '2' });
      assert.equal(roll.body.ready, true);
      assert.equal((await s.predict('pin', { input: 'z' })).body.output, 'v2:z');
      assert.ok(Date.now() - t0 < 5000, 'rollback to a warm version did not wait for a start');
      const scaling = (await s.app.controller.scaling('pin-model'));
      assert.deepEqual(scaling.warm, ['3']);
    } finally {
      await s.close();
    }
  });

  it('a version with no replica and no prospect of one answers at once instead of piling up', async () => {
    const s = await startTestServer();
    try {
      await s.admin('add_app', { name: 'none', input_type: 'strings', default_output: 'D', latency_slo_micros: 10_000_000 });
      await deploy(s, 'none-model', '1', ECHO_MODEL('v1'), { replicas: 0 });
      await s.admin('add_model_links', { app_name: 'none', model_names: ['none-model'] });
      const t0 = Date.now();
      const r = await s.predict('none', { input: 'x' });
      assert.equal(r.body.default, true);
      assert.match(r.body.default_explanation, /no replica of none-model:1 is running and none is starting/);
      assert.ok(Date.now() - t0 < 2000, 'answered without waiting for the 10 s SLO');
      assert.equal(s.app.processor.queueStats().find((q) => q.model === 'none-model:1')?.depth ?? 0, 0);
    } finally {
      await s.close();
    }
  });

  it('scales to zero after slack, and the first query starts a replica and is answered within its SLO', async () => {
    const s = await startTestServer({ measureIntervalMs: 200 });
    try {
      await s.admin('add_app', { name: 'zero', input_type: 'strings', default_output: 'D', latency_slo_micros: 20_000_000 });
      await deploy(s, 'zero-model', '1', ECHO_MODEL('z'));
      await s.admin('add_model_links', { app_name: 'zero', model_names: ['zero-model'] });
      const on = await s.admin('set_autoscaling', { model_name: 'zero-model', min_replicas: 0, max_replicas: 2, downscale_delay_s: 1 });
      assert.equal(on.status, 200, JSON.stringify(on.body));
      assert.equal(on.body.scaling.autoscaling.min_replicas, 0);
      await waitFor(() => s.app.manager.replicas().filter((r) => r.modelName === 'zero-model').length === 0, 20_000, 'scale to zero');
      const r = await s.predict('zero', { input: 'q' });
      assert.deepEqual([r.body.output, r.body.default], ['z:q', false]);
      const status = await fetch(`${s.app.adminUrl}/admin/status`).then((x) => x.json());
      assert.ok(status.scaling_events.some((e: any) => e.model === 'zero-model' && e.to === 0), 'the scale-down is in the event log');
      assert.ok(status.scaling_events.some((e: any) => e.model === 'zero-model' && e.from === 0 && e.to === 1), 'and so is the scale-up from zero');
      // enabled: false turns it off and keeps the last count; so does set_num_replicas, with its own count.
      const off = await s.admin('set_autoscaling', { model_name: 'zero-model', enabled: false });
      assert.deepEqual([off.status, off.body.scaling.autoscaling, off.body.scaling.desired_replicas], [200, null, 1]);
      await s.admin('set_autoscaling', { model_name: 'zero-model', min_replicas: 0, max_replicas: 2 });
      await s.admin('set_num_replicas', { model_name: 'zero-model', num_replicas: 1 });
      const after = await fetch(`${s.app.adminUrl}/admin/status`).then((x) => x.json());
      assert.equal(after.scaling['zero-model'].autoscaling, null);
    } finally {
      await s.close();
    }
  });

  it('autoscaling and resources are persisted, shown in status, and survive a restart', async () => {
    const s = await startTestServer();
    const dataDir = s.dataDir;
    try {
      await deploy(s, 'keep-model', '1', ECHO_MODEL('k'), { cpus: 0.5 });
      const on = await s.admin('set_autoscaling', { model_name: 'keep-model', min_replicas: 1, max_replicas: 3, target_utilization: 0.6 });
      assert.equal(on.status, 200);
      const res = await s.admin('set_resources', { model_name: 'keep-model', memory_mb: 300 });
      assert.deepEqual([res.body.model.cpus, res.body.model.memory_mb], [0.5, 300]);
    } finally {
      await s.close();
    }
    const again = await startTestServer({ dataDir });
    try {
      const status = await fetch(`${again.app.adminUrl}/admin/status`).then((x) => x.json());
      assert.deepEqual(status.scaling['keep-model'].autoscaling, { min_replicas: 1, max_replicas: 3, upscale_delay_s: 2, downscale_delay_s: 30, target_utilization: 0.6 });
      const m = status.models.find((x: any) => x.model_name === 'keep-model');
      assert.deepEqual([m.cpus, m.memory_mb], [0.5, 300]);
      await again.app.manager.waitReady('keep-model', '1', 1, 15_000);
      const c = (await again.admin('get_container', { model_name: 'keep-model' })).body;
      assert.deepEqual(c.limits, { cpus: 0.5, memory_mb: 300 });
      assert.ok(c.enforcement.cpu.length > 0 && c.enforcement.memory.length > 0);
      assert.equal(status.machines.length, 1);
      assert.ok(status.machines[0].cores >= 1);
      const metrics = await fetch(`${again.app.queryUrl}/metrics`).then((x) => x.text());
      assert.match(metrics, /^clipper_machine_cores\{machine="[^"]+"\} \d+$/m);
      assert.match(metrics, /^clipper_desired_replicas\{model="keep-model"\} 1$/m);
      assert.match(metrics, /^clipper_machine_memory_available_bytes\{/m);
    } finally {
      await again.close();
    }
  });

  it('refuses bad autoscaling and resource settings with a 4xx naming the problem', async () => {
    const s = await startTestServer();
    try {
      await deploy(s, 'bad-model', '1', ECHO_MODEL('b'));
      const cases: Array<[string, Record<string, unknown>, number, RegExp]> = [
        ['set_autoscaling', { model_name: 'bad-model', min_replicas: 3, max_replicas: 2 }, 400, /max_replicas/],
        ['set_autoscaling', { model_name: 'bad-model', min_replicas: -1, max_replicas: 2 }, 400, /min_replicas/],
        ['set_autoscaling', { model_name: 'bad-model', min_replicas: 1, max_replicas: 'many' }, 400, /max_replicas must be an integer/],
        ['set_autoscaling', { model_name: 'bad-model', min_replicas: 1, max_replicas: 2, target_utilization: 1.5 }, 400, /target_utilization/],
        ['set_autoscaling', { model_name: 'bad-model', min_replicas: 1, max_replicas: 2, downscale_delay_s: 'soon' }, 400, /downscale_delay_s must be a number/],
        ['set_autoscaling', { model_name: 'ghost', min_replicas: 1, max_replicas: 2 }, 404, /ghost/],
        ['set_autoscaling', { model_name: '../etc', min_replicas: 1, max_replicas: 2 }, 400, /not a valid name/],
        ['set_resources', { model_name: 'bad-model', cpus: -1 }, 400, /cpus must be at least 0/],
        ['set_resources', { model_name: 'bad-model', memory_mb: 1.5 }, 400, /memory_mb must be an integer/],
        ['set_resources', { model_name: 'bad-model' }, 400, /needs cpus and\/or memory_mb/],
        ['set_resources', { model_name: 'bad-model', model_version: '9', cpus: 1 }, 404, /no version/],
        ['add_model', { model_name: 'x', model_version: '1', input_type: 'strings', runtime: 'image', container_name: 'my/model:1' }, 400, /needs the Docker backend/],
      ];
      for (const [endpoint, body, status, cause] of cases) {
        const r = await s.admin(endpoint, body);
        assert.equal(r.status, status, `${endpoint} ${JSON.stringify(body)} → ${JSON.stringify(r.body)}`);
        assert.match(r.body.cause, cause, `${endpoint} ${JSON.stringify(body)}`);
      }
      assert.deepEqual((await s.admin('get_all_models')).body, ['bad-model:1'], 'nothing refused was registered');
    } finally {
      await s.close();
    }
  });
});
