/**
 * The Kubernetes backend against the in-repo API server (test/helpers/fake-kube/): objects made
 * and valid, scaling through the scale subresource, a rolling version switch, deletion, an
 * unresponsive replica's pod deleted, a crashed container reported, and the watch re-listing
 * after 410 Gone.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { deploymentName } from '../../src/manager/kubernetes/names.ts';
import { SECRET_KEY } from '../../src/manager/kubernetes/objects.ts';
import { replicaSecret } from '../../src/rpc/replica-auth.ts';
import type { Obj } from '../helpers/fake-kube-api.ts';
import { NS, REPLICA_KEY, startRig, until, version, type Rig } from '../helpers/fake-kube/rig.ts';

function everyReceivedValid(rig: Rig): void {
  const bad = rig.fake.received.filter((r) => r.problems.length);
  assert.deepEqual(bad.map((b) => `${b.method} ${b.path}: ${b.problems.join('; ')}`), []);
  assert.ok(rig.fake.received.length > 0);
}

describe('KubernetesManager against the test API server', () => {
  let rig: Rig;
  const exits: Array<[string, string, string]> = [];
  const stopping: string[] = [];
  before(async () => {
    rig = await startRig();
    rig.manager.on('replica-exit', (id, reason, cause) => exits.push([id, reason, cause]));
    rig.manager.on('replica-stopping', (id) => stopping.push(id));
    await rig.manager.start(new Map());
  });
  after(async () => {
    everyReceivedValid(rig);
    await rig.close();
  });

  test('deploying a version makes a valid Deployment, Service, Secret and artifact ConfigMap, and its pods become READY', async () => {
    const v1 = version(rig.dir, 'm', '1');
    await rig.manager.apply('m', [{ version: v1, replicas: 2 }]);
    assert.equal(await rig.manager.waitReady('m', '1', 2, 20_000), true);
    const name = deploymentName('m', '1');
    const d = rig.fake.store.get('deployments', NS, name)!;
    assert.equal(d.spec.replicas, 2);
    assert.equal(d.metadata.labels?.['app.kubernetes.io/managed-by'], 'clipper');
    assert.equal(d.metadata.labels?.['clipper.io/model'], 'm');
    assert.equal(d.metadata.labels?.['clipper.io/version'], '1');
    const pod = d.spec.template.spec;
    const c = pod.containers[0];
    assert.equal(c.image, 'clipper-runtime:test');
    assert.deepEqual(c.command.slice(0, 2), ['node', '--import']);
    assert.match(c.command.at(-1), /\/app\/src\/runtimes\/js\/main\.ts$/);
    assert.deepEqual(c.resources, { requests: { cpu: '500m', memory: '64Mi' }, limits: { cpu: '500m', memory: '64Mi' } });
    const env = Object.fromEntries(c.env.map((e: { name: string; value?: string; valueFrom?: unknown }) => [e.name, e.value ?? e.valueFrom]));
    assert.deepEqual(env.POD_NAME, { fieldRef: { fieldPath: 'metadata.name' } });
    assert.equal(env.CLIPPER_REPLICA_ID, 'pod/$(POD_NAME)');
    assert.equal(env.CLIPPER_MODEL_PATH, '/model/model');
    assert.equal(env.CLIPPER_IP, `clipper-frontend.${NS}.svc`);
    assert.equal(env.CLIPPER_READY_FILE, '/var/run/clipper/ready');
    assert.deepEqual(env.CLIPPER_REPLICA_SECRET, { secretKeyRef: { name: `${name}-auth`, key: SECRET_KEY } });
    assert.ok(c.readinessProbe.exec && c.livenessProbe.exec, 'exec probes');
    assert.equal(pod.initContainers[0].name, 'artifact');
    // The replica secret is the version-wide one, in a Secret rather than the Deployment.
    const secret = rig.fake.store.get('secrets', NS, `${name}-auth`)!;
    assert.equal(Buffer.from((secret.data as Record<string, string>)[SECRET_KEY]!, 'base64').toString(), replicaSecret(REPLICA_KEY, '*', 'm', '1'));
    assert.ok(rig.fake.store.get('services', NS, name));
    const maps = rig.fake.store.list('configmaps', NS);
    assert.equal(maps.length, 1);
    assert.equal(maps[0]!.immutable, true);
    // What reached the server is what was built: nothing lost in client-node's serialisation.
    const sent = rig.fake.received.find((r) => r.method === 'POST' && r.object.kind === 'Deployment')!.object;
    assert.deepEqual(sent.spec, { ...d.spec });
    const replicas = rig.manager.replicas();
    assert.equal(replicas.length, 2);
    for (const r of replicas) {
      assert.match(r.replicaId, /^pod\/clipper-m-1-/);
      assert.equal(r.state, 'READY');
      assert.equal(r.machine, 'fake-node-1');
      assert.deepEqual(r.limits, { cpus: 0.5, memoryMb: 64 });
    }
    assert.equal(rig.manager.markReady(replicas[0]!.replicaId, 'm', '1'), replicas[0]!.replicaId);
    assert.equal(rig.manager.markReady(replicas[0]!.replicaId, 'm', '2'), undefined, 'a pod of another version');
  });

  test('replica counts change through the scale subresource', async () => {
    const v1 = version(rig.dir, 'm', '1');
    const before = rig.fake.scaleRequests().length;
    await rig.manager.apply('m', [{ version: v1, replicas: 3 }]);
    const scale = rig.fake.scaleRequests().slice(before);
    assert.equal(scale.length, 1);
    assert.equal(scale[0]!.method, 'PATCH');
    assert.equal(scale[0]!.path, `/apis/apps/v1/namespaces/${NS}/deployments/${deploymentName('m', '1')}/scale`);
    assert.equal(scale[0]!.contentType, 'application/merge-patch+json');
    assert.deepEqual(scale[0]!.body, { spec: { replicas: 3 } });
    assert.equal(await rig.manager.waitReady('m', '1', 3, 20_000), true);
    // Down to 1: the two chosen pods leave rotation first, then go with cause 'stopped'.
    stopping.length = 0;
    exits.length = 0;
    await rig.manager.apply('m', [{ version: v1, replicas: 1 }]);
    assert.equal(await rig.manager.waitStopped('m', '1', 1, 20_000), true);
    assert.equal(stopping.length, 2);
    await until(() => exits.length === 2, 'two replica-exit events');
    assert.deepEqual(exits.map((e) => e.slice(1)), [['scaled down', 'stopped'], ['scaled down', 'stopped']]);
    assert.deepEqual(new Set(exits.map((e) => e[0])), new Set(stopping), 'the pods removed are the ones taken out of rotation');
    assert.equal(rig.fake.store.get('deployments', NS, deploymentName('m', '1'))!.spec.replicas, 1);
  });

  test('a version switch scales the new version up and waits for it before scaling the old one down', async () => {
    const v1 = version(rig.dir, 'm', '1');
    const v2 = version(rig.dir, 'm', '2');
    await rig.manager.apply('m', [{ version: v1, replicas: 2 }]);
    assert.equal(await rig.manager.waitReady('m', '1', 2, 20_000), true);
    const old = deploymentName('m', '1');
    const next = deploymentName('m', '2');
    rig.fake.cluster.heldNotReady.add(next);
    const scalesBefore = rig.fake.scaleRequests().length;
    // Targets as the ReplicaController orders them: the new current first, the old one kept warm.
    const applied = rig.manager.apply('m', [{ version: v2, replicas: 2 }, { version: v1, replicas: 1 }]);
    await until(() => rig.fake.store.list('pods', NS).filter((p) => p.metadata.labels?.['app.kubernetes.io/instance'] === next && p.status?.phase === 'Running').length === 2, 'the new pods running');
    assert.equal(rig.manager.isStarting('m', '2'), true);
    assert.equal(rig.fake.store.get('deployments', NS, old)!.spec.replicas, 2, 'the old version keeps its replicas while the new one is not ready');
    assert.equal(rig.fake.scaleRequests().slice(scalesBefore).length, 0);
    rig.fake.cluster.heldNotReady.delete(next);
    await applied;
    const ready = (p: Obj) => (p.status?.conditions ?? []).some((c: { type: string; status: string }) => c.type === 'Ready' && c.status === 'True');
    assert.equal(rig.fake.store.list('pods', NS).filter((p) => p.metadata.labels?.['app.kubernetes.io/instance'] === next && ready(p)).length, 2);
    const scales = rig.fake.scaleRequests().slice(scalesBefore);
    assert.deepEqual(scales.map((s) => [s.path.split('/').at(-2), s.body]), [[old, { spec: { replicas: 1 } }]]);
    assert.equal(await rig.manager.waitStopped('m', '1', 1, 20_000), true);
  });

  test('a version no longer targeted is deleted with its Service, Secret and ConfigMaps', async () => {
    const v2 = version(rig.dir, 'm', '2');
    await rig.manager.apply('m', [{ version: v2, replicas: 2 }]);
    const old = deploymentName('m', '1');
    assert.equal(rig.fake.store.get('deployments', NS, old), undefined);
    assert.equal(rig.fake.store.get('services', NS, old), undefined);
    assert.equal(rig.fake.store.get('secrets', NS, `${old}-auth`), undefined);
    assert.deepEqual(rig.fake.store.list('configmaps', NS).filter((c) => c.metadata.labels?.['app.kubernetes.io/instance'] === old), []);
    assert.equal(await rig.manager.waitStopped('m', '1', 0, 20_000), true);
    assert.equal(rig.manager.replicas().filter((r) => r.modelVersion === '1').length, 0);
  });

  test('markUnresponsive deletes the pod; the Deployment replaces it', async () => {
    assert.equal(await rig.manager.waitReady('m', '2', 2, 20_000), true);
    const victim = rig.manager.replicas().find((r) => r.modelVersion === '2')!.replicaId;
    exits.length = 0;
    rig.manager.markUnresponsive(victim, 'silent for 5000 ms');
    assert.equal(rig.manager.replicas().find((r) => r.replicaId === victim)?.state, 'UNRESPONSIVE');
    await until(() => exits.some((e) => e[0] === victim), 'the pod to go');
    assert.deepEqual(exits.find((e) => e[0] === victim)!.slice(1), ['unresponsive: silent for 5000 ms', 'stopped']);
    assert.ok(rig.fake.requests.some((r) => r.method === 'DELETE' && r.path.endsWith(`/pods/${victim.slice(4)}`)));
    assert.equal(await rig.manager.waitReady('m', '2', 2, 20_000), true);
    assert.ok(!rig.manager.replicas().some((r) => r.replicaId === victim));
  });

  test('a crashed container is reported as an exit with its reason, and counted as a restart', async () => {
    const r = rig.manager.replicas().find((x) => x.modelVersion === '2')!;
    exits.length = 0;
    rig.fake.cluster.crash(NS, r.replicaId.slice(4), { exitCode: 137, reason: 'OOMKilled' });
    await until(() => exits.length === 1, 'the exit event');
    assert.deepEqual(exits[0], [r.replicaId, 'out of memory (limit 64 MiB)', 'killed']);
    const now = rig.manager.replicas().find((x) => x.replicaId === r.replicaId)!;
    assert.equal(now.restarts, 1);
    assert.equal(now.lastExit?.reason, 'out of memory (limit 64 MiB)');
  });

  test('logs come from the pod log API', async () => {
    const logs = await rig.manager.logs('m', '2', undefined, 10);
    assert.equal(logs.length, 2);
    for (const l of logs) assert.match(l.lines[0]!, /^pod clipper-m-2-.* started on fake-node-1$/);
    await assert.rejects(rig.manager.logs('m', '2', 'pod/nope', 10), /no pod/);
  });

  test('the watches list again after 410 Gone and keep the state current', async () => {
    const before = rig.manager.relists;
    rig.fake.expireWatches();
    await until(() => rig.manager.relists.pods > before.pods && rig.manager.relists.deployments > before.deployments, 're-lists after 410');
    assert.ok(rig.logs.some((l) => l.includes('410 Gone')));
    const v2 = version(rig.dir, 'm', '2');
    await rig.manager.apply('m', [{ version: v2, replicas: 3 }]);
    assert.equal(await rig.manager.waitReady('m', '2', 3, 20_000), true, 'pods seen through the new watch');
  });

  test('changed limits update the Deployment (a rolling update), keeping its replica count', async () => {
    const v2 = version(rig.dir, 'm', '2', { memoryMb: 128 });
    await rig.manager.apply('m', [{ version: v2, replicas: 3 }]);
    const d = rig.fake.store.get('deployments', NS, deploymentName('m', '2'))!;
    assert.equal(d.spec.template.spec.containers[0].resources.limits.memory, '128Mi');
    assert.equal(d.spec.replicas, 3);
    assert.ok(rig.fake.requests.some((r) => r.method === 'PUT' && r.path.endsWith(`/deployments/${deploymentName('m', '2')}`)));
    await until(() => rig.manager.replicas().filter((r) => r.modelVersion === '2' && r.limits.memoryMb === 128 && r.state === 'READY').length === 3, 'the rolled pods');
  });
});

describe('the test API server', () => {
  test('rejects an invalid object with 422 and a metav1 Status, a stale resourceVersion with 409', async () => {
    const rig = await startRig();
    try {
      const post = (body: unknown) => fetch(`${rig.fake.url}/apis/apps/v1/namespaces/${NS}/deployments`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
      const bad = await post({ apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'x' }, spec: { template: {} } });
      assert.equal(bad.status, 422);
      const st = await bad.json() as { kind: string; reason: string; code: number; message: string };
      assert.equal(st.kind, 'Status');
      assert.equal(st.reason, 'Invalid');
      assert.match(st.message, /selector/);
      const good: Obj = { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'x' }, spec: { selector: { matchLabels: { a: 'b' } }, template: { metadata: { labels: { a: 'b' } }, spec: { containers: [{ name: 'c', image: 'i' }] } } } };
      assert.equal((await post(good)).status, 201);
      assert.equal((await post(good)).status, 409);
      const put = await fetch(`${rig.fake.url}/apis/apps/v1/namespaces/${NS}/deployments/x`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ ...good, metadata: { name: 'x', resourceVersion: '1' } }) });
      assert.equal(put.status, 409);
      assert.equal(((await put.json()) as { reason: string }).reason, 'Conflict');
      const missing = await fetch(`${rig.fake.url}/api/v1/namespaces/${NS}/pods/nope`);
      assert.equal(missing.status, 404);
      assert.equal(((await missing.json()) as { reason: string }).reason, 'NotFound');
    } finally {
      await rig.close();
    }
  });
});
