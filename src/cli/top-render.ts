/** `clipper top`'s frame as a pure function of the status JSON: no terminal, no clock, no I/O. */
import { bar, gib, mib, num, pct, truncate } from './format.ts';
import { autoscalingText, type ContainerJson, type LoadJson, type ModelJson, type ScalingJson, type StatusJson } from './status-types.ts';

export interface TopRenderOptions {
  /** Columns: every line is cut to fit, never wrapped. */
  width: number;
  /** Rows: a taller frame loses the end of the model section (header and events stay). Default: no limit. */
  height?: number;
  /** Epoch ms, for the clock and the ages. */
  now: number;
  /** The admin URL, for the header. */
  server?: string;
  /** The latest refresh failed; `status` is then the last good one, if any. */
  error?: string;
  /** Epoch ms of the last good refresh, shown beside `error`. */
  lastOkAt?: number;
  /** Ends the title line, e.g. the keys. */
  hint?: string;
}

const EVENTS_SHOWN = 5;
const STALE_MS = 5000;

interface Column { head: string; width: number; right?: boolean }

const versionColumns = (versionWidth: number): Column[] => [
  { head: 'VERSION', width: versionWidth }, { head: 'ROLE', width: 9 }, { head: 'READY', width: 5, right: true },
  { head: 'IN/s', width: 7, right: true }, { head: 'SHED/s', width: 7, right: true }, { head: 'LATE/s', width: 7, right: true },
  { head: 'SLO%', width: 6, right: true }, { head: 'Q50 ms', width: 7, right: true }, { head: 'Q99 ms', width: 7, right: true },
  { head: 'DEPTH', width: 6, right: true }, { head: 'SVC ms', width: 7, right: true }, { head: 'LIMITS', width: 20 },
];

const replicaColumns = (idWidth: number, machineWidth: number): Column[] => [
  { head: 'REPLICA', width: idWidth }, { head: 'STATE', width: 12 }, { head: 'MACHINE', width: machineWidth },
  { head: 'CPU%', width: 6, right: true }, { head: 'RSS MiB', width: 8, right: true }, { head: 'BATCH/s', width: 8, right: true },
  { head: 'BUSY%', width: 6, right: true }, { head: 'RESTARTS', width: 8, right: true }, { head: 'LAST EXIT', width: 48 },
];

function row(cols: Column[], values: string[], indent: number): string {
  const cells = cols.map((c, i) => {
    const v = truncate(values[i] ?? '', c.width);
    return c.right ? v.padStart(c.width) : v.padEnd(c.width);
  });
  return `${' '.repeat(indent)}${cells.join('  ')}`.trimEnd();
}

export function renderTop(status: StatusJson | undefined, opts: TopRenderOptions): string[] {
  const head = header(status, opts);
  const body = status ? models(status, opts.now) : [];
  const foot = status ? events(status) : [];
  return fit(head, body, foot, opts);
}

function header(s: StatusJson | undefined, o: TopRenderOptions): string[] {
  const title = ['clipper top', o.server, s?.backend ? `backend ${s.backend}` : undefined, clock(o.now)];
  const at = s?.at ? Date.parse(s.at) : NaN;
  if (!o.error && o.now - at > STALE_MS) title.push(`measured ${ago(at, o.now)}`);
  title.push(o.hint);
  const lines = [title.filter(Boolean).join('  ')];
  if (o.error) lines.push(`! ${o.error} — retrying${s && o.lastOkAt !== undefined ? `; showing the update of ${clock(o.lastOkAt)}` : ''}`);
  if (!s) return lines;
  const machines = s.machines ?? [];
  const nameWidth = Math.max(0, ...machines.map((m) => m.name.length));
  for (const m of machines) {
    const busy = m.cpu_busy_cores ?? undefined;
    const cpuShare = busy !== undefined && m.cores ? busy / m.cores : NaN;
    const total = m.memory_total_bytes ?? undefined;
    const used = total !== undefined && m.memory_available_bytes != null ? total - m.memory_available_bytes : undefined;
    const memShare = used !== undefined && total ? used / total : NaN;
    lines.push([
      m.name.padEnd(nameWidth),
      `CPU ${bar(cpuShare)} ${pct(cpuShare, 0).padStart(3)}% ${num(busy, 1)}/${m.cores ?? '-'} cores`,
      `MEM ${bar(memShare)} ${gib(used)}/${gib(total)} GiB`,
      `load1 ${num(m.load1, 2)}`,
    ].join('   '));
  }
  if (machines.length === 0) lines.push('machines: not measured yet');
  const containers = s.containers ?? [];
  const ready = containers.filter((c) => c.state === 'READY').length;
  const names = new Set((s.models ?? []).map((m) => m.model_name));
  lines.push(`${count(s.applications?.length ?? 0, 'application')}, ${count(names.size, 'model')}, replicas ${ready} ready of ${containers.length}`);
  return lines;
}

function models(s: StatusJson, now: number): string[] {
  const containers = s.containers ?? [];
  const names = [...new Set([...(s.models ?? []).map((m) => m.model_name), ...containers.map((c) => c.model_name)])].sort();
  if (names.length === 0) return ['', 'no models deployed'];
  const versionWidth = Math.max(7, ...(s.models ?? []).map((m) => m.model_version.length));
  const vcols = versionColumns(versionWidth);
  const rcols = replicaColumns(
    Math.max(7, ...containers.map((c) => c.replica_id.length)),
    Math.max(7, ...containers.map((c) => (c.machine ?? '').length)),
  );
  const load = new Map((s.load ?? []).map((l) => [l.model, l]));
  const lines: string[] = [];
  for (const name of names) {
    const scaling = s.scaling?.[name];
    lines.push('', modelHeading(name, scaling, now), row(vcols, vcols.map((c) => c.head), 2));
    const versions = versionsOf(name, s, scaling);
    let idle = 0;
    for (const v of versions) {
      const replicas = containers.filter((c) => c.model_name === name && c.model_version === v.model_version);
      const l = load.get(`${name}:${v.model_version}`);
      const role = roleOf(v, scaling);
      if (role === '-' && replicas.length === 0 && !(l?.arrival_rate || l?.depth)) {
        idle++;
        continue;
      }
      lines.push(row(vcols, versionCells(v, role, replicas, l), 2));
      if (replicas.length === 0) continue;
      lines.push(row(rcols, rcols.map((c) => c.head), 4));
      for (const r of replicas) lines.push(row(rcols, replicaCells(r), 4));
    }
    if (idle > 0) lines.push(`  (${count(idle, 'more version')} without replicas or load)`);
  }
  return lines;
}

function modelHeading(name: string, s: ScalingJson | undefined, now: number): string {
  const parts = [`MODEL ${name}`, `autoscale ${autoscalingText(s?.autoscaling)}`];
  if (s?.desired_replicas != null) parts.push(`desired ${s.desired_replicas}`);
  const d = s?.decision;
  if (d?.reason) {
    const detail = [d.demand != null ? `demand ${d.demand}` : '', d.at ? ago(Date.parse(d.at), now) : ''].filter(Boolean).join(', ');
    parts.push(`decision: ${d.reason}${detail ? ` (${detail})` : ''}`);
  } else if (s?.autoscaling) parts.push('decision: none yet');
  return parts.join('   ');
}

/** Versions known from the registry, plus any that only running replicas still name; current first. */
function versionsOf(name: string, s: StatusJson, scaling: ScalingJson | undefined): ModelJson[] {
  const list = (s.models ?? []).filter((m) => m.model_name === name);
  for (const c of s.containers ?? []) {
    if (c.model_name === name && !list.some((m) => m.model_version === c.model_version)) list.push({ model_name: name, model_version: c.model_version });
  }
  const rank = (m: ModelJson) => ROLES.indexOf(roleOf(m, scaling));
  return list.map((m, i) => ({ m, i })).sort((a, b) => rank(a.m) - rank(b.m) || a.i - b.i).map((x) => x.m);
}

const ROLES = ['current', 'warm', 'on-demand', '-'] as const;

function roleOf(v: ModelJson, s: ScalingJson | undefined): (typeof ROLES)[number] {
  if (v.is_current_version) return 'current';
  if (s?.warm_versions?.includes(v.model_version)) return 'warm';
  if (s?.on_demand_versions?.includes(v.model_version)) return 'on-demand';
  return '-';
}

function versionCells(v: ModelJson, role: string, replicas: ContainerJson[], l: LoadJson | undefined): string[] {
  const ready = replicas.filter((r) => r.state === 'READY').length;
  const limits = [v.cpus ? `${v.cpus} cpu` : '', v.memory_mb ? `${v.memory_mb} MiB` : ''].filter(Boolean).join(', ') || '-';
  return [
    v.model_version, role, `${ready}/${replicas.length}`,
    num(l?.arrival_rate), num(l?.shed_rate), num(l?.late_rate), pct(l?.slo_attainment),
    num(l?.queue_delay_p50_ms), num(l?.queue_delay_p99_ms), num(l?.depth, 0), num(l?.service_ms_per_input, 2), limits,
  ];
}

function replicaCells(r: ContainerJson): string[] {
  const u = r.usage ?? undefined;
  return [
    r.replica_id, r.state ?? '-', r.machine || '-',
    pct(u?.cpu_cores), mib(u?.rss_bytes), num(u?.batches_per_s), pct(u?.busy_fraction), String(r.restarts ?? '-'),
    r.last_exit?.reason ?? '-',
  ];
}

function events(s: StatusJson): string[] {
  const list = (s.scaling_events ?? []).slice(-EVENTS_SHOWN);
  if (list.length === 0) return ['', 'SCALING EVENTS  none yet'];
  return ['', 'SCALING EVENTS', ...list.map((e) => `  ${clock(Date.parse(e.at))}  ${e.model}:${e.version}  ${e.from} → ${e.to}  ${e.reason}`)];
}

/** Cuts every line to the width, and the model section to the height (header and events kept). */
function fit(head: string[], body: string[], foot: string[], o: TopRenderOptions): string[] {
  let lines = [...head, ...body, ...foot];
  if (o.height !== undefined && lines.length > o.height) {
    const room = o.height - head.length - foot.length - 1;
    lines = room > 0
      ? [...head, ...body.slice(0, room), `… ${lines.length - o.height + 1} more lines: enlarge the terminal, or use --once`, ...foot]
      : lines.slice(0, Math.max(0, o.height));
  }
  // Names and exit reasons come from the server: no control character reaches the terminal.
  return lines.map((l) => truncate(l.replace(/[\x00-\x1f\x7f]/g, ' '), o.width));
}

const count = (n: number, what: string) => `${n} ${what}${n === 1 ? '' : 's'}`;

function clock(ms: number): string {
  return Number.isFinite(ms) ? new Date(ms).toTimeString().slice(0, 8) : '--:--:--';
}

function ago(ms: number, now: number): string {
  if (!Number.isFinite(ms)) return '';
  const s = Math.max(0, Math.round((now - ms) / 1000));
  if (s < 120) return `${s}s ago`;
  if (s < 7200) return `${Math.round(s / 60)}m ago`;
  return `${Math.round(s / 3600)}h ago`;
}
