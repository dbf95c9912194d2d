/**
 * A whole cluster on the netns harness: two frontends (fe1, fe2) on one Redis (redis), three
 * machines (m1–m3) each with a TLS dockerd holding the runtime image, and a client namespace
 * (client) from which every query and admin call is made (test/helpers/ns-client.ts: nothing is
 * sent from the root namespace). The frontends are the real CLI (`clipper start --store redis://…
 * --backend docker --machine m1=tcp://m1:2376 …`), each inside its own namespace, logging to files.
 *
 * In order (each test builds on the state the previous one left):
 *   1. placement: 3 replicas deployed through fe2 are spread over the machines; both frontends answer;
 *   2. machine loss: m2 cut off, then (after heal) a machine crash (every process in m2's namespace
 *      SIGKILLed, dockerd included): replicas back elsewhere within 30 s, queries meanwhile answered
 *      (real or default) within their SLO, no duplicate containers afterwards;
 *   3. leader loss: kill -9 of the lease holder while queries flow to the other frontend;
 *   4. network faults: 50 ± 10 ms RTT and 1% loss on every machine's link for CLIPPER_NETEM_SECONDS
 *      (default 120): no eviction, latency before/during reported;
 *   5. redis restart (AOF): nothing lost, both frontends reconnect, a new app propagates.
 * Figures are printed on lines starting with `FIGURE:`.
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { DockerEngine } from '../../src/manager/docker/engine-client.ts';
import { LABELS } from '../../src/manager/docker/docker-backend.ts';
import { buildRuntimeImage } from '../../src/manager/docker/image-build.ts';
import { CLI } from '../helpers/cli-server.ts';
import { startDockerd, type TestDockerd } from '../helpers/dockerd.ts';
import { copyImage, createNetwork, killEverythingIn, startMachineDockerds, whyNoNetem, whyNoNetns, type Network } from '../helpers/netns.ts';
import { startNsClient, summarize, type LoadSample, type NsClient } from '../helpers/ns-client.ts';
import { startRedis, whyNoRedis, type TestRedis } from '../helpers/redis.ts';
import { ECHO_MODEL, writeJsModel } from '../helpers/server.ts';
import { createPki, whyNoOpenssl, type CertFiles, type TestPki } from '../helpers/tls-certs.ts';

const IMAGE = 'clipper-runtime:multihost';
const TOKEN = 'multi-host-test-admin-token';
const MACHINES = ['m1', 'm2', 'm3'];
const FRONTENDS = ['fe1', 'fe2'] as const;
type Fe = (typeof FRONTENDS)[number];
const SLO_MS = 1000;
const NETEM_SECONDS = Number(process.env.CLIPPER_NETEM_SECONDS ?? 120);
const REDIS_DOWN_MS = 8000;
const DOCKERD = ['/usr/sbin/dockerd', '/usr/bin/dockerd', '/usr/local/bin/dockerd'].some((p) => existsSync(p)) ? '' : 'dockerd is not installed';
const REDIS = ['/usr/bin/redis-server', '/usr/local/bin/redis-server'].some((p) => existsSync(p)) ? '' : whyNoRedis() || 'redis-server is not installed';
const skip = whyNoNetns() || whyNoNetem() || whyNoOpenssl() || DOCKERD || REDIS;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const figure = (text: string) => console.log(`FIGURE: ${text}`);

interface Frontend { name: Fe; child: ChildProcess; dataDir: string; logFile: string; admin: string; query: string }
interface ContainerView { replica_id: string; model_name: string; model_version: string; state: string; machine: string; restarts: number }

describe('a cluster of two frontends and three Docker machines', { skip: skip || false }, () => {
  let net: Network;
  let pki: TestPki;
  let clientCert: CertFiles;
  let daemons: Record<string, TestDockerd> = {};
  const retired: TestDockerd[] = [];
  let redis: TestRedis | undefined;
  let client: NsClient | undefined;
  let tmp = '';
  let artifactRoot = '';
  const fes = new Map<Fe, Frontend>();
  const loads = new Set<string>();
  let torndown = false;
  const owner = () => createHash('sha1').update(`${redis!.url}|clipper:`).digest('hex').slice(0, 12);

  // ---- frontends ----

  const feArgs = (name: Fe, dataDir: string) => [
    CLI, 'start', '--data-dir', dataDir, '--host', net.ip(name), '--advertise-address', net.ip(name),
    '--query-port', '1337', '--admin-port', '1338', '--rpc-port', '7000', '--admin-token', TOKEN,
    '--store', redis!.url, '--backend', 'docker', ...MACHINES.flatMap((m) => ['--machine', `${m}=tcp://${m}:2376`]),
    '--docker-tls-dir', clientCert.dir, '--docker-image', IMAGE, '--artifact-root', artifactRoot,
  ];

  const logOf = (name: Fe, from = 0) => {
    const f = fes.get(name);
    if (!f || !existsSync(f.logFile)) return '';
    return readFileSync(f.logFile).subarray(from).toString();
  };
  const logSize = (name: Fe) => {
    const f = fes.get(name);
    return f && existsSync(f.logFile) ? statSync(f.logFile).size : 0;
  };

  const startFrontend = async (name: Fe) => {
    const dataDir = fes.get(name)?.dataDir ?? join(tmp, `${name}-data`);
    const logFile = join(tmp, `${name}.log`);
    const from = existsSync(logFile) ? statSync(logFile).size : 0;
    const fd = openSync(logFile, 'a');
    let child: ChildProcess;
    try {
      child = net.spawnIn(name, process.execPath, feArgs(name, dataDir), { stdio: ['ignore', fd, fd], cwd: tmp });
    } finally {
      closeSync(fd);
    }
    const f: Frontend = { name, child, dataDir, logFile, admin: `http://${net.ip(name)}:1338`, query: `http://${net.ip(name)}:1337` };
    fes.set(name, f);
    const end = Date.now() + 60_000;
    while (!readFileSync(logFile).subarray(from).toString().includes('admin API')) {
      if (child.exitCode !== null || child.signalCode !== null || Date.now() > end) {
        throw new Error(`frontend ${name} did not come up (exit ${child.exitCode ?? child.signalCode}):\n${readFileSync(logFile).subarray(from).toString().slice(-3000)}`);
      }
      await sleep(100);
    }
    return f;
  };

  const killFrontend = async (name: Fe, signal: NodeJS.Signals = 'SIGKILL') => {
    const f = fes.get(name);
    if (!f?.child.pid || f.child.exitCode !== null || f.child.signalCode !== null) return;
    const gone = new Promise((r) => f.child.once('exit', r));
    try {
      process.kill(f.child.pid, signal);
    } catch {
      return;
    }
    await gone;
  };

  const tails = () => {
    for (const name of FRONTENDS) {
      console.log(`---- ${name} log (tail) ----\n${logOf(name).split('\n').slice(-60).join('\n')}`);
    }
  };
  /** Runs a test body; on failure prints the frontends' log tails first. */
  const logged = (fn: () => Promise<void>) => async () => {
    try {
      await fn();
    } catch (e) {
      tails();
      throw e;
    }
  };

  // ---- talking to them, from the client namespace ----

  const auth = { authorization: `Bearer ${TOKEN}` };
  const admin = async (fe: Fe, endpoint: string, body: unknown = {}, timeoutMs = 90_000) => {
    const r = await client!.request(`${fes.get(fe)!.admin}/admin/${endpoint}`, { method: 'POST', headers: auth, body, timeoutMs });
    return r;
  };
  const status = async (fe: Fe) => {
    const r = await client!.request(`${fes.get(fe)!.admin}/admin/status`, { headers: auth, timeoutMs: 10_000 });
    return r.status === 200 ? r.body as { containers: ContainerView[]; machines: Array<{ name: string; cores: number }>; cluster: { leader: boolean; leader_frontend: string | null; frontends: unknown[] } } : undefined;
  };
  const predict = (fe: Fe, app: string, input: string) =>
    client!.request(`${fes.get(fe)!.query}/${app}/predict`, { method: 'POST', body: { input }, timeoutMs: 15_000 });
  /** The frontend holding the lease (as it says itself), or undefined. */
  const leader = async (): Promise<Fe | undefined> => {
    const found: Fe[] = [];
    for (const fe of FRONTENDS) {
      const f = fes.get(fe);
      if (!f || f.child.exitCode !== null || f.child.signalCode !== null) continue;
      const s = await status(fe).catch(() => undefined);
      if (s?.cluster?.leader) found.push(fe);
    }
    assert.ok(found.length <= 1, `two frontends say they lead: ${found.join(', ')}`);
    return found[0];
  };
  const leaderContainers = async (model: string) => {
    const l = await leader();
    if (!l) return undefined;
    const s = await status(l);
    return s?.containers.filter((c) => c.model_name === model);
  };
  const machineUp = async (m: string) => {
    const l = await leader();
    const s = l && await status(l);
    return !!s && (s.machines.find((x) => x.name === m) as { state?: string } | undefined)?.state === 'up';
  };
  const waitFor = async <T>(what: string, timeoutMs: number, f: () => Promise<T | undefined | false>, everyMs = 500): Promise<T> => {
    const end = Date.now() + timeoutMs;
    for (;;) {
      const v = await f().catch(() => undefined);
      if (v) return v;
      if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
      await sleep(everyMs);
    }
  };

  /** Running containers of a model on every machine's dockerd, through their unix sockets (the filesystem, not the network). */
  const dockerContainers = async (model: string) => {
    const out: Array<{ machine: string; id: string; replica: string; version: string; owner: string }> = [];
    for (const m of MACHINES) {
      const engine = new DockerEngine(daemons[m]!.host);
      try {
        const list = await engine.listContainers({ labels: [`${LABELS.model}=${model}`] });
        for (const c of list.filter((x) => x.State === 'running')) {
          out.push({ machine: m, id: c.Id, replica: c.Labels?.[LABELS.replica] ?? '', version: c.Labels?.[LABELS.version] ?? '', owner: c.Labels?.[LABELS.owner] ?? '' });
        }
      } catch {
        // a crashed machine's engine does not answer: nothing runs there
      } finally {
        engine.close();
      }
    }
    return out.sort((a, b) => a.replica.localeCompare(b.replica));
  };

  const loadBoth = async (app: string, ratePerFe: number, tag: string) => {
    const ids: string[] = [];
    for (const fe of FRONTENDS) {
      const id = await client!.startLoad({ url: `${fes.get(fe)!.query}/${app}/predict`, ratePerS: ratePerFe, timeoutMs: 15_000, tag: `${tag}-${fe}` });
      loads.add(id);
      ids.push(id);
    }
    return ids;
  };
  const stopLoads = async (ids: string[]) => {
    const all: LoadSample[][] = [];
    for (const id of ids) {
      all.push(await client!.stopLoad(id));
      loads.delete(id);
    }
    return all;
  };
  const realFrom = (tag: string) => (s: LoadSample) => typeof s.output === 'string' && s.output.startsWith(`${tag}:`);
  const describeLoad = (label: string, samples: LoadSample[], tag: string) => {
    const sum = summarize(samples, realFrom(tag));
    const overSlo = samples.filter((s) => !s.error && s.ms > SLO_MS).length;
    figure(`${label}: sent ${sum.sent}, 200-real ${sum.real}, 200-default ${sum.defaults}, wrong ${sum.wrong}, http-errors ${sum.httpErrors}, no-answer ${sum.failures}, p50 ${sum.p50.toFixed(1)} ms, p99 ${sum.p99.toFixed(1)} ms, max ${sum.max.toFixed(1)} ms, over the ${SLO_MS} ms SLO ${overSlo}`);
    return { ...sum, overSlo };
  };
  /** Never a hang, never an HTTP error, never a wrong answer; every answer within the SLO plus scheduling slack. */
  const assertServed = (label: string, sum: ReturnType<typeof describeLoad>, samples: LoadSample[]) => {
    const bad = samples.filter((s) => s.error || s.status !== 200).slice(0, 5);
    assert.equal(sum.failures, 0, `${label}: queries without an answer: ${JSON.stringify(bad)}`);
    assert.equal(sum.httpErrors, 0, `${label}: HTTP errors: ${JSON.stringify(bad)}`);
    assert.equal(sum.wrong, 0, `${label}: wrong answers`);
    assert.ok(sum.max < SLO_MS + 2000, `${label}: the slowest answer took ${sum.max.toFixed(0)} ms (SLO ${SLO_MS} ms)`);
  };

  // ---- setup / teardown ----

  const teardown = async () => {
    if (torndown) return;
    torndown = true;
    for (const id of loads) await client?.stopLoad(id).catch(() => {});
    await client?.close().catch(() => {});
    for (const fe of FRONTENDS) await killFrontend(fe).catch(() => {});
    await redis?.stop().catch(() => {});
    await Promise.all([...Object.values(daemons), ...retired].map((d) => d.stop().catch(() => {})));
    await net?.destroy();
    pki?.remove();
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  };

  before(async () => {
    const t0 = Date.now();
    try {
      tmp = mkdtempSync('/tmp/ck-mh-');
      artifactRoot = join(tmp, 'artifacts');
      mkdirSync(artifactRoot);
      net = await createNetwork({ hosts: ['fe1', 'fe2', 'redis', 'client', ...MACHINES] });
      pki = createPki();
      clientCert = pki.client('frontend');
      daemons = await startMachineDockerds(net, MACHINES, pki);
      await buildRuntimeImage({ dockerHost: daemons.m1!.host, tag: IMAGE, python: false });
      await copyImage(daemons.m1!.host, MACHINES.slice(1).map((m) => daemons[m]!.host), IMAGE);
      redis = await startRedis({ host: net.ip('redis'), wrap: ['ip', 'netns', 'exec', net.ns('redis')] });
      if (!redis) throw new Error(`redis: ${whyNoRedis()}`);
      client = await startNsClient(net, 'client', tmp);
      await startFrontend('fe1');
      await startFrontend('fe2');
      await waitFor('one frontend to lead', 30_000, async () => leader());
    } catch (e) {
      tails();
      await teardown();
      throw e;
    }
    figure(`setup (namespaces, 3 TLS dockerds, image build + copy, redis, 2 frontends): ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  }, { timeout: 10 * 60_000 });

  after(teardown);

  // ---- 1 ----

  it('1. placement: 3 replicas deployed through fe2 spread over the machines; both frontends answer', { timeout: 5 * 60_000 }, logged(async () => {
    const l = await leader();
    figure(`initial leader: ${l}`);
    let r = await admin('fe2', 'add_app', { name: 'mh', input_type: 'strings', default_output: 'DEFAULT', latency_slo_micros: SLO_MS * 1000 });
    assert.equal(r.status, 200, JSON.stringify(r));
    const t0 = Date.now();
    r = await admin('fe2', 'add_model', {
      model_name: 'mha', model_version: '1', input_type: 'strings', runtime: 'js', replicas: 3,
      model_data_path: writeJsModel(ECHO_MODEL('A'), join(artifactRoot, 'mha')),
    });
    assert.equal(r.status, 200, JSON.stringify(r));
    figure(`add_model (3 replicas) through fe2 answered in ${((Date.now() - t0) / 1000).toFixed(1)} s, ready=${r.body?.ready}`);
    r = await admin('fe2', 'add_model_links', { app_name: 'mh', model_names: ['mha'] });
    assert.equal(r.status, 200, JSON.stringify(r));

    const ready = await waitFor('3 READY replicas of mha in the leader\'s status', 120_000, async () => {
      const cs = await leaderContainers('mha');
      return cs && cs.filter((c) => c.state === 'READY').length === 3 ? cs : undefined;
    });
    figure(`3 replicas READY ${((Date.now() - t0) / 1000).toFixed(1)} s after add_model`);
    const machines = ready.map((c) => c.machine).sort();
    figure(`placement of mha's 3 replicas: ${ready.map((c) => `${c.replica_id}@${c.machine}`).join(', ')} (${new Set(machines).size} distinct machines)`);
    assert.ok(new Set(machines).size >= 2, `replicas spread over at least two machines: ${machines.join(', ')}`);
    const inDocker = await dockerContainers('mha');
    assert.equal(inDocker.length, 3, JSON.stringify(inDocker));
    assert.deepEqual(inDocker.map((c) => c.machine).sort(), machines, 'the engines agree with the leader\'s status');
    assert.ok(inDocker.every((c) => c.owner === owner()));

    // Both frontends answer with the model (every replica is connected to both).
    for (const fe of FRONTENDS) {
      await waitFor(`${fe} to see 3 replicas of mha`, 60_000, async () => {
        const s = await status(fe);
        return s && s.containers.filter((c) => c.model_name === 'mha' && c.state === 'READY').length === 3;
      });
      for (let i = 0; i < 5; i++) {
        const p = await predict(fe, 'mh', `${fe}-${i}`);
        assert.equal(p.status, 200, JSON.stringify(p));
        assert.deepEqual([p.body.output, p.body.default], [`A:${fe}-${i}`, false], `${fe}: ${JSON.stringify(p.body)}`);
      }
    }
  }));

  // ---- 2 ----

  /**
   * One machine fault under load: `fault` at t0, then the time until the leader's status counts
   * `n` READY replicas of `model` on machines other than `victim`.
   */
  const machineFault = async (label: string, model: string, app: string, tag: string, victim: string, fault: () => void | Promise<void>) => {
    const before = await leaderContainers(model);
    figure(`${label}: before the fault: ${before!.map((c) => `${c.replica_id}@${c.machine}`).join(', ')}`);
    const onVictim = before!.filter((c) => c.machine === victim).length;
    const ids = await loadBoth(app, 10, tag);
    await sleep(3000);
    const t0 = Date.now();
    await fault();
    let recoveredMs = NaN;
    let settled: ContainerView[] | undefined;
    try {
      settled = await waitFor(`3 READY replicas of ${model} off ${victim}`, 90_000, async () => {
        const cs = await leaderContainers(model);
        return cs && cs.filter((c) => c.state === 'READY' && c.machine !== victim && c.machine !== '').length === 3 ? cs : undefined;
      }, 250);
      recoveredMs = Date.now() - t0;
    } finally {
      await sleep(3000); // queries keep flowing a little after recovery
    }
    figure(`${label}: ${onVictim} replica(s) were on ${victim}; 3 READY elsewhere ${(recoveredMs / 1000).toFixed(1)} s after the fault: ${settled!.filter((c) => c.state === 'READY').map((c) => `${c.replica_id}@${c.machine}`).join(', ')}`);
    return { ids, recoveredMs, t0 };
  };

  it('2a. machine loss by partition: m2 cut off, its replicas back elsewhere within 30 s, queries answered meanwhile, no duplicates after heal', { timeout: 6 * 60_000 }, logged(async () => {
    const cs = (await leaderContainers('mha'))!;
    const victim = cs.some((c) => c.machine === 'm2') ? 'm2' : cs.find((c) => c.machine)!.machine;
    if (victim !== 'm2') figure(`2a: no replica on m2, so the victim is ${victim}`);
    const logFrom = Object.fromEntries(FRONTENDS.map((fe) => [fe, logSize(fe)]));
    const { ids, recoveredMs } = await machineFault('2a partition', 'mha', 'mh', 'A', victim, () => net.cut(victim));
    // Heal; the victim's engine answers again and the containers left there are removed.
    const tHeal = Date.now();
    const healFrom = Object.fromEntries(FRONTENDS.map((fe) => [fe, logSize(fe)]));
    net.heal(victim);
    const clean = await waitFor(`exactly 3 running mha containers across the engines after heal`, 120_000, async () => {
      const up = await machineUp(victim);
      const d = await dockerContainers('mha');
      return up && d.length === 3 ? d : undefined;
    });
    figure(`2a: after heal, ${victim} up again and exactly 3 mha containers (${clean.map((c) => `${c.replica}@${c.machine}`).join(', ')}) ${((Date.now() - tHeal) / 1000).toFixed(1)} s after the heal`);
    await sleep(5000); // and it stays so
    const again = await dockerContainers('mha');
    assert.equal(again.length, 3, `still exactly 3: ${JSON.stringify(again)}`);
    assert.equal(new Set(again.map((c) => c.replica)).size, 3, 'three distinct replica ids');
    // The replaced container on the healed machine is removed; no live replica is killed for its silence.
    const count = (re: RegExp) => FRONTENDS.map((fe) => (logOf(fe, healFrom[fe]).match(re) ?? []).length).reduce((x, y) => x + y, 0);
    const killedAfterHeal = count(/is unresponsive \(|"msg":"replica unresponsive/g);
    figure(`2a: after the heal: ${count(/evicted replica \S+ of mha:1: no heartbeat/g)} silent session(s) of mha evicted, ${count(/was replaced while the machine was unreachable/g)} leftover container(s) removed, ${killedAfterHeal} replica(s) judged unresponsive (killed)`);
    const [a, b] = await stopLoads(ids);
    const sumA = describeLoad('2a partition queries via fe1 (10/s)', a!, 'A');
    const sumB = describeLoad('2a partition queries via fe2 (10/s)', b!, 'A');
    for (const fe of FRONTENDS) {
      const log = logOf(fe, logFrom[fe]);
      figure(`2a ${fe} log: ${(log.match(/is unresponsive \(|"msg":"replica unresponsive/g) ?? []).length} "is unresponsive", ${(log.match(/is silent here/g) ?? []).length} "is silent here", ${(log.match(/unreachable/g) ?? []).length} "unreachable"`);
    }
    assertServed('2a via fe1', sumA, a!);
    assertServed('2a via fe2', sumB, b!);
    assert.ok(recoveredMs <= 30_000, `replicas back within 30 s (took ${recoveredMs} ms)`);
    assert.equal(killedAfterHeal, 0, 'no replica killed after the heal (a stale session of a replaced container must not count against its replica)');
  }));

  it('2b. machine crash: every process in m2\'s namespace SIGKILLed (dockerd, containerd, replicas): replicas back elsewhere within 30 s, queries answered meanwhile', { timeout: 6 * 60_000 }, logged(async () => {
    // A second model, placed now that every machine is up: the spread puts one replica on m2.
    let r = await admin('fe1', 'add_app', { name: 'mhb', input_type: 'strings', default_output: 'DEFAULT', latency_slo_micros: SLO_MS * 1000 });
    assert.equal(r.status, 200, JSON.stringify(r));
    r = await admin('fe1', 'add_model', {
      model_name: 'mhb', model_version: '1', input_type: 'strings', runtime: 'js', replicas: 3,
      model_data_path: writeJsModel(ECHO_MODEL('B'), join(artifactRoot, 'mhb')),
    });
    assert.equal(r.status, 200, JSON.stringify(r));
    r = await admin('fe1', 'add_model_links', { app_name: 'mhb', model_names: ['mhb'] });
    assert.equal(r.status, 200, JSON.stringify(r));
    const placed = await waitFor('3 READY replicas of mhb, connected to both frontends', 120_000, async () => {
      const cs = await leaderContainers('mhb');
      if (!cs || cs.filter((c) => c.state === 'READY').length !== 3) return undefined;
      for (const fe of FRONTENDS) {
        const s = await status(fe);
        if (!s || s.containers.filter((c) => c.model_name === 'mhb' && c.state === 'READY').length !== 3) return undefined;
      }
      return cs;
    });
    const victim = placed.some((c) => c.machine === 'm2') ? 'm2' : placed.find((c) => c.machine)!.machine;
    if (victim !== 'm2') figure(`2b: no mhb replica on m2, so the victim is ${victim}`);
    const mhaBefore = await dockerContainers('mha');

    // The machine dies: every process in its network namespace (dockerd, containerd, shims, replicas).
    const crash = () => killEverythingIn([net.ns(victim)]);
    const { ids, recoveredMs } = await machineFault('2b crash', 'mhb', 'mhb', 'B', victim, crash);
    const [a, b] = await stopLoads(ids);
    const sumA = describeLoad('2b crash queries via fe1 (10/s)', a!, 'B');
    const sumB = describeLoad('2b crash queries via fe2 (10/s)', b!, 'B');

    // mha's replicas on the crashed machine came back elsewhere too.
    const mhaLost = mhaBefore.filter((c) => c.machine === victim).length;
    const mha = await waitFor('3 READY mha replicas off the crashed machine', 60_000, async () => {
      const cs = await leaderContainers('mha');
      return cs && cs.filter((c) => c.state === 'READY' && c.machine !== victim && c.machine).length === 3 ? cs : undefined;
    });
    figure(`2b: mha had ${mhaLost} replica(s) on ${victim}; now ${mha.map((c) => `${c.replica_id}@${c.machine}`).join(', ')}`);

    // The machine comes back: a fresh dockerd (the old one's state died with it) with the image.
    const old = daemons[victim]!;
    retired.push(old);
    const server = pki.server(`dockerd-${victim}-reborn`, { ips: [net.ip(victim)], dns: [victim] });
    const reborn = await startDockerd({ timeoutMs: 120_000, wrap: net.daemonWrap(victim), tcp: { host: net.ip(victim), ca: server.ca, cert: server.cert, key: server.key } });
    assert.ok(reborn, 'the crashed machine\'s dockerd starts again');
    daemons[victim] = reborn;
    await copyImage(daemons.m1 === reborn ? daemons.m3!.host : daemons.m1!.host, [reborn.host], IMAGE);
    const tUp = Date.now();
    await waitFor(`${victim} up again in the leader's status`, 60_000, () => machineUp(victim));
    figure(`2b: ${victim}'s new dockerd seen up ${((Date.now() - tUp) / 1000).toFixed(1)} s after it answered`);
    for (const model of ['mha', 'mhb']) {
      const d = await dockerContainers(model);
      assert.equal(d.length, 3, `${model}: exactly 3 running containers: ${JSON.stringify(d)}`);
    }
    assertServed('2b via fe1', sumA, a!);
    assertServed('2b via fe2', sumB, b!);
    assert.ok(recoveredMs <= 30_000, `replicas back within 30 s (took ${recoveredMs} ms)`);
  }));

  // ---- 3 ----

  it('3. leader loss: kill -9 of the lease holder; queries to the other never fail, it takes the lease within seconds and accepts writes', { timeout: 5 * 60_000 }, logged(async () => {
    const l = (await leader())!;
    assert.ok(l, 'someone leads');
    const survivor: Fe = l === 'fe1' ? 'fe2' : 'fe1';
    const containersBefore = (await dockerContainers('mha')).map((c) => c.id).sort();
    const id = await client!.startLoad({ url: `${fes.get(survivor)!.query}/mh/predict`, ratePerS: 20, timeoutMs: 15_000, tag: 'leaderloss' });
    loads.add(id);
    await sleep(3000);
    const t0 = Date.now();
    await killFrontend(l, 'SIGKILL');
    const took = await waitFor(`${survivor} to take the lease`, 60_000, async () => ((await status(survivor))?.cluster.leader ? Date.now() - t0 : undefined), 100);
    figure(`3: ${l} (leader) killed with SIGKILL; ${survivor} took the lease ${(took / 1000).toFixed(2)} s later (lease TTL 5 s)`);
    const tw = Date.now();
    const w = await waitFor('an admin write on the new leader', 30_000, async () => {
      const r = await admin(survivor, 'add_app', { name: 'after-leader-loss', input_type: 'strings', default_output: 'D', latency_slo_micros: 100_000 });
      return r.status === 200 ? r : undefined;
    });
    figure(`3: add_app on the new leader answered 200 ${((Date.now() - tw) / 1000).toFixed(2)} s after it took the lease (${((Date.now() - t0) / 1000).toFixed(2)} s after the kill)`);
    assert.equal(w.status, 200);
    await sleep(5000);
    const samples = await client!.stopLoad(id);
    loads.delete(id);
    const sum = describeLoad(`3 queries via ${survivor} (20/s) across the leader's kill`, samples, 'A');
    // The stream started 3 s before the kill (`at` is relative to its start).
    const sinceKill = samples.filter((s) => s.at >= 3000);
    const realAfter = sinceKill.filter((s) => s.status === 200 && !s.isDefault && realFrom('A')(s)).length;
    figure(`3: after the kill ${realAfter} of ${sinceKill.length} queries got real answers`);
    assertServed(`3 via ${survivor}`, sum, samples);
    assert.ok(realAfter > sinceKill.length * 0.9, `real answers continue: ${realAfter}/${sinceKill.length}`);
    const containersAfter = (await dockerContainers('mha')).map((c) => c.id).sort();
    assert.deepEqual(containersAfter, containersBefore, 'the new leader adopted the same containers (none restarted)');
    const cs = (await status(survivor))!.containers.filter((c) => c.model_name === 'mha');
    figure(`3: the new leader's view of mha: ${cs.map((c) => `${c.replica_id}@${c.machine} ${c.state} restarts=${c.restarts}`).join(', ')}`);

    // The killed frontend comes back (same data directory) and the replicas connect to it again.
    const tr = Date.now();
    await startFrontend(l);
    await waitFor(`the restarted ${l} to have the 3 mha replicas connected`, 60_000, async () => {
      const s = await status(l);
      return s && s.containers.filter((c) => c.model_name === 'mha' && c.state === 'READY').length === 3;
    });
    figure(`3: ${l} restarted; the 3 mha replicas connected to it ${((Date.now() - tr) / 1000).toFixed(1)} s after its start`);
    const p = await predict(l, 'mh', 'back');
    assert.deepEqual([p.status, p.body?.output], [200, 'A:back']);
    assert.equal(await leader(), survivor, 'the lease stays with the survivor');
  }));

  // ---- 4 ----

  it(`4. network faults: 50 ± 10 ms RTT and 1% loss on every machine's link for ${NETEM_SECONDS} s: no eviction`, { timeout: (NETEM_SECONDS + 240) * 1000 }, logged(async () => {
    const l = (await leader())!;
    const restartsOf = async () => Object.fromEntries((await status(l))!.containers.map((c) => [c.replica_id, c.restarts]));
    const restartsBefore = await restartsOf();
    const idsBefore = [...(await dockerContainers('mha')), ...(await dockerContainers('mhb'))].map((c) => c.id).sort();
    const logFrom = Object.fromEntries(FRONTENDS.map((fe) => [fe, logSize(fe)]));

    let ids = await loadBoth('mh', 10, 'A');
    await sleep(20_000);
    const base = (await stopLoads(ids)).flat();
    const sumBase = describeLoad('4 baseline (20/s over both frontends, 20 s)', base, 'A');

    for (const m of MACHINES) await net.netem(m, { delayMs: 50, jitterMs: 10, lossPct: 1 });
    try {
      ids = await loadBoth('mh', 10, 'A');
      await sleep(NETEM_SECONDS * 1000);
      const during = (await stopLoads(ids)).flat();
      const sumDuring = describeLoad(`4 with netem 50±10 ms RTT, 1% loss on m1-m3 (20/s, ${NETEM_SECONDS} s)`, during, 'A');
      figure(`4: p50 ${sumBase.p50.toFixed(1)} -> ${sumDuring.p50.toFixed(1)} ms, p99 ${sumBase.p99.toFixed(1)} -> ${sumDuring.p99.toFixed(1)} ms`);
      const restartsAfter = await restartsOf();
      const idsAfter = [...(await dockerContainers('mha')), ...(await dockerContainers('mhb'))].map((c) => c.id).sort();
      const evictions = FRONTENDS.map((fe) => {
        const log = logOf(fe, logFrom[fe]);
        return { fe, unresponsive: (log.match(/is unresponsive \(|"msg":"replica unresponsive/g) ?? []).length, silent: (log.match(/is silent here/g) ?? []).length, down: (log.match(/unreachable|is down/g) ?? []).length };
      });
      figure(`4: evictions: ${evictions.map((e) => `${e.fe} "is unresponsive" ${e.unresponsive}, "is silent here" ${e.silent}, machine down ${e.down}`).join('; ')}`);
      assert.deepEqual(restartsAfter, restartsBefore, 'no replica restarted');
      assert.deepEqual(idsAfter, idsBefore, 'the same containers run');
      for (const e of evictions) {
        assert.equal(e.unresponsive, 0, `${e.fe}: no replica judged unresponsive`);
        assert.equal(e.silent, 0, `${e.fe}: no replica silent`);
      }
      assertServed('4 during netem', sumDuring, during);
    } finally {
      for (const m of MACHINES) await net.clearNetem(m).catch(() => {});
    }
  }));

  // ---- 5 ----

  it('5. redis restart (AOF): nothing lost, both frontends reconnect, a new app added through fe1 is served by fe2', { timeout: 5 * 60_000 }, logged(async () => {
    const snapshot = async (fe: Fe) => {
      const apps = await admin(fe, 'get_all_applications', { verbose: true });
      const models = await admin(fe, 'get_all_models', { verbose: true });
      assert.equal(apps.status, 200, JSON.stringify(apps));
      assert.equal(models.status, 200, JSON.stringify(models));
      // Sorted: a frontend that loaded a snapshot lists in another order than one that followed the feed.
      const key = (x: Record<string, unknown>) => `${x.name ?? x.model_name}:${x.model_version ?? ''}`;
      const strip = (xs: Array<Record<string, unknown>>) => JSON.stringify([...xs].sort((a, b) => key(a).localeCompare(key(b))));
      return { apps: strip(apps.body), models: strip(models.body) };
    };
    const before = { fe1: await snapshot('fe1'), fe2: await snapshot('fe2') };
    assert.deepEqual(before.fe1, before.fe2, 'both frontends agree beforehand');
    const containersBefore = (await dockerContainers('mha')).map((c) => c.id).sort();

    const logFrom = Object.fromEntries(FRONTENDS.map((fe) => [fe, logSize(fe)]));
    const ids = await loadBoth('mh', 10, 'A');
    await sleep(2000);
    const t0 = Date.now();
    await redis!.kill();
    // Longer than the lease's TTL (5 s): the leader cannot renew, so leadership is lost and taken again.
    await sleep(REDIS_DOWN_MS);
    await redis!.restart();
    const tUp = Date.now();
    figure(`5: redis down for ${((tUp - t0) / 1000).toFixed(1)} s (SIGKILL, then restarted on its AOF)`);

    const tw = Date.now();
    await waitFor('fe1 to accept add_app after the restart', 60_000, async () => {
      const r = await admin('fe1', 'add_app', { name: 'after-redis', input_type: 'strings', default_output: 'D', latency_slo_micros: SLO_MS * 1000 });
      return r.status === 200 || (r.status === 400 && /exist/i.test(JSON.stringify(r.body)));
    }, 250);
    const wrote = Date.now();
    figure(`5: fe1 accepted add_app ${((wrote - tUp) / 1000).toFixed(2)} s after redis was back (${((wrote - tw) / 1000).toFixed(2)} s of retrying)`);
    await waitFor('fe2 to know the new app', 30_000, async () => (await admin('fe2', 'get_application', { name: 'after-redis' })).status === 200, 100);
    figure(`5: fe2 served the new app ${((Date.now() - wrote) / 1000).toFixed(2)} s after fe1 wrote it`);
    const r = await admin('fe1', 'add_model_links', { app_name: 'after-redis', model_names: ['mha'] });
    assert.equal(r.status, 200, JSON.stringify(r));
    await waitFor('fe2 to answer queries of the new app with mha', 30_000, async () => {
      const p = await predict('fe2', 'after-redis', 'x');
      return p.status === 200 && p.body.output === 'A:x';
    }, 200);

    const lead = await waitFor('a leader after the redis restart', 30_000, async () => leader());
    figure(`5: leader after the redis restart: ${lead}`);
    await sleep(3000);
    const [a, b] = await stopLoads(ids);
    const sumA = describeLoad('5 queries via fe1 across the redis restart (10/s)', a!, 'A');
    const sumB = describeLoad('5 queries via fe2 across the redis restart (10/s)', b!, 'A');

    for (const fe of FRONTENDS) {
      const now = await snapshot(fe);
      const dropNew = (s: string) => JSON.stringify((JSON.parse(s) as Array<{ name?: string }>).filter((x) => x.name !== 'after-redis'));
      assert.equal(dropNew(now.apps), before.fe1.apps, `${fe}: the same applications (plus the new one)`);
      assert.equal(now.models, before.fe1.models, `${fe}: the same models`);
    }
    for (const fe of FRONTENDS) {
      const log = logOf(fe, logFrom[fe]);
      figure(`5 ${fe} log: ${(log.match(/no longer leading/g) ?? []).length} "no longer leading", ${(log.match(/leading the resource manager \(/g) ?? []).length} "leading the resource manager", ${(log.match(/is unresponsive \(|"msg":"replica unresponsive/g) ?? []).length} "is unresponsive"`);
    }
    assert.deepEqual((await dockerContainers('mha')).map((c) => c.id).sort(), containersBefore, 'the same mha containers run');
    assertServed('5 via fe1', sumA, a!);
    assertServed('5 via fe2', sumB, b!);
  }));
});
