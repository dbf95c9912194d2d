/**
 * kubectl against the in-repo API server: it sees what the Kubernetes backend made, scales it
 * (PATCH of the scale subresource), lists pods by label, and applies the rendered manifests.
 * Skipped when kubectl is not installed.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { renderManifests } from '../../src/cli/k8s-render.ts';
import { deploymentName } from '../../src/manager/kubernetes/names.ts';
import { NS, startRig, until, version, type Rig } from '../helpers/fake-kube/rig.ts';

const run = promisify(execFile);
const KUBECTL = process.env.KUBECTL ?? '/usr/bin/kubectl';
const skip = existsSync(KUBECTL) ? false : `kubectl not found at ${KUBECTL}`;

describe('kubectl against the test API server', { skip }, () => {
  let rig: Rig;
  let kubeconfig: string;
  const kubectl = async (...args: string[]) => (await run(KUBECTL, ['--kubeconfig', kubeconfig, ...args], { timeout: 60_000 })).stdout;
  before(async () => {
    rig = await startRig();
    kubeconfig = rig.fake.writeKubeconfig(rig.dir);
    await rig.manager.start(new Map());
    await rig.manager.apply('m', [{ version: version(rig.dir, 'm', '1'), replicas: 2 }]);
    assert.equal(await rig.manager.waitReady('m', '1', 2, 20_000), true);
  });
  after(async () => {
    assert.deepEqual(rig.fake.received.filter((r) => r.problems.length).map((r) => r.problems), []);
    await rig.close();
  });

  test('kubectl get deployments -o json lists what the backend made', async () => {
    const list = JSON.parse(await kubectl('get', 'deployments', '-n', NS, '-o', 'json')) as { items: Array<{ metadata: { name: string }; spec: { replicas: number } }> };
    assert.deepEqual(list.items.map((d) => [d.metadata.name, d.spec.replicas]), [[deploymentName('m', '1'), 2]]);
  });

  test('kubectl get (a Table) prints the columns', async () => {
    const out = await kubectl('get', 'deployments', '-n', NS);
    assert.match(out, /^NAME\s+READY\s+UP-TO-DATE\s+AVAILABLE\s+AGE/m);
    assert.match(out, new RegExp(`^${deploymentName('m', '1')}\\s+2/2\\s+2\\s+2\\s`, 'm'));
  });

  test('kubectl scale changes the replica count through the scale subresource', async () => {
    const before = rig.fake.scaleRequests().length;
    await kubectl('scale', 'deployment', deploymentName('m', '1'), '--replicas=3', '-n', NS);
    const req = rig.fake.scaleRequests().slice(before);
    assert.equal(req.length, 1);
    assert.equal(req[0]!.method, 'PATCH');
    assert.equal(rig.fake.store.get('deployments', NS, deploymentName('m', '1'))!.spec.replicas, 3);
    // The backend sees the change through its watch.
    await until(() => rig.manager.replicas().length === 3, 'the third pod in the manager');
  });

  test('kubectl get pods -l selects the version\'s pods', async () => {
    const out = await kubectl('get', 'pods', '-n', NS, '-l', 'clipper.io/model=m,clipper.io/version=1', '-o', 'name');
    assert.equal(out.trim().split('\n').length, 3);
    assert.equal((await kubectl('get', 'pods', '-n', NS, '-l', 'clipper.io/version=2', '-o', 'name')).trim(), '');
    const table = await kubectl('get', 'pods', '-n', NS);
    assert.match(table, /Running/);
  });

  test('kubectl logs reads the pod log API', async () => {
    const pod = rig.manager.replicas()[0]!.replicaId.slice(4);
    assert.match(await kubectl('logs', pod, '-n', NS), /started on fake-node-1/);
  });

  test('kubectl apply of the rendered manifests (JSON List, then YAML) succeeds and every object is valid', async () => {
    const json = join(rig.dir, 'clipper.json');
    writeFileSync(json, renderManifests({ namespace: 'clipper', image: 'clipper-runtime:test', adminToken: 't' }));
    // --validate=false: client-side validation needs the server's OpenAPI documents, which this
    // server does not serve (it answers 404); it validates every object itself (422 when invalid).
    const out = await kubectl('apply', '--validate=false', '-f', json);
    for (const line of ['namespace/clipper created', 'serviceaccount/clipper-frontend created', 'role.rbac.authorization.k8s.io/clipper-frontend created',
      'rolebinding.rbac.authorization.k8s.io/clipper-frontend created', 'secret/clipper-admin created', 'service/clipper-redis created',
      'statefulset.apps/clipper-redis created', 'service/clipper-frontend created', 'deployment.apps/clipper-frontend created']) {
      assert.ok(out.includes(line), `${line} in:\n${out}`);
    }
    const yaml = join(rig.dir, 'clipper.yaml');
    writeFileSync(yaml, renderManifests({ namespace: 'clipper', image: 'clipper-runtime:test', adminToken: 't', frontendReplicas: 2, format: 'yaml' }));
    const again = await kubectl('apply', '--validate=false', '-f', yaml);
    assert.match(again, /deployment.apps\/clipper-frontend configured/);
    assert.match(again, /namespace\/clipper unchanged/);
    assert.equal(rig.fake.store.get('deployments', 'clipper', 'clipper-frontend')!.spec.replicas, 2);
    const sts = rig.fake.store.get('statefulsets', 'clipper', 'clipper-redis')!;
    assert.ok(sts.spec.template.spec.containers[0].args.includes('--appendonly'));
    const dry = await kubectl('apply', '--dry-run=client', '--validate=false', '-f', yaml, '-o', 'name');
    assert.equal(dry.trim().split('\n').length, 9);
  });
});
