/** JSON shapes of registry records on the admin API (Clipper's field names). */
import type { ReplicaInfo } from '../manager/container-manager.ts';
import type { ModelScaling } from '../manager/replica-controller.ts';
import type { ReplicaMeasure, VersionMeasure } from '../measure/measurements.ts';
import type { MachineUsage } from '../measure/usage.ts';
import type { RegistryService } from '../registry/registry-service.ts';
import type { Application, ModelVersion } from '../registry/types.ts';

/** `keys` says whether the application's query API needs a key (the keys themselves are never shown). */
export function appView(a: Application, registry: RegistryService, keys: { isProtected(app: string): boolean }) {
  return {
    name: a.name,
    input_type: a.inputType,
    default_output: a.defaultOutput,
    latency_slo_micros: a.latencySloMicros,
    overload_default: a.overloadDefault,
    linked_models: registry.linkedModels(a.name),
    policy: a.policy,
    protected: keys.isProtected(a.name),
  };
}

export function modelView(v: ModelVersion, registry: RegistryService) {
  return {
    model_name: v.name,
    model_version: v.version,
    input_type: v.inputType,
    labels: v.labels,
    runtime: v.runtime,
    container_name: v.containerName,
    model_data_path: v.artifactPath,
    artifact_hash: v.artifactHash,
    batch_size: v.batchSize,
    replicas: v.replicas,
    cpus: v.cpus,
    memory_mb: v.memoryMb,
    is_current_version: registry.currentVersion(v.name) === v.version,
  };
}

export function containerView(r: ReplicaInfo, m?: ReplicaMeasure) {
  return {
    replica_id: r.replicaId,
    model_name: r.modelName,
    model_version: r.modelVersion,
    state: r.state,
    machine: r.machine,
    restarts: r.restarts,
    started_at: r.startedAt ? new Date(r.startedAt).toISOString() : null,
    last_exit: r.lastExit ? { reason: r.lastExit.reason, at: new Date(r.lastExit.at).toISOString() } : null,
    limits: { cpus: r.limits.cpus, memory_mb: r.limits.memoryMb },
    enforcement: r.enforcement,
    usage: m ? {
      cpu_cores: round(m.cpuCores), rss_bytes: m.rssBytes ?? null, batches_per_s: round(m.batchesPerS),
      mean_batch_ms: round(m.meanBatchMs), busy_fraction: round(m.busyFraction), in_flight: m.inflight,
    } : null,
  };
}

export function versionLoadView(v: VersionMeasure) {
  return {
    model: `${v.model}:${v.version}`,
    arrival_rate: round(v.arrivalRate),
    shed_rate: round(v.shedRate),
    late_rate: round(v.lateRate),
    slo_attainment: round(v.sloAttainment),
    queue_delay_p50_ms: round(v.queueDelayP50Ms),
    queue_delay_p99_ms: round(v.queueDelayP99Ms),
    service_ms_per_input: round(v.serviceMsPerInput),
    depth: v.depth,
    ready_replicas: v.readyReplicas,
    batch_sizes: v.batchSizes,
    profile: v.profile.map((p) => ({ batch_size: p.batchSize, ms: round(p.ms) })),
  };
}

export function machineView(m: MachineUsage) {
  return {
    name: m.name, cores: m.cores, cpu_busy_cores: round(m.cpuBusyCores), load1: round(m.load1),
    memory_total_bytes: m.memoryTotalBytes, memory_available_bytes: m.memoryAvailableBytes,
    ...(m.state ? { state: m.state } : {}), ...(m.reason ? { reason: m.reason } : {}),
  };
}

export function scalingView(s: ModelScaling) {
  return {
    autoscaling: s.autoscaling ? {
      min_replicas: s.autoscaling.minReplicas, max_replicas: s.autoscaling.maxReplicas, upscale_delay_s: s.autoscaling.upscaleDelayS,
      downscale_delay_s: s.autoscaling.downscaleDelayS, target_utilization: s.autoscaling.targetUtilization,
    } : null,
    desired_replicas: s.desired,
    decision: s.decision ? { at: s.decision.at, desired: s.decision.desired, demand: s.decision.demand, reason: s.decision.reason, limited_by: s.decision.limitedBy ?? null } : null,
    warm_versions: s.warm,
    on_demand_versions: s.onDemand,
  };
}

function round(x: number | undefined): number | null {
  return x === undefined || !Number.isFinite(x) ? null : Math.round(x * 1000) / 1000;
}
