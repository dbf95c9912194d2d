/**
 * Several Docker engines as machines, each a private dockerd on this host (they share its
 * filesystem and network, which is fine here): the runtime image copied between engines, replicas
 * placed by headroom and spread, a tcp+TLS engine that gets the artifact copied into its
 * containers, a machine whose engine stops answering (its dockerd frozen with SIGSTOP, its
 * containers still running) going down with its replicas restarted elsewhere, and the leftover
 * removed once it answers again. The replicas register with a real RpcServer, driven by a real
 * Supervisor.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { LABELS } from '../../src/manager/docker/docker-backend.ts';
import { DockerEngine, isEngineStatus } from '../../src/manager/docker/engine-client.ts';
import { buildRuntimeImage } from '../../src/manager/docker/image-build.ts';
import { MachinesBackend } from '../../src/manager/docker/machines-backend.ts';
import { Supervisor } from '../../src/manager/supervisor.ts';
import { INPUT_TYPE_CODE } from '../../src/registry/input-types.ts';
import { textLogger } from '../../src/observability/log.ts';
import type { ModelVersion } from '../../src/registry/types.ts';
import type { Replica } from '../../src/rpc/replica.ts';
import { RpcServer } from '../../src/rpc/router-server.ts';
import { startDockerd, whyNoDockerd } from '../helpers/dockerd.ts';
import { freePort } from '../helpers/ports.ts';
import { createPki, whyNoOpenssl } from '../helpers/tls-certs.ts';
import { tempDir, waitFor, writeJsModel } from '../helpers/server.ts';

const IMAGE = 'clipper-runtime:multi';
const SLOW = 180_000;
const opensslMissing = whyNoOpenssl() !== '';

const a = await startDockerd();
const b = a ? await startDockerd() : undefined;
const tls = b && !opensslMissing ? await startTlsDockerd() : undefined;

/** A third daemon that also listens on tcp://127.0.0.1 and requires a client certificate. */
async function startTlsDockerd(): Promise<{ tcpHost: string; unixHost: string; clientCerts: string; stop(): Promise<void> } | undefined> {
  const pki = createPki();
  const d = await startDockerd({ tcp: { host: '127.0.0.1', port: await freePort(), ...pki.server('127.0.0.1', { ips: ['127.0.0.1'] }) } });
  if (!d) {
    pki.remove();
    return undefined;
  }
  return {
    tcpHost: d.tcpHost!, unixHost: d.host, clientCerts: pki.client('frontend').dir,
    stop: async () => {
      await d.stop();
      pki.remove();
    },
  };
}
const skip = !a || !b ? `no private dockerd: ${whyNoDockerd()}` : opensslMissing ? 'openssl is not installed' : !tls ? 'the TLS dockerd did not start' : false;

describe('MachinesBackend over three private dockerds', { skip, timeout: 20 * 60_000 }, () => {
  const owner = `multi-${randomBytes(4).toString('hex')}`;
  const dir = tempDir('clipper-multi-');
  const said: string[] = [];
  const exits: Array<{ id: string; reason: string; cause: string }> = [];
  const ready = new Map<string, Replica>();
  let rpc: RpcServer;
  let backend: MachinesBackend;
  let sup: Supervisor;
  const engines: Record<string, DockerEngine> = {};
  let frozen: number | undefined;

  const version = (name: string, over: Partial<ModelVersion> = {}): ModelVersion => ({
    name, version: '1', inputType: 'strings', labels: [], runtime: 'js', containerName: '',
    artifactPath: writeJsModel(`export function predict(inputs) { return inputs.map((x) => '${name}:' + x); }\n`, join(dir, name)),
    artifactHash: `hash-${name}`, batchSize: 0, replicas: 1, cpus: 0.5, memoryMb: 128, createdAt: Date.now(), ...over,
  });
  const ours = async (machine: string) => (await engines[machine]!.listContainers({ all: true, labels: [`${LABELS.owner}=${owner}`] }));
  const predictOne = async (replicaId: string, input: string) => {
    const r = ready.get(replicaId);
    assert.ok(r, `${replicaId} registered`);
    const [out] = await rpc.predict(r, INPUT_TYPE_CODE.strings, [Buffer.from(input)]);
    assert.ok(out?.ok, `prediction failed: ${out?.value.toString()}`);
    return out.value.toString();
  };
  const replica = (id: string) => sup.replicas().find((r) => r.replicaId === id);

  before(async () => {
    engines.a = new DockerEngine(a!.host);
    engines.b = new DockerEngine(b!.host);
    engines.t = new DockerEngine(tls!.unixHost);
    await buildRuntimeImage({ dockerHost: a!.host, tag: IMAGE, python: false, log: (m) => console.log(m) });
    rpc = new RpcServer({ host: '127.0.0.1', port: 0, heartbeatTimeoutMs: 60_000, predictTimeoutMs: 60_000 });
    await rpc.start();
    backend = new MachinesBackend({
      machines: [
        { name: 'a', host: a!.host },
        { name: 'b', host: b!.host },
        { name: 't', host: tls!.tcpHost, tls: { certPath: tls!.clientCerts } },
      ],
      image: IMAGE, owner, logDir: join(dir, 'logs'), health: { intervalMs: 300, downAfterMs: 3000 }, penaltyMs: 60_000,
      log: (m) => { said.push(m); console.log(m); },
    });
    sup = new Supervisor(backend, { rpc: { host: '127.0.0.1', port: rpc.boundPort }, stopGraceMs: 2000, startTimeoutMs: SLOW, logger: textLogger((m) => console.log(m)) });
    sup.on('replica-exit', (id, reason, cause) => exits.push({ id, reason, cause }));
    rpc.on('ready', (r: Replica) => {
      if (r.replicaId) ready.set(r.replicaId, r);
      sup.markReady(r.replicaId, r.modelName, r.modelVersion);
    });
  }, { timeout: 15 * 60_000 });

  after(async () => {
    if (frozen) process.kill(frozen, 'SIGCONT');
    await sup?.close().catch(() => {});
    await rpc?.close().catch(() => {});
    for (const e of Object.values(engines)) e.close();
    await Promise.all([a?.stop(), b?.stop(), tls?.stop()]);
    rmSync(dir, { recursive: true, force: true });
  });

  it('copies the image to the machines that lack it, places by headroom, spreads a version, and copies the artifact into a tcp+TLS machine\'s container', { timeout: SLOW * 3 }, async () => {
    // Machine a is taken: a container that is none of ours reserves all its cores.
    const cores = (await engines.a!.info()).NCPU;
    const hog = await engines.a!.createContainer('not-clipper', {
      Image: IMAGE, Cmd: ['node', '-e', 'setInterval(() => {}, 1e9)'], HostConfig: { NanoCpus: cores * 1e9, NetworkMode: 'none' },
    });
    await engines.a!.startContainer(hog);

    await sup.start(new Map([['spread', [{ version: version('spread'), replicas: 2 }]]]));
    assert.ok(await sup.waitReady('spread', '1', 2, SLOW), 'two replicas ready');
    const machines = sup.replicas().map((r) => r.machine).sort();
    assert.deepEqual(machines, ['b', 't'], 'one on each free machine, none on the taken one');
    for (const id of ['spread:1#0', 'spread:1#1']) assert.equal(await predictOne(id, 'x'), 'spread:x');

    for (const m of ['b', 't']) {
      assert.ok(said.some((s) => s.includes(`image ${IMAGE} is not on ${m}; copying it from a`)), `the image was copied to ${m}`);
      assert.ok(await engines[m]!.inspectImage(IMAGE));
    }
    const [onT] = await ours('t');
    const [onB] = await ours('b');
    assert.deepEqual((await engines.t!.inspectContainer(onT!.Id)).HostConfig.Binds ?? [], [], 'tcp+TLS: copied, not bind-mounted');
    assert.equal((await engines.b!.inspectContainer(onB!.Id)).HostConfig.Binds?.length, 1, 'unix socket: bind-mounted');

    const reports = await backend.machines();
    assert.deepEqual(reports.map((m) => [m.name, m.state]), [['a', 'up'], ['b', 'up'], ['t', 'up']]);
    assert.ok(reports.every((m) => m.cores === cores && m.memoryTotalBytes > 0));
  });

  it('a machine that stops answering goes down, its replica restarts elsewhere, and its leftover is removed when it answers again', { timeout: SLOW * 3 }, async () => {
    const onB = sup.replicas().find((r) => r.machine === 'b')!;
    const [left] = await ours('b');
    assert.ok(left);
    frozen = Number(readFileSync(join(b!.dir, 'pid'), 'utf8').trim());
    process.kill(frozen, 'SIGSTOP'); // the engine stops answering; its containers keep running

    await waitFor(() => exits.find((e) => e.id === onB.replicaId), SLOW, 'the replica on b to be reported gone');
    const exit = exits.find((e) => e.id === onB.replicaId)!;
    assert.match(exit.reason, /^machine b unreachable \(engine did not answer for \d+ s\)$/);
    assert.equal(exit.cause, 'killed');
    assert.equal((await backend.machines()).find((m) => m.name === 'b')?.state, 'down');

    // a is still taken, so it comes back on t.
    await waitFor(() => replica(onB.replicaId)?.state === 'READY', SLOW, 'the replica to be restarted');
    assert.equal(replica(onB.replicaId)?.machine, 't');
    assert.equal(await predictOne(onB.replicaId, 'y'), 'spread:y');

    process.kill(frozen, 'SIGCONT');
    frozen = undefined;
    await waitFor(async () => (await ours('b')).length === 0, SLOW, 'the leftover on b to be removed');
    await assert.rejects(engines.b!.inspectContainer(left.Id), (e) => isEngineStatus(e, 404));
    assert.equal((await backend.machines()).find((m) => m.name === 'b')?.state, 'up');
    assert.ok(said.some((s) => s.includes('machine b answers again')));
    const everywhere = [...await ours('a'), ...await ours('b'), ...await ours('t')].map((c) => c.Labels?.[LABELS.replica]).sort();
    assert.deepEqual(everywhere, ['spread:1#0', 'spread:1#1'], 'no replica runs twice');
  });

  it('a replica stopped as unresponsive comes back on another machine, even one with less headroom', { timeout: SLOW * 2 }, async () => {
    // Both replicas are on t now. b gets a container of someone else's reserving half its cores, so
    // by headroom alone t (one replica left, 0.5 cpus) would win over b.
    const cores = (await engines.b!.info()).NCPU;
    const other = await engines.b!.createContainer('not-clipper-b', {
      Image: IMAGE, Cmd: ['node', '-e', 'setInterval(() => {}, 1e9)'], HostConfig: { NanoCpus: (cores / 2) * 1e9, NetworkMode: 'none' },
    });
    await engines.b!.startContainer(other);
    const r = sup.replicas().find((x) => x.machine === 't')!;
    const restarts = r.restarts;
    sup.markUnresponsive(r.replicaId, 'test: cut off from the frontend');
    await waitFor(() => replica(r.replicaId)?.state === 'READY' && replica(r.replicaId)!.restarts > restarts, SLOW, 'the restart');
    assert.equal(replica(r.replicaId)?.machine, 'b');
    assert.ok(said.some((s) => s.includes(`placing ${r.replicaId} on b (`) && s.includes('avoiding t')), 'placement says it avoided t');
  });

  it('when nothing fits, the start fails saying why for every machine, and the supervisor retries', { timeout: SLOW }, async () => {
    await sup.apply('huge', [{ version: version('huge', { cpus: 64 }), replicas: 1 }]);
    const r = await waitFor(() => sup.allReplicas().find((x) => x.replicaId === 'huge:1#0' && x.lastExit), SLOW, 'the failed start');
    assert.match(r!.lastExit!.reason, /^could not start: no machine has room for 64 cpus \/ 128 MiB: a has 0 cpus \/ \d+ MiB free, b has [\d.]+ cpus \/ \d+ MiB free, t has [\d.]+ cpus \/ \d+ MiB free$/);
    await sup.apply('huge', []);
  });

  it('ssh:// engines speak HTTP over the stdio of `ssh host docker system dial-stdio` (a stand-in for ssh relays to a local socket)', async () => {
    const dir = tempDir('clipper-ssh-');
    // Stands in for `ssh`: records its arguments, then relays stdio to the engine's socket as dial-stdio does.
    const fake = join(dir, 'fake-ssh.mjs');
    writeFileSync(fake, `import { appendFileSync } from 'node:fs';
      import { connect } from 'node:net';
      appendFileSync(${JSON.stringify(join(dir, 'args'))}, JSON.stringify(process.argv.slice(2)) + '\\n');
      const s = connect(${JSON.stringify(a!.host.slice('unix://'.length))});
      process.stdin.pipe(s).pipe(process.stdout);
      s.on('close', () => process.exit(0));`);
    const engine = new DockerEngine({ host: 'ssh://clipper@machine-4:2222', sshCommand: [process.execPath, fake] });
    try {
      await engine.ping();
      const info = await engine.info();
      assert.ok(info.NCPU > 0);
      assert.ok(Array.isArray(await engine.listContainers({ all: true })));
      const args = readFileSync(join(dir, 'args'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as string[]);
      assert.deepEqual(args[0], ['-o', 'BatchMode=yes', '-o', 'ConnectTimeout=10', '-p', '2222', 'clipper@machine-4', '--', 'docker', 'system', 'dial-stdio']);
    } finally {
      engine.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('stops every replica on close and leaves nothing of ours on any machine', { timeout: SLOW }, async () => {
    await sup.close();
    for (const m of ['a', 'b', 't']) assert.deepEqual(await ours(m), [], `nothing left on ${m}`);
  });
});
