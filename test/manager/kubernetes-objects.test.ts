/** The pure parts of the Kubernetes backend: names, the objects of a version, the artifact's packing and rebuild, the probes, the rendered manifests. */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, utimesSync, writeFileSync, readlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { manifestObjects, renderManifests, toYaml } from '../../src/cli/k8s-render.ts';
import { MANIFEST_KEY, MODEL_DIR, PARTS_DIR, PART_BYTES, REBUILD_SCRIPT, packArtifact } from '../../src/manager/kubernetes/artifact.ts';
import { deploymentName, labelValue } from '../../src/manager/kubernetes/names.ts';
import { LIVENESS_SCRIPT, READY_FILE, artifactConfigMaps, versionObjects, type ObjectSettings } from '../../src/manager/kubernetes/objects.ts';
import { objectProblems } from '../../src/manager/kubernetes/validate.ts';
import { RUNTIMES } from '../../src/registry/types.ts';
import { version } from '../helpers/fake-kube/rig.ts';

const SETTINGS: ObjectSettings = {
  namespace: 'ns', image: 'clipper-runtime:test', imagePullPolicy: 'IfNotPresent', terminationGraceSeconds: 3, startTimeoutMs: 60_000,
  rpc: { host: 'clipper-frontend.ns.svc', port: 7000, auth: { replicaKey: Buffer.alloc(32, 1), serverKey: 'k'.repeat(40) } },
};

test('deployment names are DNS-1123 labels; lossy or long ones get a hash', () => {
  const cases: Array<[string, string, RegExp]> = [
    ['m', '1', /^clipper-m-1$/],
    ['My_Model', 'v1.2', /^clipper-my-model-v1-2-[0-9a-f]{6}$/],
    ['x'.repeat(80), '1', /^clipper-x+-[0-9a-f]{6}$/],
    ['--', '__', /^clipper-[0-9a-f]{6}$/],
  ];
  for (const [m, v, re] of cases) {
    const n = deploymentName(m, v);
    assert.match(n, re, `${m}:${v} → ${n}`);
    assert.ok(n.length <= 46 && /^[a-z]([-a-z0-9]*[a-z0-9])?$/.test(n), n);
  }
  assert.notEqual(deploymentName('My_Model', 'v1.2'), deploymentName('my-model', 'v1-2'));
  assert.equal(labelValue('abc.1'), 'abc.1');
  assert.match(labelValue('a b/c'), /^a_b_c-[0-9a-f]{6}$/);
  assert.ok(labelValue('y'.repeat(100)).length <= 63);
});

test('the objects of a version are valid for every runtime', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'k8s-obj-'));
  try {
    for (const runtime of RUNTIMES) {
      const v = version(dir, 'Some Model', '1.0', { runtime, containerName: runtime === 'image' ? 'example/model:1' : runtime === 'command' ? 'my-server --flag' : '' });
      const packed = await packArtifact(v.artifactPath, 1 << 20);
      const objs = versionObjects(v, SETTINGS, 2, { root: packed.manifest.root, keys: packed.parts.map((p) => Object.keys(p.data)) });
      for (const o of [objs.deployment, objs.service, objs.secret, ...artifactConfigMaps(v, SETTINGS, packed)]) {
        assert.deepEqual(objectProblems(o), [], `${runtime}: ${o?.kind}`);
      }
      const c = objs.deployment.spec!.template.spec!.containers[0]!;
      if (runtime === 'image') {
        assert.equal(c.image, 'example/model:1');
        assert.equal(c.command, undefined);
        assert.equal(c.livenessProbe, undefined, 'a plain container keeps no ready file');
      } else {
        assert.equal(c.image, 'clipper-runtime:test');
        assert.ok(c.livenessProbe && c.readinessProbe);
      }
      const env = Object.fromEntries((c.env ?? []).map((e) => [e.name, e.value]));
      assert.equal(env.CLIPPER_RPC_SERVER_KEY, 'k'.repeat(40));
      assert.equal(env.CLIPPER_IP, 'clipper-frontend.ns.svc');
      assert.equal(env.CLIPPER_PORT, '7000');
    }
    // Nothing that the pods run with changes → the same spec hash; a change → another.
    const v = version(dir, 'm', '1');
    const hash = (x: typeof v) => versionObjects(x, SETTINGS, 1, undefined).deployment.metadata!.annotations!['clipper.io/spec-hash'];
    assert.equal(hash(v), hash({ ...v }));
    assert.equal(hash(v), versionObjects(v, SETTINGS, 5, undefined).deployment.metadata!.annotations!['clipper.io/spec-hash'], 'the replica count is not part of it');
    assert.notEqual(hash(v), hash({ ...v, cpus: 2 }));
    assert.notEqual(hash(v), versionObjects(v, { ...SETTINGS, rpc: { ...SETTINGS.rpc, auth: { replicaKey: Buffer.alloc(32, 2), serverKey: undefined } } }, 1, undefined).deployment.metadata!.annotations!['clipper.io/spec-hash'], 'new RPC keys roll the pods');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('an artifact split over several ConfigMaps is rebuilt byte for byte by the initContainer script', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'k8s-art-'));
  try {
    const art = join(dir, 'model');
    mkdirSync(join(art, 'sub', 'deeper'), { recursive: true });
    const big = Buffer.alloc(PART_BYTES * 2 + 123);
    for (let i = 0; i < big.length; i++) big[i] = (i * 31) % 251;
    writeFileSync(join(art, 'big.bin'), big);
    writeFileSync(join(art, 'sub', 'deeper', 'x.txt'), 'hello');
    writeFileSync(join(art, 'empty'), '');
    symlinkSync('sub/deeper/x.txt', join(art, 'link'));
    const packed = await packArtifact(art, 10 << 20);
    assert.equal(packed.parts.length, 3);
    await assert.rejects(packArtifact(art, 1000), /over 1000 bytes/);
    // Lay the parts out as the projected volume would, then run the script with node.
    const parts = join(dir, 'parts');
    const out = join(dir, 'out');
    mkdirSync(out);
    writeFileSync(join(dir, MANIFEST_KEY), JSON.stringify(packed.manifest));
    mkdirSync(parts);
    writeFileSync(join(parts, MANIFEST_KEY), JSON.stringify(packed.manifest));
    packed.parts.forEach((p, i) => {
      mkdirSync(join(parts, String(i)));
      for (const [k, b] of Object.entries(p.data)) writeFileSync(join(parts, String(i), k), b);
    });
    const script = REBUILD_SCRIPT.replace(JSON.stringify(PARTS_DIR), JSON.stringify(parts)).replace(JSON.stringify(MODEL_DIR), JSON.stringify(out));
    execFileSync(process.execPath, ['-e', script]);
    assert.ok(readFileSync(join(out, 'model', 'big.bin')).equals(big));
    assert.equal(readFileSync(join(out, 'model', 'sub', 'deeper', 'x.txt'), 'utf8'), 'hello');
    assert.equal(readFileSync(join(out, 'model', 'empty'), 'utf8'), '');
    assert.equal(readlinkSync(join(out, 'model', 'link')), 'sub/deeper/x.txt');
    // A corrupted part fails the initContainer.
    writeFileSync(join(parts, '1', Object.keys(packed.parts[1]!.data)[0]!), 'garbage');
    rmSync(out, { recursive: true });
    mkdirSync(out);
    assert.notEqual(spawnSync(process.execPath, ['-e', script]).status, 0);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the liveness probe passes while the ready file is touched and fails when it goes stale or away', () => {
  const dir = mkdtempSync(join(tmpdir(), 'k8s-probe-'));
  try {
    const file = join(dir, 'ready');
    const script = LIVENESS_SCRIPT.replace('/var/run/clipper/liveness-mark', join(dir, 'mark'));
    const probe = () => spawnSync('/bin/sh', ['-c', script], { env: { CLIPPER_READY_FILE: file } }).status;
    assert.equal(probe(), 1, 'no ready file');
    writeFileSync(file, '');
    assert.equal(probe(), 0, 'first probe after registering');
    // The mark is now; a ready file last touched before it is stale. Timestamps are set, not waited for.
    const now = Date.now() / 1000;
    utimesSync(file, now - 30, now - 30);
    assert.equal(probe(), 1, 'not touched since the previous probe');
    utimesSync(join(dir, 'mark'), now - 20, now - 20);
    utimesSync(file, now - 5, now - 5);
    assert.equal(probe(), 0, 'touched since the previous probe');
    assert.equal(READY_FILE, '/var/run/clipper/ready');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the rendered manifests are valid objects, as a JSON List and as YAML', () => {
  const objects = manifestObjects({ namespace: 'prod', adminToken: 't' });
  assert.deepEqual(objects.map((o) => o.kind), ['Namespace', 'ServiceAccount', 'Role', 'RoleBinding', 'Secret', 'Service', 'StatefulSet', 'Service', 'Deployment']);
  for (const o of objects) assert.deepEqual(objectProblems(o), [], `${o.kind} ${o.metadata.name}`);
  const list = JSON.parse(renderManifests({ namespace: 'prod', adminToken: 't' })) as { kind: string; items: unknown[] };
  assert.equal(list.kind, 'List');
  assert.deepEqual(list.items, JSON.parse(JSON.stringify(objects)));
  const frontend = objects.find((o) => o.kind === 'Deployment') as unknown as { spec: { template: { spec: { containers: Array<{ args: string[] }> } } } };
  const args = frontend.spec.template.spec.containers[0]!.args.join(' ');
  assert.match(args, /start .*--store redis:\/\/clipper-redis:6379\/0 --backend kubernetes --kube-namespace prod/);
  const role = objects.find((o) => o.kind === 'Role') as unknown as { rules: Array<{ resources: string[] }> };
  const resources = role.rules.flatMap((r) => r.resources);
  for (const r of ['deployments', 'deployments/scale', 'services', 'pods', 'pods/log', 'configmaps', 'secrets']) assert.ok(resources.includes(r), r);
  assert.equal(toYaml({ a: [{ b: 1, c: ['x'] }, 'y'], d: {}, e: 'with "quotes"\n' }, 0), 'a:\n- b: 1\n  c:\n  - "x"\n- "y"\nd: {}\ne: "with \\"quotes\\"\\n"\n');
});
