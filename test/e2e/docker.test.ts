/**
 * The Docker backend end to end, on a private dockerd: deploy, predict, limits in the engine,
 * scale, a killed container restarted, set-version, and a frontend that dies and is started again
 * on the same data directory adopting its containers — none leaked.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { DockerEngine } from '../../src/manager/docker/engine-client.ts';
import { LABELS } from '../../src/manager/docker/docker-backend.ts';
import { buildRuntimeImage } from '../../src/manager/docker/image-build.ts';
import { SqliteStore } from '../../src/store/sqlite-store.ts';
import { startDockerd, whyNoDockerd, type TestDockerd } from '../helpers/dockerd.ts';
import { freePort } from '../helpers/ports.ts';
import { ECHO_MODEL, send, startTestServer, tempDir, waitFor, writeJsModel } from '../helpers/server.ts';

const IMAGE = 'clipper-runtime:e2e';
const dockerd: TestDockerd | undefined = await startDockerd();


/** A frontend in its own process, so the test can kill it as a crash would (its containers stay). */
async function startFrontendProcess(cfg: Record<string, unknown>): Promise<{ child: ChildProcess; adminUrl: string; queryUrl: string }> {
  const script = `import { startApp } from './src/app.ts';
    const app = await startApp(${JSON.stringify(cfg)});
    console.log(JSON.stringify({ adminUrl: app.adminUrl, queryUrl: app.queryUrl }));`;
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  const urls = await new Promise<{ adminUrl: string; queryUrl: string }>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const line = out.split('\n').find((l) => l.startsWith('{'));
      if (line) resolve(JSON.parse(line));
    });
    child.once('exit', (code) => reject(new Error(`frontend exited with ${code}`)));
  });
  return { child, ...urls };
}

describe('Docker backend end to end', { skip: dockerd ? false : `no private dockerd: ${whyNoDockerd()}` }, () => {
  let engine: DockerEngine;
  const dataDir = tempDir('clipper-docker-');
  let rpcPort: number;
  let crashed: ChildProcess | undefined;

  const containers = async (model: string) => (await engine.listContainers({ labels: [`${LABELS.model}=${model}`] }))
    .filter((c) => c.State === 'running')
    .map((c) => ({ id: c.Id, replica: c.Labels?.[LABELS.replica] ?? '' }))
    .sort((a, b) => a.replica.localeCompare(b.replica));

  before(async () => {
    engine = new DockerEngine(dockerd!.host);
    await buildRuntimeImage({ dockerHost: dockerd!.host, tag: IMAGE, python: false });
    rpcPort = await freePort();
  }, { timeout: 10 * 60_000 });

  after(async () => {
    crashed?.kill('SIGKILL');
    engine?.close();
    await dockerd?.stop();
  });

  it('deploys, predicts, enforces limits, scales, restarts a killed container and switches versions', { timeout: 5 * 60_000 }, async () => {
    const s = await startTestServer({ dataDir, backend: 'docker', dockerHost: dockerd!.host, dockerImage: IMAGE, rpcPort, stopGraceMs: 2000, readyTimeoutMs: 60_000 });
    try {
      await s.admin('add_app', { name: 'dk', input_type: 'strings', default_output: 'D', latency_slo_micros: 10_000_000 });
      const dep = await s.admin('add_model', {
        model_name: 'dk-model', model_version: '1', input_type: 'strings', model_data_path: writeJsModel(ECHO_MODEL('v1')), cpus: 0.5, memory_mb: 128,
      });
      assert.equal(dep.status, 200, JSON.stringify(dep.body));
      assert.equal(dep.body.ready, true);
      await s.admin('add_model_links', { app_name: 'dk', model_names: ['dk-model'] });
      assert.equal((await s.predict('dk', { input: 'a' })).body.output, 'v1:a');

      // Limits are visible in the engine, and status says Docker enforces them.
      const [first] = await containers('dk-model');
      const inspect = await engine.inspectContainer(first!.id);
      assert.equal(inspect.HostConfig.NanoCpus, 0.5e9);
      assert.equal(inspect.HostConfig.Memory, 128 * 1024 * 1024);
      const info = (await s.admin('get_container', { model_name: 'dk-model' })).body;
      assert.deepEqual(info.enforcement, { cpu: 'docker', memory: 'docker' });

      // Scale.
      const scaled = await s.admin('set_num_replicas', { model_name: 'dk-model', num_replicas: 2 });
      assert.equal(scaled.body.ready, true);
      assert.deepEqual((await containers('dk-model')).map((c) => c.replica), ['dk-model:1#0', 'dk-model:1#1']);

      // A container killed through the engine is restarted, and queries keep being answered.
      await engine.killContainer(first!.id);
      await waitFor(async () => {
        const c = (await s.admin('get_container', { model_name: 'dk-model', replica_id: 'dk-model:1#0' })).body;
        return c.restarts >= 1 && c.state === 'READY';
      }, 60_000, 'the killed container to be replaced');
      const now = await containers('dk-model');
      assert.equal(now.length, 2);
      assert.ok(!now.some((c) => c.id === first!.id), 'a new container took its place');
      for (let i = 0; i < 10; i++) assert.equal((await s.predict('dk', { input: `k${i}` })).body.output, `v1:k${i}`);
      const logs = await s.admin('get_replica_logs', { model_name: 'dk-model', replica_id: 'dk-model:1#0', tail: 20 });
      assert.equal(logs.status, 200);

      // A new version, then back: the old one stays warm in a container.
      await s.admin('add_model', { model_name: 'dk-model', model_version: '2', input_type: 'strings', model_data_path: writeJsModel(ECHO_MODEL('v2')), replicas: 1 });
      assert.equal((await s.predict('dk', { input: 'b' })).body.output, 'v2:b');
      await waitFor(async () => (await containers('dk-model')).length === 2, 30_000, 'v1 to shrink to its warm replica');
      assert.deepEqual((await containers('dk-model')).map((c) => c.replica), ['dk-model:1#0', 'dk-model:2#0']);
      const back = await s.admin('set_model_version', { model_name: 'dk-model', model_version: '1' });
      assert.equal(back.body.ready, true);
      assert.equal((await s.predict('dk', { input: 'c' })).body.output, 'v1:c');
    } finally {
      await s.close();
    }
    assert.deepEqual(await containers('dk-model'), [], 'a frontend that closes stops its containers');
  });

  it('a frontend that dies leaves its containers; the next one adopts those it wants and removes the rest', { timeout: 5 * 60_000 }, async () => {
    const cfg = { dataDir, backend: 'docker', dockerHost: dockerd!.host, dockerImage: IMAGE, rpcPort, queryPort: 0, adminPort: 0, grpcPort: 0, stopGraceMs: 2000 };
    const fe = await startFrontendProcess(cfg);
    crashed = fe.child;
    await waitFor(async () => (await containers('dk-model')).length === 3, 60_000, 'the first frontend to start v1 (2 replicas) and warm v2');
    const ok = await waitFor(async () => {
      const r = await send(`${fe.queryUrl}/dk/predict`, { input: 'x' });
      return r.body.output === 'v1:x' ? r : undefined;
    }, 60_000, 'the first frontend to serve');
    assert.equal(ok!.status, 200);
    const before = await containers('dk-model');
    await send(`${fe.adminUrl}/admin/set_num_replicas`, { model_name: 'dk-model', num_replicas: 3 });
    await waitFor(async () => (await containers('dk-model')).length === 4, 60_000, 'a third replica of v1');
    fe.child.kill('SIGKILL');
    await new Promise((r) => fe.child.once('exit', r));
    crashed = undefined;
    assert.equal((await containers('dk-model')).length, 4, 'the containers outlive a crashed frontend');

    // While it was down, an operator lowered v1 to 2 replicas in the registry: the next frontend
    // adopts #0, #1 and the warm v2, and removes #2.
    const store = new SqliteStore(join(dataDir, 'registry.sqlite'));
    await store.setReplicas('dk-model', '1', 2);
    await store.close();
    const s = await startTestServer({ ...cfg, backend: 'docker' as const });
    try {
      const adopted = await waitFor(async () => {
        const now = await containers('dk-model');
        return now.length === 3 ? now : undefined;
      }, 30_000, 'the unwanted replica to be removed');
      assert.deepEqual(adopted!.map((c) => c.replica), ['dk-model:1#0', 'dk-model:1#1', 'dk-model:2#0']);
      for (const c of before) assert.ok(adopted!.some((a) => a.id === c.id), `container ${c.replica} was adopted, not replaced`);
      await s.app.manager.waitReady('dk-model', '1', 2, 60_000);
      assert.equal((await s.predict('dk', { input: 'y' })).body.output, 'v1:y');
      const scaled = await s.admin('set_num_replicas', { model_name: 'dk-model', num_replicas: 1 });
      assert.equal(scaled.body.ready, true);
      assert.deepEqual((await containers('dk-model')).map((c) => c.replica), ['dk-model:1#0', 'dk-model:2#0']);
    } finally {
      await s.close();
    }
    const left = await engine.listContainers({ all: true });
    assert.deepEqual(left.map((c) => c.Names), [], 'no container leaked');
  });
});
