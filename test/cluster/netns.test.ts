/**
 * The multi-machine harness itself: six network namespaces on one bridge (fe1, fe2, redis, m1,
 * m2, m3), a TLS dockerd in each machine namespace with the runtime image loaded, redis in its
 * own. It proves what cluster tests will lean on: the engines answer over TLS from fe1 (and
 * refuse a caller without a client certificate); a `--network host` container on m2 lives in
 * m2's network and reaches a server on fe1; redis is shared by fe1 and fe2; a cut makes m2
 * unreachable and a heal brings it back; netem adds round-trip time; and destroy() leaves no
 * namespace, link, process or directory behind.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { DockerEngine } from '../../src/manager/docker/engine-client.ts';
import { buildRuntimeImage } from '../../src/manager/docker/image-build.ts';
import type { TestDockerd } from '../helpers/dockerd.ts';
import { copyImage, createNetwork, startMachineDockerds, whyNoNetem, whyNoNetns, type Network } from '../helpers/netns.ts';
import { startRedis, whyNoRedis, type TestRedis } from '../helpers/redis.ts';
import { createPki, whyNoOpenssl, type CertFiles, type TestPki } from '../helpers/tls-certs.ts';

const IMAGE = 'clipper-runtime:netns';
const MACHINES = ['m1', 'm2', 'm3'];
const DOCKERD = ['/usr/sbin/dockerd', '/usr/bin/dockerd', '/usr/local/bin/dockerd'].some((p) => existsSync(p)) ? '' : 'dockerd is not installed';
const REDIS = ['/usr/bin/redis-server', '/usr/local/bin/redis-server'].some((p) => existsSync(p)) ? '' : whyNoRedis() || 'redis-server is not installed';
const skip = whyNoNetns() || whyNoNetem() || whyNoOpenssl() || DOCKERD || REDIS;

/** A node script run inside a namespace; its last stdout line is JSON. */
const PROBE = String.raw`
const [kind, a] = [process.argv[1], JSON.parse(process.argv[2])];
const out = (v) => { console.log(JSON.stringify(v)); process.exit(0); };
const fail = (e) => out({ ok: false, error: String(e && (e.code || e.message) || e) });
setTimeout(() => fail('timeout'), a.timeoutMs ?? 5000).unref();
if (kind === 'https') {
  const fs = require('node:fs');
  const tls = a.noClientCert ? {} : { cert: fs.readFileSync(a.cert), key: fs.readFileSync(a.key) };
  require('node:https').get({ host: a.host, port: a.port, path: '/_ping', ca: fs.readFileSync(a.ca), ...tls, agent: false }, (res) => {
    let body = '';
    res.on('data', (d) => { body += d; });
    res.on('end', () => out({ ok: true, status: res.statusCode, body }));
  }).on('error', fail);
} else if (kind === 'redis') {
  const s = require('node:net').connect(a.port, a.host, () => s.write(a.command));
  let buf = '';
  s.on('data', (d) => { buf += d; if (buf.split('\r\n').length > a.lines) { s.destroy(); out({ ok: true, reply: buf }); } });
  s.on('error', fail);
} else if (kind === 'rtt') {
  const s = require('node:net').connect(a.port, a.host, () => {
    s.setNoDelay(true);
    const samples = [];
    let t = 0n;
    const go = () => { t = process.hrtime.bigint(); s.write('x'); };
    s.on('data', () => {
      samples.push(Number(process.hrtime.bigint() - t) / 1e6);
      if (samples.length < a.n) go(); else { s.destroy(); samples.sort((x, y) => x - y); out({ ok: true, median: samples[samples.length >> 1], samples }); }
    });
    go();
  });
  s.on('error', fail);
}
`;

/** A TCP server for a namespace: echoes (rtt) or greets (greet) each connection. */
const SERVER = String.raw`
const [mode, host, port] = process.argv.slice(1);
require('node:net').createServer((s) => {
  s.setNoDelay(true);
  if (mode === 'greet') s.end('hello from ' + host + ' to ' + s.remoteAddress + '\n'); else s.pipe(s);
}).listen(Number(port), host, () => console.log('listening'));
`;

describe('netns cluster harness', { skip: skip || false }, () => {
  let net: Network;
  let pki: TestPki;
  let client: CertFiles;
  let daemons: Record<string, TestDockerd> = {};
  let redis: TestRedis | undefined;
  let rootLinksBefore = '';
  const timings: Record<string, number> = {};
  let torndown = false;

  const probe = async (host: string, kind: string, args: Record<string, unknown>) => {
    const r = await net.run(host, process.execPath, ['-e', PROBE, kind, JSON.stringify(args)], { timeoutMs: 30_000 });
    const line = r.stdout.trim().split('\n').pop() ?? '';
    try {
      return JSON.parse(line) as { ok: boolean; error?: string; [k: string]: any };
    } catch {
      throw new Error(`probe ${kind} in ${host}: exit ${r.code}, ${r.stdout} ${r.stderr}`);
    }
  };
  const ping = (from: string, machine: string, extra: Record<string, unknown> = {}) =>
    probe(from, 'https', { host: net.ip(machine), port: 2376, ca: client.ca, cert: client.cert, key: client.key, timeoutMs: 3000, ...extra });
  const startServer = async (host: string, mode: 'echo' | 'greet', port: number) => {
    const child = net.spawnIn(host, process.execPath, ['-e', SERVER, mode, net.ip(host), String(port)], { stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise<void>((resolve, reject) => {
      child.stdout!.once('data', () => resolve());
      child.once('exit', (code) => reject(new Error(`server in ${host} exited with ${code}`)));
    });
    return child;
  };
  const retry = async <T>(what: string, timeoutMs: number, f: () => Promise<T | undefined>): Promise<T> => {
    const end = Date.now() + timeoutMs;
    for (;;) {
      const v = await f();
      if (v !== undefined) return v;
      if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  };

  const teardown = async () => {
    if (torndown) return;
    torndown = true;
    await redis?.stop().catch(() => {});
    await Promise.all(Object.values(daemons).map((d) => d.stop().catch(() => {})));
    await net?.destroy();
    pki?.remove();
  };

  before(async () => {
    rootLinksBefore = spawnSync('ip', ['-o', 'link', 'show'], { encoding: 'utf8' }).stdout.replace(/^\d+: /gm, '').split('\n').map((l) => l.split(':')[0]).sort().join(',');
    let t = Date.now();
    const mark = (k: string) => { timings[k] = Date.now() - t; t = Date.now(); };
    const t0 = Date.now();
    net = await createNetwork({ hosts: ['fe1', 'fe2', 'redis', ...MACHINES] });
    mark('namespaces');
    pki = createPki();
    client = pki.client('frontend');
    mark('certificates');
    try {
      daemons = await startMachineDockerds(net, MACHINES, pki);
      mark('dockerds');
      await buildRuntimeImage({ dockerHost: daemons.m1!.host, tag: IMAGE, python: false });
      mark('image build (m1)');
      await copyImage(daemons.m1!.host, MACHINES.slice(1).map((m) => daemons[m]!.host), IMAGE);
      mark('image copy (m1 -> m2, m3)');
      redis = await startRedis({ host: net.ip('redis'), wrap: ['ip', 'netns', 'exec', net.ns('redis')] });
      mark('redis');
    } catch (e) {
      await teardown();
      throw e;
    }
    timings.total = Date.now() - t0;
    console.log(`# cluster setup: ${Object.entries(timings).map(([k, v]) => `${k} ${v} ms`).join(', ')}`);
  }, { timeout: 15 * 60_000 });

  after(teardown);

  it('every machine\'s dockerd answers _ping over TLS from fe1, and refuses a caller without a client certificate', { timeout: 60_000 }, async () => {
    for (const m of MACHINES) {
      const r = await ping('fe1', m, { timeoutMs: 10_000 });
      assert.deepEqual(r, { ok: true, status: 200, body: 'OK' }, m);
    }
    const anon = await ping('fe1', 'm1', { noClientCert: true });
    assert.ok(!anon.ok || anon.status !== 200, `an anonymous caller got in: ${JSON.stringify(anon)}`);
    // The daemons are distinct: their own directories, their own containers.
    assert.equal(new Set(Object.values(daemons).map((d) => d.dir)).size, MACHINES.length);
    for (const m of MACHINES) assert.equal(daemons[m]!.tcpHost, `tcp://${net.ip(m)}:2376`);
  });

  it('a --network host container on m2 is in m2\'s network and reaches a server on fe1', { timeout: 120_000 }, async () => {
    const server = await startServer('fe1', 'greet', 7100);
    const engine = new DockerEngine(daemons.m2!.host);
    try {
      const script = `const os = require('node:os');
        const ips = Object.values(os.networkInterfaces()).flat().map((i) => i.address);
        const s = require('node:net').connect(7100, ${JSON.stringify(net.ip('fe1'))});
        let got = '';
        s.on('data', (d) => { got += d; });
        s.on('end', () => { console.log(JSON.stringify({ ips, got })); });
        s.on('error', (e) => { console.log(JSON.stringify({ ips, error: e.code })); });`;
      const id = await engine.createContainer('netns-probe', { Image: IMAGE, Cmd: ['node', '-e', script], HostConfig: { NetworkMode: 'host' } });
      await engine.startContainer(id);
      const exit = await engine.waitContainer(id);
      const logs = await engine.containerLogs(id);
      assert.equal(exit.StatusCode, 0, logs);
      const out = JSON.parse(logs.trim().split('\n').pop()!) as { ips: string[]; got?: string };
      assert.ok(out.ips.includes(net.ip('m2')), `the container sees m2's address: ${out.ips.join(', ')}`);
      assert.ok(!out.ips.includes(net.ip('m1')));
      assert.equal(out.got, `hello from ${net.ip('fe1')} to ${net.ip('m2')}\n`);
      // m1's daemon knows nothing of m2's container.
      const m1 = new DockerEngine(daemons.m1!.host);
      try {
        assert.deepEqual((await m1.listContainers({ all: true })).map((c) => c.Id), []);
      } finally {
        m1.close();
      }
      await engine.removeContainer(id);
    } finally {
      engine.close();
      server.kill();
    }
  });

  it('redis in its namespace is shared by fe1 and fe2', { timeout: 60_000 }, async () => {
    const at = { host: net.ip('redis'), port: redis!.port };
    const set = await probe('fe1', 'redis', { ...at, command: 'SET netns-key from-fe1\r\n', lines: 1 });
    assert.deepEqual(set, { ok: true, reply: '+OK\r\n' });
    const get = await probe('fe2', 'redis', { ...at, command: 'GET netns-key\r\n', lines: 2 });
    assert.deepEqual(get, { ok: true, reply: '$8\r\nfrom-fe1\r\n' });
  });

  it('cut(m2) makes m2 unreachable from fe1, others unaffected; heal(m2) brings it back', { timeout: 120_000 }, async () => {
    assert.equal((await ping('fe1', 'm2')).ok, true);
    net.cut('m2');
    try {
      const r = await ping('fe1', 'm2', { timeoutMs: 3000 });
      assert.equal(r.ok, false, JSON.stringify(r));
      assert.equal((await ping('fe1', 'm1', { timeoutMs: 10_000 })).ok, true, 'm1 is not cut');
    } finally {
      net.heal('m2');
    }
    await retry('m2 to answer again after heal', 30_000, async () => ((await ping('fe1', 'm2')).ok ? true : undefined));
  });

  it('netem({ delayMs: 50 }) on m3 adds ~50 ms to a round trip from fe1; clearNetem removes it', { timeout: 120_000 }, async () => {
    const server = await startServer('m3', 'echo', 7200);
    try {
      const rtt = async () => {
        const r = await probe('fe1', 'rtt', { host: net.ip('m3'), port: 7200, n: 15, timeoutMs: 20_000 });
        assert.equal(r.ok, true, JSON.stringify(r));
        return r.median as number;
      };
      const base = await rtt();
      await net.netem('m3', { delayMs: 50 });
      const delayed = await rtt();
      console.log(`# rtt fe1 -> m3: ${base.toFixed(2)} ms, with netem 50 ms: ${delayed.toFixed(2)} ms`);
      assert.ok(delayed >= base + 40, `rtt ${base} -> ${delayed}`);
      // Bulk data crosses the forwarder too (GSO frames and offloaded checksums).
      assert.equal((await ping('fe1', 'm3', { timeoutMs: 10_000 })).ok, true);
      await net.clearNetem('m3');
      assert.ok(Number.isFinite(await rtt()));
    } finally {
      server.kill();
    }
  });

  it('destroy() leaves no namespace, link, process or directory behind', { timeout: 120_000 }, async () => {
    const nsNames = Object.values(net.hosts).map((h) => h.ns).concat(net.switchNs);
    const pids = nsNames.flatMap((ns) => spawnSync('ip', ['netns', 'pids', ns], { encoding: 'utf8' }).stdout.split('\n').filter(Boolean).map(Number));
    assert.ok(pids.length >= MACHINES.length * 2 + 1, `dockerd, containerd and redis run in the namespaces: ${pids.join(' ')}`);
    const dirs = [...Object.values(daemons).map((d) => d.dir), redis!.dir, pki.dir];
    await teardown();
    const left = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout;
    assert.ok(!left.includes(net.id), `namespaces left: ${left}`);
    const alive = pids.filter((p) => existsSync(`/proc/${p}`));
    assert.deepEqual(alive, [], 'processes left');
    assert.deepEqual(dirs.filter((d) => existsSync(d)), [], 'directories left');
    assert.ok(!existsSync(`/etc/netns/${net.ns('fe1')}`));
    const rootLinks = spawnSync('ip', ['-o', 'link', 'show'], { encoding: 'utf8' }).stdout.replace(/^\d+: /gm, '').split('\n').map((l) => l.split(':')[0]).sort().join(',');
    assert.equal(rootLinks, rootLinksBefore, 'the root namespace\'s links are as they were');
  });
});
