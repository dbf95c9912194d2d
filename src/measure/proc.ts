/**
 * Readers of Linux /proc for the local backend: the machine's CPU, memory and load, and one
 * process's CPU time and resident memory. Counters are cumulative; `MachineSampler` and `CpuRate`
 * turn them into rates between two samples.
 */
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { availableParallelism, hostname } from 'node:os';
import type { MachineUsage } from './usage.ts';

/** Cumulative CPU time in seconds, summed over every CPU /proc/stat lists. */
export interface CpuTimes { busy: number; total: number }

/** USER_HZ, the unit of /proc tick counters: 100 on every mainstream Linux architecture. */
const DEFAULT_CLK_TCK = 100;
let clkTck: Promise<number> | undefined;

/** Asked once from `getconf CLK_TCK`; 100 where getconf is missing (minimal images). */
function ticksPerSecond(): Promise<number> {
  clkTck ??= new Promise((resolve) => {
    execFile('getconf', ['CLK_TCK'], { timeout: 2000 }, (err, stdout) => {
      const n = Number(String(stdout).trim());
      resolve(!err && Number.isFinite(n) && n > 0 ? n : DEFAULT_CLK_TCK);
    });
  });
  return clkTck;
}

/** /proc/stat, first line: "cpu user nice system idle iowait irq softirq steal guest guest_nice". */
export async function readMachineCpu(): Promise<CpuTimes> {
  const [text, hz] = await Promise.all([readFile('/proc/stat', 'utf8'), ticksPerSecond()]);
  const line = text.slice(0, text.indexOf('\n'));
  const f = line.trim().split(/\s+/).slice(1).map(Number);
  // guest and guest_nice are already counted in user and nice, so only the first eight add up.
  const [user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0] = f;
  const total = user + nice + system + idle + iowait + irq + softirq + steal;
  return { busy: (total - idle - iowait) / hz, total: total / hz };
}

/** /proc/meminfo. Inside a container without lxcfs these are the host's figures, not the container's limit. */
export async function readMemory(): Promise<{ totalBytes: number; availableBytes: number }> {
  const text = await readFile('/proc/meminfo', 'utf8');
  const kb = (key: string): number | undefined => {
    const m = new RegExp(`^${key}:\\s+(\\d+)`, 'm').exec(text);
    return m ? Number(m[1]) * 1024 : undefined;
  };
  const totalBytes = kb('MemTotal') ?? 0;
  // MemAvailable appeared in Linux 3.14; before it, free + buffers + page cache is the usual estimate.
  const availableBytes = kb('MemAvailable') ?? (kb('MemFree') ?? 0) + (kb('Buffers') ?? 0) + (kb('Cached') ?? 0);
  return { totalBytes, availableBytes };
}

export async function readLoad1(): Promise<number> {
  const text = await readFile('/proc/loadavg', 'utf8');
  return Number(text.trim().split(/\s+/)[0]);
}

/**
 * CPU time of a process (its own plus that of the children it has waited for) and its resident
 * memory. Undefined when the process is gone, including a zombie waiting to be reaped.
 */
export async function readProcess(pid: number): Promise<{ cpuSeconds: number; rssBytes: number } | undefined> {
  let stat: string;
  let status: string;
  try {
    [stat, status] = await Promise.all([readFile(`/proc/${pid}/stat`, 'utf8'), readFile(`/proc/${pid}/status`, 'utf8')]);
  } catch (e) {
    if (isGone(e)) return undefined;
    throw e;
  }
  // The command name (field 2) is in parentheses and may itself hold spaces or ')'.
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  if (rest[0] === 'Z' || rest[0] === 'X') return undefined;
  // rest[0] is field 3 (state); utime, stime, cutime, cstime are fields 14–17.
  const ticks = Number(rest[11]) + Number(rest[12]) + Number(rest[13]) + Number(rest[14]);
  const rss = /^VmRSS:\s+(\d+)\s+kB/m.exec(status);
  return { cpuSeconds: ticks / (await ticksPerSecond()), rssBytes: rss ? Number(rss[1]) * 1024 : 0 };
}

function isGone(e: unknown): boolean {
  const code = (e as NodeJS.ErrnoException).code;
  return code === 'ENOENT' || code === 'ESRCH';
}

/**
 * Samples the machine. /proc/stat counts every CPU of the kernel, which in a container or a
 * CPU-limited VM may be more than this process can use; so `cpuBusyCores` is the busy fraction of
 * all the kernel's CPUs scaled to `cores` (= os.availableParallelism()), i.e. how loaded the
 * machine is, in units of the cores we may use. The first sample averages since boot.
 */
export class MachineSampler {
  private previous: CpuTimes = { busy: 0, total: 0 };

  constructor(private readonly name: string = hostname()) {}

  async sample(): Promise<MachineUsage> {
    const [cpu, memory, load1] = await Promise.all([readMachineCpu(), readMemory(), readLoad1()]);
    const cores = availableParallelism();
    const dTotal = cpu.total - this.previous.total;
    const dBusy = cpu.busy - this.previous.busy;
    this.previous = cpu;
    const busyFraction = dTotal > 0 ? Math.min(1, Math.max(0, dBusy / dTotal)) : 0;
    return {
      name: this.name,
      cores,
      cpuBusyCores: busyFraction * cores,
      memoryTotalBytes: memory.totalBytes,
      memoryAvailableBytes: memory.availableBytes,
      load1,
    };
  }
}

/** Cores used per key (1.0 = one full core) since that key's previous call; 0 on the first call. */
export class CpuRate {
  private readonly last = new Map<string, { cpuSeconds: number; nowMs: number }>();

  rate(key: string, cpuSeconds: number, nowMs: number): number {
    const prev = this.last.get(key);
    this.last.set(key, { cpuSeconds, nowMs });
    if (!prev) return 0;
    const dt = (nowMs - prev.nowMs) / 1000;
    const dCpu = cpuSeconds - prev.cpuSeconds;
    // A counter that went back means a new process under the same key: start over from here.
    if (dt <= 0 || dCpu < 0) return 0;
    return dCpu / dt;
  }

  forget(key: string): void {
    this.last.delete(key);
  }
}
