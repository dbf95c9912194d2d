/**
 * `GET /admin/status` as the CLI reads it. Every field is optional or nullable: the CLI may talk
 * to an older or newer server, and a field it cannot find is shown as '-', never a crash.
 */
export interface StatusJson {
  /** ISO time of the measurements. */
  at?: string;
  backend?: string;
  applications?: AppJson[];
  models?: ModelJson[];
  scaling?: Record<string, ScalingJson | undefined>;
  containers?: ContainerJson[];
  queues?: Array<{ model: string; depth?: number; replicas?: number; batch_sizes?: number[] }>;
  load?: LoadJson[];
  machines?: MachineJson[];
  scaling_events?: ScalingEventJson[];
  cluster?: ClusterJson;
}

export interface ClusterJson {
  frontend?: string;
  leader?: boolean;
  leader_frontend?: string | null;
  leader_admin?: string | null;
  frontends?: Array<{ id: string; rpc?: string; query_url?: string; admin_url?: string }>;
}

export interface AppJson {
  name: string;
  input_type?: string;
  latency_slo_micros?: number;
  linked_models?: string[];
  policy?: string;
}

export interface ModelJson {
  model_name: string;
  model_version: string;
  runtime?: string;
  replicas?: number;
  cpus?: number;
  memory_mb?: number;
  is_current_version?: boolean;
}

export interface AutoscalingJson {
  min_replicas: number;
  max_replicas: number;
  upscale_delay_s?: number;
  downscale_delay_s?: number;
  target_utilization?: number;
}

export interface ScalingJson {
  autoscaling?: AutoscalingJson | null;
  desired_replicas?: number;
  decision?: { at?: string; desired?: number; demand?: number; reason?: string; limited_by?: string | null } | null;
  warm_versions?: string[];
  on_demand_versions?: string[];
}

export interface ContainerJson {
  replica_id: string;
  model_name: string;
  model_version: string;
  state?: string;
  machine?: string;
  restarts?: number;
  last_exit?: { reason: string; at?: string } | null;
  limits?: { cpus?: number; memory_mb?: number };
  usage?: {
    cpu_cores?: number | null;
    rss_bytes?: number | null;
    batches_per_s?: number | null;
    mean_batch_ms?: number | null;
    busy_fraction?: number | null;
  } | null;
}

export interface LoadJson {
  /** "model:version" */
  model: string;
  arrival_rate?: number | null;
  shed_rate?: number | null;
  late_rate?: number | null;
  slo_attainment?: number | null;
  queue_delay_p50_ms?: number | null;
  queue_delay_p99_ms?: number | null;
  service_ms_per_input?: number | null;
  depth?: number | null;
  ready_replicas?: number | null;
}

export interface MachineJson {
  name: string;
  cores?: number;
  cpu_busy_cores?: number | null;
  load1?: number | null;
  memory_total_bytes?: number | null;
  memory_available_bytes?: number | null;
  state?: string;
  reason?: string;
}

export interface ScalingEventJson { at: string; model: string; version: string; from: number; to: number; reason: string }

/** Autoscaling settings in a few words: `1..3 (up 2s, down 30s, util 0.7)` or `off`. */
export function autoscalingText(a: AutoscalingJson | null | undefined, detail = true): string {
  if (!a) return 'off';
  const range = `${a.min_replicas}..${a.max_replicas}`;
  if (!detail) return range;
  const parts = [
    a.upscale_delay_s == null ? '' : `up ${a.upscale_delay_s}s`,
    a.downscale_delay_s == null ? '' : `down ${a.downscale_delay_s}s`,
    a.target_utilization == null ? '' : `util ${a.target_utilization}`,
  ].filter(Boolean);
  return parts.length ? `${range} (${parts.join(', ')})` : range;
}
