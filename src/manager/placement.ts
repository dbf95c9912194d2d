/**
 * Where a new replica goes, as a pure decision over what each machine reports.
 *
 * What a machine has free: its cores and memory less what each container running there takes,
 * counted as the larger of its limit and its measured use (a container's limit is reserved even
 * while it idles; one without a limit counts as what it uses) — our replicas, replicas being
 * created (their limits), and containers that are none of ours alike.
 *
 * The choice, in order:
 *   1. only machines that are up and have room for the request (cpus and memory; 0 = no limit,
 *      which fits on any machine that is up);
 *   2. machines not penalised (one whose replica just went unresponsive, or where a start just
 *      failed) before penalised ones;
 *   3. the most headroom — the smaller of the free CPU share and the free memory share once the
 *      replica is placed — where headrooms within `evenWithin` of the best count as even;
 *   4. among the even: fewest replicas of the same model version (spread), then most headroom,
 *      then the name.
 * Nothing fits: the answer says why for every machine.
 */

export interface PlacedContainer {
  /** Its limits (0 = none). */
  cpus: number;
  memoryBytes: number;
  /** What it uses now (0 when not measured yet). */
  usedCores: number;
  usedBytes: number;
  /** `<model>:<version>` of a replica of ours; undefined for anything else. */
  versionKey?: string;
}

export interface MachineView {
  name: string;
  /** Up: its engine answers. Down: `downReason` says why. */
  up: boolean;
  downReason?: string;
  cores: number;
  memoryTotalBytes: number;
  containers: PlacedContainer[];
  /** Used only when no machine that is not penalised fits. */
  penalised?: boolean;
}

export interface PlacementRequest {
  versionKey: string;
  cpus: number;
  memoryMb: number;
}

export type Placement =
  | { ok: true; machine: string; why: string }
  | { ok: false; reason: string };

export const DEFAULT_EVEN_WITHIN = 0.1;

export interface Headroom { freeCores: number; freeBytes: number }

export function headroomOf(m: Pick<MachineView, 'cores' | 'memoryTotalBytes' | 'containers'>): Headroom {
  let cores = 0;
  let bytes = 0;
  for (const c of m.containers) {
    cores += Math.max(c.cpus, c.usedCores);
    bytes += Math.max(c.memoryBytes, c.usedBytes);
  }
  return { freeCores: m.cores - cores, freeBytes: m.memoryTotalBytes - bytes };
}

export function place(req: PlacementRequest, machines: readonly MachineView[], evenWithin = DEFAULT_EVEN_WITHIN): Placement {
  const wantBytes = req.memoryMb * 1024 * 1024;
  const fitting: Array<{ m: MachineView; score: number; same: number }> = [];
  const refusals: string[] = [];
  for (const m of machines) {
    if (!m.up) {
      refusals.push(`${m.name} is down${m.downReason ? ` (${m.downReason})` : ''}`);
      continue;
    }
    const h = headroomOf(m);
    const cpuFits = req.cpus <= 0 || h.freeCores + 1e-9 >= req.cpus;
    const memFits = wantBytes <= 0 || h.freeBytes >= wantBytes;
    if (!cpuFits || !memFits) {
      refusals.push(`${m.name} has ${describe(h.freeCores, h.freeBytes)} free`);
      continue;
    }
    const cpuShare = m.cores > 0 ? (h.freeCores - Math.max(0, req.cpus)) / m.cores : 0;
    const memShare = m.memoryTotalBytes > 0 ? (h.freeBytes - Math.max(0, wantBytes)) / m.memoryTotalBytes : 0;
    const same = m.containers.filter((c) => c.versionKey === req.versionKey).length;
    fitting.push({ m, score: Math.min(cpuShare, memShare), same });
  }
  if (!fitting.length) {
    const what = `${fmt(req.cpus)} cpus / ${Math.round(req.memoryMb)} MiB`;
    if (!machines.length) return { ok: false, reason: `no machine has room for ${what}: no machine is configured` };
    return { ok: false, reason: `no machine has room for ${what}: ${refusals.join(', ')}` };
  }
  const fresh = fitting.filter((f) => !f.m.penalised);
  const pool = fresh.length ? fresh : fitting;
  const best = Math.max(...pool.map((f) => f.score));
  const even = pool.filter((f) => f.score >= best - evenWithin);
  even.sort((a, b) => a.same - b.same || b.score - a.score || a.m.name.localeCompare(b.m.name));
  const chosen = even[0]!;
  const why = [
    `headroom ${(chosen.score * 100).toFixed(0)}%`,
    `${chosen.same} replica${chosen.same === 1 ? '' : 's'} of ${req.versionKey} there`,
    ...(fresh.length && fresh.length < fitting.length ? [`avoiding ${fitting.filter((f) => f.m.penalised).map((f) => f.m.name).join(', ')}`] : []),
    ...(fresh.length ? [] : ['every machine with room is penalised']),
  ].join(', ');
  return { ok: true, machine: chosen.m.name, why };
}

function describe(cores: number, bytes: number): string {
  return `${fmt(Math.max(0, cores))} cpus / ${Math.max(0, Math.floor(bytes / 1048576))} MiB`;
}

function fmt(n: number): string {
  return Number.isInteger(n) ? String(n) : n.toFixed(2).replace(/0+$/, '');
}
