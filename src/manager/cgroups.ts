/**
 * Per-replica CPU and memory limits for local child processes, through cgroups where this server
 * may write them (cgroup v1 or v2, found from /proc/self/cgroup and /proc/self/mountinfo).
 *
 * Layout: <hierarchy>/<this process's own cgroup>/<namespace>/<replica>, falling back to
 * <hierarchy>/<namespace>/<replica> when the own cgroup cannot take children, so it also works when
 * this server itself runs inside a limited cgroup (nested containers, systemd services).
 * Each controller is located and probed on its own: on a hybrid system memory may be v1 while
 * cpu is v2, and one of them may be enforced while the other is not.
 */
import { readdir, readFile, mkdir, rmdir, writeFile, access } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

export interface CgroupLimiter {
  /** How limits are enforced here: 'cgroup v1' / 'cgroup v2', or 'not enforced: <reason>'. */
  readonly cpuEnforcement: string;
  readonly memoryEnforcement: string;
  /** Creates the replica's cgroup with its limits (0 = unlimited); undefined when nothing can be enforced. Rejects if a limit cannot be written. */
  create(replicaKey: string, limits: { cpus: number; memoryMb: number }): Promise<ReplicaCgroup | undefined>;
  /** Removes the namespace cgroups once no replica cgroup is left in them. */
  close(): Promise<void>;
}

export interface ReplicaCgroup {
  /** The cgroup directories (one per v1 hierarchy, one for v2), for logs and tests. */
  readonly paths: readonly string[];
  /** Wraps a command so the process enters the cgroup before exec: nothing of it runs outside the limits. */
  wrap(command: string, args: string[]): { command: string; args: string[] };
  /** OOM kills in this cgroup since it was created. */
  oomKills(): Promise<number>;
  /** Removes the cgroup, retrying for ~2 s while exiting tasks still hold it; rejects if they do not leave. */
  remove(): Promise<void>;
}

type Controller = 'cpu' | 'memory';
const CONTROLLERS: Controller[] = ['cpu', 'memory'];

/** Where one controller is mounted: candidate parent directories, the own cgroup's first. */
export interface Hierarchy { version: 1 | 2; candidates: string[] }

/** The texts of /proc/self/cgroup and /proc/self/mountinfo; tests pass their own. */
export interface CgroupProbe { selfCgroup: string; mountinfo: string }

const CFS_PERIOD_US = 100_000;
const MIN_QUOTA_US = 1_000; // the kernel rejects quotas under 1 ms
const MiB = 1024 * 1024;

export async function createCgroupLimiter(namespace: string, probe?: CgroupProbe): Promise<CgroupLimiter> {
  probe ??= {
    selfCgroup: await readFile('/proc/self/cgroup', 'utf8').catch(() => ''),
    mountinfo: await readFile('/proc/self/mountinfo', 'utf8').catch(() => ''),
  };
  const located = locateHierarchies(probe);
  const found: Partial<Record<Controller, { version: 1 | 2; dir: string }>> = {};
  const enforcement = {} as Record<Controller, string>;
  for (const ctrl of CONTROLLERS) {
    const h = located[ctrl];
    if (typeof h === 'string') {
      enforcement[ctrl] = `not enforced: ${h}`;
      continue;
    }
    const errors: string[] = [];
    for (const base of h.candidates) {
      try {
        const dir = await prepareNamespace(h.version, ctrl, base, namespace);
        found[ctrl] = { version: h.version, dir };
        break;
      } catch (e) {
        errors.push((e as Error).message);
      }
    }
    enforcement[ctrl] = found[ctrl] ? `cgroup v${h.version}` : `not enforced: ${[...new Set(errors)].join('; ')}`;
  }
  const namespaceDirs = [...new Set(Object.values(found).map((f) => f.dir))];
  // Replica cgroups left by a run that crashed; rmdir only succeeds on ones without tasks.
  for (const dir of namespaceDirs) {
    const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
    for (const e of entries) if (e.isDirectory()) await rmdir(join(dir, e.name)).catch(() => {});
  }

  return {
    cpuEnforcement: enforcement.cpu,
    memoryEnforcement: enforcement.memory,
    async create(replicaKey, limits) {
      if (!found.cpu && !found.memory) return undefined;
      const name = escapeName(replicaKey);
      const cpu = found.cpu && { version: found.cpu.version, dir: join(found.cpu.dir, name) };
      const memory = found.memory && { version: found.memory.version, dir: join(found.memory.dir, name) };
      const paths = [...new Set([cpu?.dir, memory?.dir].filter((p): p is string => p !== undefined))];
      try {
        for (const p of paths) await mkdir(p, { recursive: true });
        if (memory) await setMemory(memory.version, memory.dir, limits.memoryMb);
        if (cpu) await setCpu(cpu.version, cpu.dir, limits.cpus);
        const baseline = memory ? await readOomKills(memory.version, memory.dir) : 0;
        return new Replica(paths, memory, baseline);
      } catch (e) {
        for (const p of paths) await rmdir(p).catch(() => {});
        throw e;
      }
    },
    async close() {
      for (const dir of namespaceDirs) await rmdir(dir).catch(() => {});
    },
  };
}

class Replica implements ReplicaCgroup {
  constructor(
    readonly paths: readonly string[],
    private readonly memory: { version: 1 | 2; dir: string } | undefined,
    private readonly baseline: number,
  ) {}

  wrap(command: string, args: string[]): { command: string; args: string[] } {
    // $$ is the shell's pid, which exec hands on to the command; a failed write stops the chain.
    const enter = this.paths.map((p) => `echo $$ > ${shellQuote(join(p, 'cgroup.procs'))}`).join(' && ');
    return { command: '/bin/sh', args: ['-c', `${enter} && exec "$0" "$@"`, command, ...args] };
  }

  async oomKills(): Promise<number> {
    if (!this.memory) return 0;
    return Math.max(0, (await readOomKills(this.memory.version, this.memory.dir)) - this.baseline);
  }

  async remove(): Promise<void> {
    for (const p of this.paths) {
      for (let attempt = 0; ; attempt++) {
        try {
          await rmdir(p);
          break;
        } catch (e) {
          const code = (e as NodeJS.ErrnoException).code;
          if (code === 'ENOENT') break;
          if (code !== 'EBUSY' || attempt >= 40) throw new Error(`cannot remove cgroup ${p}: ${code === 'EBUSY' ? 'it still has tasks' : (e as Error).message}`);
          await sleep(50);
        }
      }
    }
  }
}

/** Finds the cpu and memory hierarchies, or why there is none. Pure: reads only the texts given. */
export function locateHierarchies(probe: CgroupProbe): Record<Controller, Hierarchy | string> {
  const mounts = parseMountinfo(probe.mountinfo);
  const memberships = probe.selfCgroup.split('\n').filter(Boolean).map((line) => {
    const a = line.indexOf(':');
    const b = line.indexOf(':', a + 1);
    return { id: line.slice(0, a), controllers: line.slice(a + 1, b).split(',').filter(Boolean), path: line.slice(b + 1) };
  });
  const out = {} as Record<Controller, Hierarchy | string>;
  for (const ctrl of CONTROLLERS) {
    const v1 = memberships.find((m) => m.controllers.includes(ctrl));
    const v2 = memberships.find((m) => m.id === '0');
    if (v1) {
      const ms = mounts.filter((m) => m.fstype === 'cgroup' && m.superOptions.includes(ctrl));
      out[ctrl] = ms.length ? { version: 1, candidates: candidates(ms, v1.path) } : `the cgroup v1 ${ctrl} hierarchy is not mounted`;
    } else if (v2) {
      const ms = mounts.filter((m) => m.fstype === 'cgroup2');
      out[ctrl] = ms.length ? { version: 2, candidates: candidates(ms, v2.path) } : 'cgroup2 is not mounted';
    } else {
      out[ctrl] = `no ${ctrl} cgroup controller (neither cgroup v1 nor v2)`;
    }
  }
  return out;
}

interface Mount { root: string; point: string; fstype: string; superOptions: string[] }

function parseMountinfo(text: string): Mount[] {
  return text.split('\n').filter(Boolean).map((line) => {
    const f = line.split(' ');
    const sep = f.indexOf('-', 6);
    return { root: unescapeMount(f[3] ?? ''), point: unescapeMount(f[4] ?? ''), fstype: f[sep + 1] ?? '', superOptions: (f[sep + 3] ?? '').split(',') };
  });
}

function unescapeMount(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(parseInt(oct, 8)));
}

/** The own cgroup's directory where a mount shows it, then the mount points themselves. */
function candidates(mounts: Mount[], ownPath: string): string[] {
  const own: string[] = [];
  for (const m of mounts) {
    if (ownPath.includes('/..')) break; // outside our cgroup namespace: not reachable by path
    if (m.root === '/') own.push(join(m.point, ownPath));
    else if (ownPath === m.root || ownPath.startsWith(`${m.root}/`)) own.push(join(m.point, ownPath.slice(m.root.length)));
  }
  const trim = (p: string) => (p.length > 1 ? p.replace(/\/+$/, '') : p);
  return [...new Set([...own.slice(0, 1), mounts[0]!.point].map(trim))];
}

/** Makes <base>/<namespace> able to hold limited children of `ctrl`; returns its path, or throws why not. */
async function prepareNamespace(version: 1 | 2, ctrl: Controller, base: string, namespace: string): Promise<string> {
  const dir = join(base, namespace);
  if (version === 2) {
    const available = (await readText(join(base, 'cgroup.controllers'))).split(/\s+/);
    if (!available.includes(ctrl)) throw new Error(`the ${ctrl} controller is not available in ${base}`);
    const enabled = (await readText(join(base, 'cgroup.subtree_control'))).split(/\s+/);
    if (!enabled.includes(ctrl)) {
      await write(join(base, 'cgroup.subtree_control'), `+${ctrl}`).catch((e: Error) => {
        // v2 lets a cgroup pass controllers down only while it holds no processes itself (the root excepted).
        throw (e as { code?: string }).code === 'EBUSY' ? new Error(`cannot enable ${ctrl} below ${base}: it holds processes itself`) : e;
      });
    }
  }
  const existed = await exists(dir);
  try {
    await mkdir(dir, { recursive: true }).catch((e: NodeJS.ErrnoException) => { throw explain(e, `creating ${dir}`); });
    if (version === 2) await write(join(dir, 'cgroup.subtree_control'), `+${ctrl}`);
    // Writing "unlimited" proves the limit file exists and is writable before any replica relies on it.
    if (ctrl === 'memory') await write(join(dir, version === 1 ? 'memory.limit_in_bytes' : 'memory.max'), version === 1 ? '-1' : 'max');
    else await write(join(dir, version === 1 ? 'cpu.cfs_quota_us' : 'cpu.max'), version === 1 ? '-1' : 'max');
    return dir;
  } catch (e) {
    if (!existed) await rmdir(dir).catch(() => {});
    throw e;
  }
}

async function setMemory(version: 1 | 2, dir: string, memoryMb: number): Promise<void> {
  if (version === 2) {
    await write(join(dir, 'memory.max'), memoryMb > 0 ? String(memoryMb * MiB) : 'max');
    if (await exists(join(dir, 'memory.swap.max'))) await write(join(dir, 'memory.swap.max'), memoryMb > 0 ? '0' : 'max');
    return;
  }
  const value = memoryMb > 0 ? String(memoryMb * MiB) : '-1';
  const limit = join(dir, 'memory.limit_in_bytes');
  const memsw = join(dir, 'memory.memsw.limit_in_bytes');
  if (!(await exists(memsw))) return write(limit, value);
  // memory+swap may never be below memory: lower the memory limit first, raise memory+swap first.
  try {
    await write(limit, value);
    await write(memsw, value);
  } catch {
    await write(memsw, value);
    await write(limit, value);
  }
}

async function setCpu(version: 1 | 2, dir: string, cpus: number): Promise<void> {
  const quota = cpus > 0 ? Math.max(MIN_QUOTA_US, Math.round(cpus * CFS_PERIOD_US)) : undefined;
  if (version === 2) return write(join(dir, 'cpu.max'), `${quota ?? 'max'} ${CFS_PERIOD_US}`);
  await write(join(dir, 'cpu.cfs_period_us'), String(CFS_PERIOD_US));
  await write(join(dir, 'cpu.cfs_quota_us'), String(quota ?? -1));
}

/** v1: oom_kill in memory.oom_control (Linux ≥ 4.13), else memory.failcnt (times the limit was hit, an upper bound); v2: memory.events. */
async function readOomKills(version: 1 | 2, dir: string): Promise<number> {
  const text = await readFile(join(dir, version === 1 ? 'memory.oom_control' : 'memory.events'), 'utf8').catch(() => '');
  const m = /^oom_kill (\d+)/m.exec(text);
  if (m) return Number(m[1]);
  if (version === 1) return Number((await readFile(join(dir, 'memory.failcnt'), 'utf8').catch(() => '0')).trim()) || 0;
  return 0;
}

async function readText(file: string): Promise<string> {
  try {
    return (await readFile(file, 'utf8')).trim();
  } catch (e) {
    throw explain(e as NodeJS.ErrnoException, `reading ${file}`);
  }
}

async function write(file: string, value: string): Promise<void> {
  try {
    await writeFile(file, value);
  } catch (e) {
    throw explain(e as NodeJS.ErrnoException, `writing "${value}" to ${file}`);
  }
}

function explain(e: NodeJS.ErrnoException, doing: string): Error {
  const why: Record<string, string> = {
    EROFS: 'read-only file system',
    EACCES: `permission denied${process.geteuid?.() === 0 ? '' : ' (not root)'}`,
    EPERM: `operation not permitted${process.geteuid?.() === 0 ? '' : ' (not root)'}`,
    ENOENT: 'no such file (controller missing?)',
  };
  return Object.assign(new Error(`${why[e.code ?? ''] ?? e.message} ${doing}`), { code: e.code });
}

async function exists(path: string): Promise<boolean> {
  return access(path).then(() => true, () => false);
}

/** A directory name for any key, distinct keys giving distinct names: "m:1#0" → "m_3a1_230". */
function escapeName(key: string): string {
  return key.replace(/^\.|[^A-Za-z0-9.-]/g, (c) => {
    const code = c.charCodeAt(0);
    return code < 0x100 ? `_${code.toString(16).padStart(2, '0')}` : `_u${code.toString(16).padStart(4, '0')}`;
  });
}

function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}
