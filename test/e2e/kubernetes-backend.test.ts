/**
 * `--backend kubernetes` end to end against the in-repo API server fake: deploying through the
 * admin API makes a Deployment and a Service, scaling goes through the scale subresource, and
 * status shows the pods the fake's kubelet runs. (No replica registers: the fake runs no containers.)
 */
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { FakeKubeApi } from '../helpers/fake-kube-api.ts';
import { NS, until } from '../helpers/fake-kube/rig.ts';
import { ECHO_MODEL, startTestServer, tempDir, writeJsModel, type TestServer } from '../helpers/server.ts';

describe('the kubernetes backend in a server', () => {
  let fake: FakeKubeApi;
  let s: TestServer;
  let dir: string;
  const saved = process.env.KUBECONFIG;

  before(async () => {
    fake = await FakeKubeApi.start();
    fake.createNamespace(NS);
    dir = tempDir('kubecfg-');
    process.env.KUBECONFIG = fake.writeKubeconfig(dir);
    s = await startTestServer({ backend: 'kubernetes', kubeNamespace: NS, readyTimeoutMs: 2000 });
  });
  after(async () => {
    await s?.close();
    await fake?.close();
    if (saved === undefined) delete process.env.KUBECONFIG;
    else process.env.KUBECONFIG = saved;
    rmSync(dir, { recursive: true, force: true });
  });

  it('deploys a version as a Deployment and Service, scales it through the scale subresource, and reports its pods', async () => {
    const added = await s.admin('add_model', { model_name: 'km', model_version: '1', input_type: 'strings', model_data_path: writeJsModel(ECHO_MODEL('k')), replicas: 1 });
    assert.equal(added.status, 200, JSON.stringify(added.body));
    const deployments = () => fake.store.list('deployments', NS) as Array<{ metadata: { name: string; labels: Record<string, string> }; spec: { replicas: number } }>;
    await until(() => deployments().length === 1, 'the Deployment');
    const d = deployments()[0]!;
    assert.equal(d.spec.replicas, 1);
    assert.ok(Object.values(d.metadata.labels).includes('km'), JSON.stringify(d.metadata.labels));
    assert.equal((fake.store.list('services', NS) as unknown[]).length, 1);
    assert.deepEqual(fake.received.filter((r) => r.problems.length), [], 'every object the backend sent is valid');

    const scaled = await s.admin('set_num_replicas', { model_name: 'km', num_replicas: 3 });
    assert.equal(scaled.status, 200, JSON.stringify(scaled.body));
    await until(() => deployments()[0]!.spec.replicas === 3, 'the Deployment to hold 3 replicas');
    assert.ok(fake.requests.some((r) => r.method === 'PATCH' && r.path.endsWith(`/deployments/${d.metadata.name}/scale`)), 'scaled through the scale subresource');

    await until(async () => ((await s.admin('get_all_containers', { verbose: true })).body as unknown[]).length === 3, 'three pods in the status');
    const status = (await s.admin('get_all_containers', { verbose: true })).body as Array<{ machine?: string }>;
    assert.equal(status.length, 3);
  });
});
