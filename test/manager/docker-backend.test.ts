/**
 * The Docker backend against a real, private dockerd: the runtime image is built offline once
 * for this file, replicas register with a real RpcServer and answer predictions, and the engine
 * is asked what it was told (limits, labels) and what happened (exit, OOM, logs, removal).
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { rmSync, writeFileSync } from 'node:fs';
import { createServer, connect, type AddressInfo, type Socket } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fingerprint, type ReplicaSpec } from '../../src/manager/backend.ts';
import { DockerBackend, LABELS } from '../../src/manager/docker/docker-backend.ts';
import { DockerEngine, isEngineStatus } from '../../src/manager/docker/engine-client.ts';
import { TS_LOADER_IN_IMAGE, buildRuntimeImage } from '../../src/manager/docker/image-build.ts';
import { INPUT_TYPE_CODE } from '../../src/registry/input-types.ts';
import type { ModelVersion } from '../../src/registry/types.ts';
import type { Replica } from '../../src/rpc/replica.ts';
import { RpcServer } from '../../src/rpc/router-server.ts';
import { startDockerd, whyNoDockerd } from '../helpers/dockerd.ts';
import { tempDir, waitFor, writeJsModel } from '../helpers/server.ts';

const dockerd = await startDockerd();
const IMAGE = 'clipper-runtime:test';
const SLOW = 180_000; // a slow machine starts a container in seconds; allow minutes

describe('DockerBackend against a private dockerd', { skip: dockerd ? false : `no private dockerd: ${whyNoDockerd()}`, timeout: 20 * 60_000 }, () => {
  const host = dockerd?.host ?? '';
  const owner = `test-${randomBytes(4).toString('hex')}`;
  const dir = tempDir('clipper-docker-');
  const logDir = join(dir, 'logs');
  const backends: DockerBackend[] = [];
  let engine: DockerEngine;
  let rpc: RpcServer;
  let python = false;

  const backend = (o = owner) => {
    const b = new DockerBackend({ dockerHost: host, image: IMAGE, owner: o, logDir });
    backends.push(b);
    return b;
  };
  const version = (name: string, artifactPath: string, over: Partial<ModelVersion> = {}): ModelVersion => ({
    name, version: '1', inputType: 'strings', labels: [], runtime: 'js', containerName: '', artifactPath,
    artifactHash: `hash-${name}`, batchSize: 0, replicas: 1, cpus: 0.5, memoryMb: 128, createdAt: Date.now(), ...over,
  });
  const spec = (v: ModelVersion, index = 0): ReplicaSpec => ({
    replicaId: `${v.name}:${v.version}#${index}`, version: v, limits: { cpus: v.cpus, memoryMb: v.memoryMb }, rpc: { host: '127.0.0.1', port: rpc.boundPort },
  });
  /** Subscribe before starting: resolves when the replica registers over RPC. */
  const registered = (replicaId: string) => new Promise<Replica>((resolve, reject) => {
    const timer = setTimeout(() => { rpc.off('ready', on); reject(new Error(`${replicaId} did not register within ${SLOW} ms`)); }, SLOW);
    const on = (r: Replica) => {
      if (r.replicaId !== replicaId) return;
      clearTimeout(timer);
      rpc.off('ready', on);
      resolve(r);
    };
    rpc.on('ready', on);
  });
  const containerOf = async (replicaId: string) => {
    const [c] = await engine.listContainers({ all: true, labels: [`${LABELS.replica}=${replicaId}`] });
    return c;
  };
  const predictOne = async (r: Replica, input: string) => {
    const [out] = await rpc.predict(r, INPUT_TYPE_CODE.strings, [Buffer.from(input)]);
    assert.ok(out?.ok, `prediction failed: ${out?.value.toString()}`);
    return out.value.toString();
  };

  before(async () => {
    engine = new DockerEngine(host);
    const built = await buildRuntimeImage({ dockerHost: host, tag: IMAGE, log: (m) => console.log(m) });
    python = built.python;
    rpc = new RpcServer({ host: '127.0.0.1', port: 0, heartbeatTimeoutMs: 10_000, predictTimeoutMs: 60_000 });
    await rpc.start();
  }, { timeout: 15 * 60_000 });

  after(async () => {
    for (const b of backends) await b.close().catch(() => {});
    await rpc?.close().catch(() => {});
    engine?.close();
    await dockerd?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('runs a js replica that registers and answers over RPC, with its limits and labels in the engine', { timeout: SLOW * 2 }, async () => {
    const b = backend();
    const v = version('echo', writeJsModel("console.error('echo model loaded');\nexport function predict(inputs) { return inputs.map((x) => 'echo:' + x); }\n", join(dir, 'echo')));
    const s = spec(v);
    const ready = registered(s.replicaId);
    const h = await b.start(s);
    const replica = await ready;
    assert.equal(await predictOne(replica, 'x'), 'echo:x');

    const c = await engine.inspectContainer((await containerOf(s.replicaId))!.Id);
    assert.equal(c.HostConfig.NanoCpus, 0.5e9);
    assert.equal(c.HostConfig.Memory, 128 * 1024 * 1024);
    assert.equal(c.HostConfig.MemorySwap, 128 * 1024 * 1024);
    assert.equal(c.HostConfig.NetworkMode, 'host');
    assert.deepEqual(
      Object.fromEntries(Object.values(LABELS).map((k) => [k, c.Config.Labels?.[k]])),
      { [LABELS.owner]: owner, [LABELS.model]: 'echo', [LABELS.version]: '1', [LABELS.replica]: s.replicaId, [LABELS.fingerprint]: fingerprint(s) },
    );
    assert.match(c.Name, /^\/clipper-echo-1-0-[0-9a-f]{6}$/);
    assert.deepEqual(h.enforcement, { cpu: 'docker', memory: 'docker' });
    assert.equal(h.machine, (await engine.info()).Name);

    const st = (await waitFor(async () => { const x = await h.stats(); return x && x.cpuSeconds > 0 ? x : undefined; }, SLOW, 'stats'))!;
    assert.ok(st.rssBytes > 1024 * 1024 && st.rssBytes < 128 * 1024 * 1024, `rss ${st.rssBytes}`);
    await waitFor(async () => (await h.logs(20)).includes('echo model loaded'), SLOW, 'the model output in the engine logs');

    await engine.killContainer(c.Id);
    const exit = await h.exited;
    assert.deepEqual(exit, { reason: 'exited with code 137 (SIGKILL)', oom: false, cause: 'killed' });
    assert.equal(await containerOf(s.replicaId), undefined, 'the exited container was removed');
    assert.ok((await h.logs(20)).includes('echo model loaded'), 'logs are read from the saved file after exit');
    const past = (await b.pastLogs('echo', '1', s.replicaId, 20)) ?? [];
    assert.ok(past.includes('echo model loaded'));
    assert.match(past[0] ?? '', /^=== container clipper-echo-1-0-[0-9a-f]{6} \([0-9a-f]{12}\): exited with code 137 \(SIGKILL\) ===$/);
    assert.equal(await h.stats(), undefined);
  });

  it('reports a replica killed over its memory limit as out of memory', { timeout: SLOW }, async () => {
    const b = backend();
    const v = version('hog', writeJsModel('const keep = [];\nfor (;;) keep.push(Buffer.alloc(4 << 20, 1));\n', join(dir, 'hog')), { memoryMb: 64, cpus: 0 });
    const h = await b.start(spec(v));
    assert.deepEqual(h.enforcement, { cpu: 'none set', memory: 'docker' });
    const exit = await h.exited;
    assert.equal(exit.oom, true, exit.reason);
    assert.equal(exit.reason, 'out of memory (limit 64 MiB)');
    assert.equal(await containerOf(spec(v).replicaId), undefined);
  });

  it('stops a replica gracefully; the command runtime runs a shell line in the runtime image', { timeout: SLOW * 2 }, async () => {
    const b = backend();
    const model = writeJsModel("export function predict(inputs) { return inputs.map((x) => 'cmd:' + x); }\n", join(dir, 'cmd'));
    const v = version('cmd', model, {
      runtime: 'command', cpus: 0, memoryMb: 0,
      containerName: `node --import ${TS_LOADER_IN_IMAGE} /app/src/runtimes/js/main.ts`,
    });
    const s = spec(v);
    const ready = registered(s.replicaId);
    const h = await b.start(s);
    assert.deepEqual(h.enforcement, { cpu: 'none set', memory: 'none set' });
    assert.equal(await predictOne(await ready, 'y'), 'cmd:y');
    await h.stop(10_000);
    assert.equal((await h.exited).reason, 'exited with code 0');
    assert.equal(await containerOf(s.replicaId), undefined);
  });

  it('the image runtime runs the named image with its own command', { timeout: SLOW * 2 }, async () => {
    const b = backend();
    // The runtime image's own CMD is the js runtime, so it serves as a model image here.
    const v = version('own', writeJsModel("export function predict(inputs) { return inputs.map((x) => 'own:' + x); }\n", join(dir, 'own')), {
      runtime: 'image', containerName: IMAGE, cpus: 0, memoryMb: 0,
    });
    const s = spec(v);
    const ready = registered(s.replicaId);
    const h = await b.start(s);
    const c = await engine.inspectContainer((await containerOf(s.replicaId))!.Id);
    assert.equal(c.Config.Image, IMAGE);
    assert.equal(await predictOne(await ready, 'z'), 'own:z');
    await h.stop(10_000);
  });

  it('over tcp://, a broken wait is re-established and the exit still reported', { timeout: SLOW * 2 }, async () => {
    // A TCP front for the engine's unix socket whose connections the test can cut.
    const conns = new Set<Socket>();
    const proxy = createServer((client) => {
      const upstream = connect(host.slice('unix://'.length));
      for (const s of [client, upstream]) {
        conns.add(s);
        s.on('close', () => conns.delete(s));
        s.on('error', () => {});
      }
      client.pipe(upstream).pipe(client);
    });
    await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
    try {
      const port = (proxy.address() as AddressInfo).port;
      const said: string[] = [];
      const b = new DockerBackend({ dockerHost: `tcp://127.0.0.1:${port}`, image: IMAGE, owner, logDir, log: (m) => said.push(m) });
      backends.push(b);
      const v = version('tcp', writeJsModel("export function predict(inputs) { return inputs; }\n", join(dir, 'tcp')), { cpus: 0, memoryMb: 0 });
      const s = spec(v);
      const ready = registered(s.replicaId);
      const h = await b.start(s);
      await ready;
      for (const c of conns) c.destroy();
      await waitFor(() => said.some((m) => m.includes('lost the wait on')), SLOW, 'the backend to notice the broken wait');
      await engine.killContainer((await containerOf(s.replicaId))!.Id);
      assert.equal((await h.exited).reason, 'exited with code 137 (SIGKILL)');
      await waitFor(async () => (await containerOf(s.replicaId)) === undefined, SLOW, 'the container to be removed');
    } finally {
      for (const c of conns) c.destroy();
      proxy.close();
    }
  });

  it('runs a python replica when the image has python3', { timeout: SLOW * 2 }, async (t) => {
    if (!python) return t.skip('the runtime image was built without python3');
    const b = backend();
    const model = tempDir('clipper-py-');
    writeFileSync(join(model, 'model.py'), 'def predict(inputs):\n    print("py model called", flush=True)\n    return [s.upper() for s in inputs]\n');
    const v = version('py', model, { runtime: 'python' });
    const s = spec(v);
    const ready = registered(s.replicaId);
    const h = await b.start(s);
    try {
      assert.equal(await predictOne(await ready, 'abc'), 'ABC');
    } finally {
      await h.stop(10_000);
      rmSync(model, { recursive: true, force: true });
    }
  });

  it('refuses to start without the runtime image, saying how to build it', async () => {
    const b = new DockerBackend({ dockerHost: host, image: 'clipper-runtime:absent', owner, logDir });
    backends.push(b);
    await assert.rejects(b.start(spec(version('none', join(dir, 'echo')))), /clipper-runtime:absent is not in the Docker engine.*clipper image build/);
  });

  it('discover() finds what an earlier backend of the same owner left, adopts or removes it; never another owner\'s', { timeout: SLOW * 3 }, async () => {
    const first = backend();
    const model = writeJsModel("export function predict(inputs) { return inputs.map((x) => 'left:' + x); }\n", join(dir, 'left'));
    const v = version('left', model, { cpus: 0.25, memoryMb: 96 });
    const [s0, s1] = [spec(v, 0), spec(v, 1)];
    const ready = [registered(s0.replicaId), registered(s1.replicaId)];
    await first.start(s0);
    await first.start(s1);
    await Promise.all(ready);
    // An exited container of the same owner: discover() removes it and keeps its output.
    const deadId = await engine.createContainer('clipper-dead-1-0-000000', {
      Image: IMAGE, Cmd: ['/bin/sh', '-c', 'echo bye from the dead; exit 3'],
      Labels: { [LABELS.owner]: owner, [LABELS.model]: 'dead', [LABELS.version]: '1', [LABELS.replica]: 'dead:1#0', [LABELS.fingerprint]: 'x' },
    });
    await engine.startContainer(deadId);
    await engine.waitContainer(deadId);
    await first.close(); // a frontend going away leaves its containers running

    const stranger = backend(`other-${owner}`);
    assert.deepEqual(await stranger.discover(), []);
    assert.equal((await engine.inspectContainer(deadId)).State.ExitCode, 3, 'another owner does not touch it');

    const second = backend();
    const found = await second.discover();
    assert.deepEqual(found.map((d) => [d.replicaId, d.modelName, d.modelVersion, d.fingerprint]).sort(), [
      [s0.replicaId, 'left', '1', fingerprint(s0)], [s1.replicaId, 'left', '1', fingerprint(s1)],
    ]);
    await assert.rejects(engine.inspectContainer(deadId), (e) => isEngineStatus(e, 404));
    assert.ok((await second.pastLogs('dead', '1', 'dead:1#0', 10))?.includes('bye from the dead'));

    const d0 = found.find((d) => d.replicaId === s0.replicaId)!;
    const h = d0.adopt();
    assert.equal(d0.adopt(), h, 'adopting twice gives the same handle');
    assert.deepEqual(h.enforcement, { cpu: 'docker', memory: 'docker' });
    assert.ok(await waitFor(() => h.stats(), SLOW, 'stats of the adopted container'));
    await h.stop(10_000);
    assert.equal((await h.exited).reason, 'exited with code 0');

    await found.find((d) => d.replicaId === s1.replicaId)!.remove();
    assert.equal(await containerOf(s1.replicaId), undefined);
    assert.deepEqual(await second.discover(), []);
  });

  it('machines() describes the engine', async () => {
    const [m] = await backend().machines();
    const info = await engine.info();
    assert.equal(m?.name, info.Name);
    assert.equal(m?.cores, info.NCPU);
    assert.equal(m?.memoryTotalBytes, info.MemTotal);
    assert.ok(m.memoryAvailableBytes > 0 && m.memoryAvailableBytes <= info.MemTotal);
  });

  it('close() leaves no container and no watcher behind', { timeout: SLOW }, async () => {
    for (const b of backends) await b.close();
    assert.deepEqual(await engine.listContainers({ all: true }), []);
  });
});
