/** `clipper status` for people: one table per section of `GET /admin/status`. */
import { gib, mib, num, pct, table, truncate } from './format.ts';
import { autoscalingText, type StatusJson } from './status-types.ts';

const EXIT_REASON_WIDTH = 60;

export function statusText(s: StatusJson): string {
  const machines = (s.machines ?? []).map((m) => ({
    name: m.name,
    ...(m.state ? { state: m.reason ? `${m.state}: ${truncate(m.reason, EXIT_REASON_WIDTH)}` : m.state } : {}),
    cores: m.cores,
    'cpu%': pct(m.cpu_busy_cores != null && m.cores ? m.cpu_busy_cores / m.cores : null, 0),
    memory_gib: `${gib(m.memory_total_bytes != null && m.memory_available_bytes != null ? m.memory_total_bytes - m.memory_available_bytes : null)}/${gib(m.memory_total_bytes)}`,
    load1: num(m.load1, 2),
  }));
  const replicas = (s.containers ?? []).map((c) => ({
    replica_id: c.replica_id,
    state: c.state,
    machine: c.machine || '-',
    'cpu%': pct(c.usage?.cpu_cores),
    rss_mib: mib(c.usage?.rss_bytes),
    restarts: c.restarts,
    last_exit: c.last_exit ? truncate(c.last_exit.reason, EXIT_REASON_WIDTH) : '-',
  }));
  const load = (s.load ?? []).map((l) => ({
    model: l.model,
    'arrival/s': num(l.arrival_rate),
    'shed/s': num(l.shed_rate),
    'slo%': pct(l.slo_attainment),
    'queue_p99_ms': num(l.queue_delay_p99_ms),
    depth: l.depth,
  }));
  const scaling = Object.entries(s.scaling ?? {}).map(([model, x]) => ({
    model,
    autoscaling: autoscalingText(x?.autoscaling),
    desired: x?.desired_replicas,
    decision: x?.decision?.reason ?? '-',
  }));
  const c = s.cluster;
  const cluster = c ? [
    `cluster: this is frontend ${c.frontend ?? '-'}, ${c.leader ? 'leading the resource manager' : `following ${c.leader_frontend ?? '(no leader right now)'}${c.leader_admin ? ` at ${c.leader_admin}` : ''}`}`,
    table((c.frontends ?? []).map((f) => ({ frontend: f.id, rpc: f.rpc ?? '-', query: f.query_url ?? '-', admin: f.admin_url ?? '-' }))), '',
  ] : [];
  return [
    `backend ${s.backend ?? '-'}, measured ${s.at ?? '-'}`, '',
    ...cluster,
    'MACHINES', table(machines), '',
    'APPLICATIONS', table(rows(s.applications), ['name', 'input_type', 'latency_slo_micros', 'linked_models', 'policy']), '',
    'MODELS', table(rows(s.models), ['model_name', 'model_version', 'runtime', 'replicas', 'cpus', 'memory_mb', 'is_current_version']), '',
    'REPLICAS', table(replicas), '',
    'LOAD', table(load), '',
    'SCALING', table(scaling), '',
    'QUEUES', table(rows(s.queues), ['model', 'depth', 'replicas', 'batch_sizes']),
  ].join('\n');
}

const rows = (list: object[] | undefined) => (list ?? []) as Array<Record<string, unknown>>;
