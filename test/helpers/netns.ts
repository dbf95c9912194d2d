/**
 * Several "machines" on this one machine, for cluster tests: one network namespace per host,
 * each with an `eth0` (its own 10.a.b.x/24 address) whose veth peer sits on a bridge in a
 * dedicated "switch" namespace. Nothing is ever added to the root namespace: the veth pairs are
 * created straight into their namespaces, and the only files written outside /tmp are the
 * namespaces' bind mounts under /run/netns and their /etc/netns/<ns>/hosts (which `ip netns exec`
 * mounts over /etc/hosts, so host names such as `m1` resolve inside every namespace).
 *
 *   switch ns:  br0 ── p0 ─┐ ── p1 ─┐ ...
 *   host ns:          eth0 ─┘   eth0 ─┘       (lo up everywhere)
 *
 * Two ways in: spawnIn() uses `ip netns exec` (a private mount namespace with the host's own
 * /sys and /etc/hosts, but /sys/fs/cgroup is then empty); daemonWrap() gives an `nsenter --net`
 * prefix for daemons that need the machine's cgroup mounts (dockerd, or a frontend with the
 * process backend). destroy() kills everything in the namespaces, however it got there.
 *
 * Faults are made on the switch side of a host's link, so they look like the network, not the
 * host, misbehaving: `cut` takes the port down (packets vanish; the host sees NO-CARRIER), and
 * `netem` re-routes the port through a small delaying forwarder (see NETEM below: this kernel
 * may have no sch_netem, so the delay is done in user space with packet sockets).
 *
 * Namespaces are named `ckn<pid>x<rand>-<host>`: a later run removes those whose pid is dead.
 * createNetwork() throws when it cannot run; whyNoNetns() says so beforehand, for `skip`.
 */
import { spawn, spawnSync, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { randomBytes, randomInt } from 'node:crypto';
import { existsSync, mkdirSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { startDockerd, whyNoDockerd, type TestDockerd } from './dockerd.ts';
import type { TestPki } from './tls-certs.ts';

export interface NetHost {
  name: string;
  /** The namespace's name (for `ip netns exec` / `ip -n`). */
  ns: string;
  ip: string;
  /** The switch-side end of its link (in the switch namespace). */
  port: string;
}

export interface NetemOptions {
  /** Added to every round trip through this host's link: half on the way in, half on the way out. */
  delayMs?: number;
  /** Uniform spread (±) of that round-trip delay, again half each way; order within a direction is kept. */
  jitterMs?: number;
  /** Each frame, in either direction, is dropped with this probability (percent). */
  lossPct?: number;
}

export interface Network {
  /** Unique to this run, e.g. `ckn4242x9f1c`. */
  id: string;
  /** `10.a.b`: hosts are `10.a.b.11`, `.12`, ... in the order given. */
  subnet: string;
  switchNs: string;
  hosts: Record<string, NetHost>;
  ip(host: string): string;
  ns(host: string): string;
  /** Runs `cmd` inside the host's namespace (`ip netns exec`, so /sys and /etc/hosts are its own); killed by destroy(). */
  spawnIn(host: string, cmd: string, args?: string[], opts?: SpawnOptions): ChildProcess;
  /** spawnIn and wait: exit code and output (a timeout kills it: code null). */
  run(host: string, cmd: string, args?: string[], opts?: { timeoutMs?: number; input?: string }): Promise<RunResult>;
  /** Prefix to run a long-lived daemon in the host's network namespace only (the mount namespace and /sys stay the machine's). */
  daemonWrap(host: string): string[];
  /** Takes the host's switch port down: a partition (packets to it vanish; it gets EHOSTUNREACH once ARP gives up, ~3 s). */
  cut(host: string): void;
  heal(host: string): void;
  netem(host: string, opts: NetemOptions): Promise<void>;
  clearNetem(host: string): Promise<void>;
  /** Kills what it spawned and whatever else runs in its namespaces, deletes namespaces, links and files. */
  destroy(): Promise<void>;
}

export interface RunResult { code: number | null; stdout: string; stderr: string }

const PYTHON = ['/usr/bin/python3', '/usr/local/bin/python3'].find((p) => existsSync(p));

/** Why createNetwork() cannot run here, or '' when it can. */
export function whyNoNetns(): string {
  if (process.platform !== 'linux') return 'network namespaces need Linux';
  if (process.getuid?.() !== 0) return 'network namespaces need root';
  const ip = spawnSync('ip', ['-V'], { encoding: 'utf8' });
  if (ip.error || ip.status !== 0) return 'the `ip` command (iproute2) is not installed';
  if (spawnSync('nsenter', ['--version']).status !== 0) return 'nsenter (util-linux) is not installed';
  return '';
}

/** Why netem() cannot run here (it needs python3 for its forwarder), or ''. */
export function whyNoNetem(): string {
  return PYTHON ? '' : 'netem() needs /usr/bin/python3 for its forwarder';
}

function ipCmd(args: string[]): void {
  const r = spawnSync('ip', args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`ip ${args.join(' ')}: ${(r.stderr || r.error?.message || '').trim()}`);
}

function listNamespaces(): string[] {
  const r = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' });
  return (r.stdout ?? '').split('\n').map((l) => l.split(' ')[0]!).filter(Boolean);
}

function pidsIn(ns: string): number[] {
  const r = spawnSync('ip', ['netns', 'pids', ns], { encoding: 'utf8' });
  return (r.stdout ?? '').split('\n').map(Number).filter((n) => n > 0);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** SIGKILLs every process in the namespaces (a machine dying), a few rounds for children forked meanwhile. Synchronous. */
export function killEverythingIn(names: string[]): void {
  for (let round = 0; round < 3; round++) {
    const pids = names.flatMap(pidsIn);
    if (!pids.length) break;
    for (const p of pids) {
      try {
        process.kill(p, 'SIGKILL');
      } catch {
        // gone already
      }
    }
    spawnSync('sleep', ['0.2']);
  }
}

/** SIGKILLs every process in the namespaces, then deletes them and their /etc/netns files. Synchronous (usable in 'exit'). */
function removeNamespacesSync(names: string[]): void {
  killEverythingIn(names);
  for (const n of names) {
    spawnSync('ip', ['netns', 'del', n]);
    rmSync(`/etc/netns/${n}`, { recursive: true, force: true });
  }
  try {
    rmdirSync('/etc/netns'); // only when empty: it may be someone else's
  } catch {
    // not empty, or not there
  }
}

/** Namespaces (and their processes) left by runs whose process is gone. */
export function sweepStaleNetworks(): string[] {
  const stale = listNamespaces().filter((n) => {
    const m = /^ckn(\d+)x[0-9a-f]+-/.exec(n);
    return m && Number(m[1]) !== process.pid && !alive(Number(m[1]));
  });
  if (stale.length) removeNamespacesSync(stale);
  return stale;
}

export async function createNetwork(opts: { hosts: string[] }): Promise<Network> {
  const why = whyNoNetns();
  if (why) throw new Error(`createNetwork: ${why}`);
  if (new Set(opts.hosts).size !== opts.hosts.length || opts.hosts.some((h) => !/^[a-z][a-z0-9-]{0,20}$/.test(h))) {
    throw new Error(`createNetwork: host names must be distinct, lowercase, [a-z0-9-]: ${opts.hosts.join(', ')}`);
  }
  if (opts.hosts.length > 200) throw new Error('createNetwork: at most 200 hosts');
  sweepStaleNetworks();

  const id = `ckn${process.pid}x${randomBytes(2).toString('hex')}`;
  const subnet = `10.${randomInt(16, 250)}.${randomInt(1, 250)}`;
  const switchNs = `${id}-switch`;
  const hosts: Record<string, NetHost> = {};
  opts.hosts.forEach((name, i) => {
    hosts[name] = { name, ns: `${id}-${name}`, ip: `${subnet}.${11 + i}`, port: `p${i}` };
  });
  const namespaces = [switchNs, ...Object.values(hosts).map((h) => h.ns)];
  const children = new Set<ChildProcess>();
  const forwarders = new Map<string, { child: ChildProcess; gone: Promise<void> }>();
  let destroyed = false;

  const killAllSync = () => {
    for (const c of children) killGroup(c, 'SIGKILL');
    removeNamespacesSync(namespaces);
  };
  const onExit = () => {
    if (!destroyed) killAllSync();
  };
  // Interrupted (Ctrl-C, a runner's SIGTERM): clean up, then exit as the signal would have
  // ('exit' hooks, such as the daemons' own, still run).
  const onSignal = (sig: NodeJS.Signals) => {
    onExit();
    destroyed = true;
    process.exit(128 + (sig === 'SIGINT' ? 2 : 15));
  };
  const unhook = () => {
    process.removeListener('exit', onExit);
    process.removeListener('SIGINT', onSignal);
    process.removeListener('SIGTERM', onSignal);
  };
  process.once('exit', onExit);
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  try {
    for (const ns of namespaces) {
      if (listNamespaces().includes(ns)) throw new Error(`namespace ${ns} exists already`);
      ipCmd(['netns', 'add', ns]);
      ipCmd(['-n', ns, 'link', 'set', 'lo', 'up']);
    }
    ipCmd(['-n', switchNs, 'link', 'add', 'br0', 'type', 'bridge']);
    ipCmd(['-n', switchNs, 'link', 'set', 'br0', 'up']);
    const etcHosts = ['127.0.0.1\tlocalhost', ...Object.values(hosts).map((h) => `${h.ip}\t${h.name}`)].join('\n') + '\n';
    for (const h of Object.values(hosts)) {
      // Both ends are created inside their namespaces: the root namespace never sees them.
      ipCmd(['link', 'add', 'eth0', 'netns', h.ns, 'type', 'veth', 'peer', 'name', h.port, 'netns', switchNs]);
      ipCmd(['-n', switchNs, 'link', 'set', h.port, 'master', 'br0']);
      ipCmd(['-n', switchNs, 'link', 'set', h.port, 'up']);
      ipCmd(['-n', h.ns, 'addr', 'add', `${h.ip}/24`, 'dev', 'eth0']);
      ipCmd(['-n', h.ns, 'link', 'set', 'eth0', 'up']);
      mkdirSync(`/etc/netns/${h.ns}`, { recursive: true });
      writeFileSync(`/etc/netns/${h.ns}/hosts`, etcHosts);
    }
  } catch (e) {
    unhook();
    removeNamespacesSync(namespaces);
    throw e;
  }

  const host = (name: string): NetHost => {
    const h = hosts[name];
    if (!h) throw new Error(`no host ${name} in this network (${Object.keys(hosts).join(', ')})`);
    return h;
  };

  const spawnIn = (name: string, cmd: string, args: string[] = [], spawnOpts: SpawnOptions = {}): ChildProcess => {
    if (destroyed) throw new Error('network destroyed');
    const child = spawn('ip', ['netns', 'exec', host(name).ns, cmd, ...args], { stdio: 'ignore', ...spawnOpts, detached: true });
    children.add(child);
    child.once('exit', () => children.delete(child));
    child.once('error', () => children.delete(child));
    return child;
  };

  const run = (name: string, cmd: string, args: string[] = [], o: { timeoutMs?: number; input?: string } = {}): Promise<RunResult> => {
    const child = spawnIn(name, cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d: Buffer) => { stdout += d.toString(); });
    child.stderr!.on('data', (d: Buffer) => { stderr += d.toString(); });
    child.stdin!.on('error', () => {});
    child.stdin!.end(o.input ?? '');
    const timer = setTimeout(() => killGroup(child, 'SIGKILL'), o.timeoutMs ?? 60_000);
    return new Promise((resolve) => {
      child.once('error', (e) => { clearTimeout(timer); resolve({ code: -1, stdout, stderr: stderr + e.message }); });
      child.once('close', (code) => { clearTimeout(timer); resolve({ code, stdout, stderr }); });
    });
  };

  const stopForwarder = async (name: string) => {
    const f = forwarders.get(name);
    if (!f) return;
    forwarders.delete(name);
    killGroup(f.child, 'SIGKILL');
    await f.gone;
  };

  const clearNetem = async (name: string) => {
    const h = host(name);
    if (!forwarders.has(name)) return;
    await stopForwarder(name);
    spawnSync('ip', ['-n', switchNs, 'link', 'del', `${h.port}b`]); // takes its peer <port>f along
    ipCmd(['-n', switchNs, 'link', 'set', h.port, 'master', 'br0']);
  };

  return {
    id, subnet, switchNs, hosts,
    ip: (name) => host(name).ip,
    ns: (name) => host(name).ns,
    spawnIn,
    run,
    daemonWrap: (name) => ['nsenter', `--net=/run/netns/${host(name).ns}`],
    cut: (name) => ipCmd(['-n', switchNs, 'link', 'set', host(name).port, 'down']),
    heal: (name) => ipCmd(['-n', switchNs, 'link', 'set', host(name).port, 'up']),
    netem: async (name, n) => {
      const h = host(name);
      const why = whyNoNetem();
      if (why) throw new Error(why);
      await clearNetem(name);
      // <port> leaves the bridge; a new pair <port>f (forwarder side) / <port>b (on the bridge)
      // takes its place, and the forwarder copies frames between <port> and <port>f.
      ipCmd(['-n', switchNs, 'link', 'add', `${h.port}f`, 'type', 'veth', 'peer', 'name', `${h.port}b`]);
      ipCmd(['-n', switchNs, 'link', 'set', `${h.port}b`, 'master', 'br0']);
      for (const l of [`${h.port}f`, `${h.port}b`]) ipCmd(['-n', switchNs, 'link', 'set', l, 'up']);
      ipCmd(['-n', switchNs, 'link', 'set', h.port, 'nomaster']);
      const child = spawn('ip', ['netns', 'exec', switchNs, PYTHON!, '-u', '-c', NETEM,
        h.port, `${h.port}f`, String((n.delayMs ?? 0) / 2), String((n.jitterMs ?? 0) / 2), String(n.lossPct ?? 0)],
      { stdio: ['ignore', 'pipe', 'inherit'], detached: true });
      children.add(child);
      const gone = new Promise<void>((r) => child.once('exit', () => { children.delete(child); r(); }));
      forwarders.set(name, { child, gone });
      // It says "ready" once both packet sockets are bound.
      const ready = await new Promise<boolean>((resolve) => {
        let out = '';
        child.stdout!.on('data', (d: Buffer) => {
          out += d.toString();
          if (out.includes('ready')) resolve(true);
        });
        child.once('exit', () => resolve(false));
      });
      if (!ready) {
        await clearNetem(name).catch(() => {});
        throw new Error(`netem forwarder for ${name} did not start`);
      }
    },
    clearNetem,
    destroy: async () => {
      if (destroyed) return;
      destroyed = true;
      const all = [...children];
      for (const c of all) killGroup(c, 'SIGTERM');
      const deadline = Date.now() + 10_000;
      while (all.some((c) => c.exitCode === null && c.signalCode === null) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      killAllSync();
      unhook();
    },
  };
}

function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (!child.pid || child.exitCode !== null || child.signalCode !== null) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    // the group is gone
  }
}

/**
 * The netem stand-in: an L2 forwarder between two interfaces over AF_PACKET sockets, holding
 * each frame for `delay ± jitter` seconds (per direction) and dropping `loss` percent. The
 * virtio-net header (PACKET_VNET_HDR) carries checksum-offload and GSO state across, so veth
 * offloads need not be switched off (this machine has no ethtool either).
 * argv: ifA ifB delayMsOneWay jitterMsOneWay lossPct
 */
const NETEM = String.raw`
import heapq, random, socket, sys, threading, time
a, b = sys.argv[1], sys.argv[2]
delay, jitter, loss = float(sys.argv[3]) / 1000, float(sys.argv[4]) / 1000, float(sys.argv[5]) / 100
SOL_PACKET, PACKET_VNET_HDR, PACKET_OUTGOING = 263, 15, 4
def open_sock(ifname):
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3))
    s.setsockopt(SOL_PACKET, PACKET_VNET_HDR, 1)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    s.bind((ifname, 0))
    return s
sa, sb = open_sock(a), open_sock(b)
heap, cond, seq = [], threading.Condition(), [0]
last = {}
def reader(src, dst):
    while True:
        try:
            data, addr = src.recvfrom(262144)
        except OSError:
            time.sleep(0.01)
            continue
        if addr[2] == PACKET_OUTGOING:
            continue
        if loss and random.random() < loss:
            continue
        due = time.monotonic() + max(0.0, delay + random.uniform(-jitter, jitter))
        with cond:
            due = max(due, last.get(dst, 0.0))
            last[dst] = due
            seq[0] += 1
            heapq.heappush(heap, (due, seq[0], dst, data))
            cond.notify()
def sender():
    while True:
        with cond:
            while not heap or heap[0][0] > time.monotonic():
                cond.wait(None if not heap else heap[0][0] - time.monotonic())
            _, _, dst, data = heapq.heappop(heap)
        try:
            dst.send(data)
        except OSError:
            pass
for src, dst in ((sa, sb), (sb, sa)):
    threading.Thread(target=reader, args=(src, dst), daemon=True).start()
print("ready", flush=True)
sender()
`;

// ---- machines: a TLS dockerd per host, and the runtime image on each ----

/** Starts a dockerd in each host's namespace (in parallel): unix socket for the test, tcp://<ip>:2376 with --tlsverify for frontends. */
export async function startMachineDockerds(net: Network, names: string[], pki: TestPki, timeoutMs = 120_000): Promise<Record<string, TestDockerd>> {
  const started = await Promise.all(names.map(async (name) => {
    const server = pki.server(`dockerd-${name}`, { ips: [net.ip(name)], dns: [name] });
    const d = await startDockerd({ timeoutMs, wrap: net.daemonWrap(name), tcp: { host: net.ip(name), ca: server.ca, cert: server.cert, key: server.key } });
    return [name, d] as const;
  }));
  const failed = started.filter(([, d]) => !d).map(([n]) => n);
  if (failed.length) {
    await Promise.all(started.map(([, d]) => d?.stop()));
    throw new Error(`dockerd did not start on ${failed.join(', ')}: ${whyNoDockerd()}`);
  }
  return Object.fromEntries(started) as Record<string, TestDockerd>;
}

/** `docker save` on one daemon streamed into `docker load` on the others (unix:// hosts), all at once. */
export async function copyImage(from: string, to: string[], tag: string): Promise<void> {
  const sock = (h: string) => {
    if (!h.startsWith('unix://')) throw new Error(`copyImage wants unix:// hosts, not ${h}`);
    return h.slice('unix://'.length);
  };
  const source = await new Promise<http.IncomingMessage>((resolve, reject) => {
    http.get({ socketPath: sock(from), path: `/images/${encodeURIComponent(tag)}/get` }, resolve).once('error', reject);
  });
  if (source.statusCode !== 200) {
    source.resume();
    throw new Error(`GET /images/${tag}/get on ${from}: ${source.statusCode}`);
  }
  const requests: http.ClientRequest[] = [];
  const loads = to.map((h) => new Promise<void>((resolve, reject) => {
    const req = http.request({ socketPath: sock(h), method: 'POST', path: '/images/load?quiet=1', headers: { 'content-type': 'application/x-tar' } }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => { body += d.toString(); });
      res.on('end', () => (res.statusCode === 200 && !body.includes('"error') ? resolve() : reject(new Error(`POST /images/load on ${h}: ${res.statusCode} ${body.slice(0, 300)}`))));
    });
    req.once('error', reject);
    requests.push(req);
    source.pipe(req);
  }));
  source.once('error', (e) => { for (const r of requests) r.destroy(e); });
  await Promise.all(loads);
}
