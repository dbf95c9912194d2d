/**
 * A private Docker daemon for tests: its own data root, exec root and socket in a fresh short
 * directory under /tmp, no bridge network and no iptables rules (replicas use the host network).
 * Needs root and dockerd; otherwise startDockerd() returns undefined and whyNoDockerd() says why.
 * Options: `wrap` runs it inside a network namespace, `tcp` adds a TLS listener (cluster tests).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, openSync, closeSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { DockerEngine } from '../../src/manager/docker/engine-client.ts';

export interface TestDockerd {
  /** unix://<dir>/docker.sock */
  host: string;
  dir: string;
  /** tcp://<ip>:<port> when started with `tcp` (TLS, client certificates required). */
  tcpHost?: string;
  /** Removes every container, stops the daemon, unmounts what it left and deletes the directory. */
  stop(): Promise<void>;
}

let reason = '';

export function whyNoDockerd(): string {
  return reason;
}

const CANDIDATES = ['/usr/sbin/dockerd', '/usr/bin/dockerd', '/usr/local/bin/dockerd'];

export interface DockerdOptions {
  timeoutMs?: number;
  /**
   * Prefix of the command, e.g. `['nsenter', '--net=/run/netns/<ns>']` to run the daemon (and
   * the containerd it starts, and its `--network host` containers) in a network namespace.
   * Prefer nsenter to `ip netns exec`: the latter remounts /sys, hiding the cgroup mounts.
   */
  wrap?: string[];
  /** Also listen on tcp://host:port (default 2376) with --tlsverify: these PEM files for the server and the CA its clients' certificates must chain to. */
  tcp?: { host: string; port?: number; ca: string; cert: string; key: string };
}

export async function startDockerd(options: number | DockerdOptions = {}): Promise<TestDockerd | undefined> {
  const opts: DockerdOptions = typeof options === 'number' ? { timeoutMs: options } : options;
  const timeoutMs = opts.timeoutMs ?? 60_000;
  const bin = CANDIDATES.find((p) => existsSync(p));
  if (!bin) return unavailable('dockerd is not installed');
  if (process.getuid?.() !== 0) return unavailable('dockerd needs root');

  const dir = mkdtempSync('/tmp/dkt-');
  const host = `unix://${dir}/docker.sock`;
  const tcpHost = opts.tcp ? `tcp://${opts.tcp.host}:${opts.tcp.port ?? 2376}` : undefined;
  const tls = opts.tcp
    ? ['-H', tcpHost!, '--tlsverify', '--tlscacert', opts.tcp.ca, '--tlscert', opts.tcp.cert, '--tlskey', opts.tcp.key]
    : [];
  const [cmd, ...pre] = opts.wrap?.length ? [...opts.wrap, bin] : [bin];
  const logFd = openSync(join(dir, 'dockerd.log'), 'a');
  let child: ChildProcess;
  try {
    child = spawn(cmd!, [...pre,
      '--data-root', join(dir, 'root'), '--exec-root', join(dir, 'exec'), '-H', host, '--pidfile', join(dir, 'pid'),
      '--iptables=false', '--bridge=none', ...tls,
    ], { stdio: ['ignore', logFd, logFd], detached: true });
  } finally {
    closeSync(logFd);
  }
  let exited = false;
  const gone = new Promise<void>((r) => child.once('exit', () => { exited = true; r(); }));
  child.once('error', () => { exited = true; });
  // If the test process dies without stop(), the daemon (and its containerd) must not outlive it.
  const killGroup = (evenAfterExit = false) => {
    if ((exited && !evenAfterExit) || !child.pid) return;
    try {
      process.kill(-child.pid, 'SIGKILL');
    } catch {
      // the whole group is gone already
    }
  };
  const onExit = () => killGroup();
  process.once('exit', onExit);

  const engine = new DockerEngine(host);
  const end = Date.now() + timeoutMs;
  let up = false;
  while (!exited && Date.now() < end) {
    try {
      await engine.ping();
      up = true;
      break;
    } catch {
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  const stop = async () => {
    try {
      if (up && !exited) {
        for (const c of await engine.listContainers({ all: true }).catch(() => [])) await engine.removeContainer(c.Id).catch(() => {});
      }
    } finally {
      engine.close();
      if (!exited && child.pid) child.kill('SIGTERM');
      const timer = setTimeout(() => killGroup(), 20_000);
      await gone;
      clearTimeout(timer);
      killGroup(true); // its containerd, should it have stayed behind
      process.removeListener('exit', onExit);
      unmountUnder(dir);
      rmSync(dir, { recursive: true, force: true });
    }
  };

  if (!up) {
    const log = existsSync(join(dir, 'dockerd.log')) ? readFileSync(join(dir, 'dockerd.log'), 'utf8').trim().split('\n').slice(-5).join('\n') : '';
    await stop();
    return unavailable(`dockerd did not come up within ${timeoutMs} ms${log ? `:\n${log}` : ''}`);
  }
  return { host, dir, tcpHost, stop };
}

function unavailable(why: string): undefined {
  reason = why;
  return undefined;
}

/** Mounts a killed daemon may leave (overlay, netns, shm), deepest first. */
function unmountUnder(dir: string): void {
  const mounts = readFileSync('/proc/self/mountinfo', 'utf8').split('\n')
    .map((l) => l.split(' ')[4] ?? '')
    .filter((p) => p.startsWith(dir + '/'))
    .sort((a, b) => b.length - a.length);
  for (const m of mounts) spawnSync('umount', ['-l', m]);
}
