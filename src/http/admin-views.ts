/** JSON shapes of registry records on the admin API (Clipper's field names). */
import type { ReplicaInfo } from '../manager/container-manager.ts';
import type { RegistryService } from '../registry/registry-service.ts';
import type { Application, ModelVersion } from '../registry/types.ts';

export function appView(a: Application, registry: RegistryService) {
  return {
    name: a.name,
    input_type: a.inputType,
    default_output: a.defaultOutput,
    latency_slo_micros: a.latencySloMicros,
    overload_default: a.overloadDefault,
    linked_models: registry.linkedModels(a.name),
    policy: a.policy,
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
    is_current_version: registry.currentVersion(v.name) === v.version,
  };
}

export function containerView(r: ReplicaInfo) {
  return {
    replica_id: r.replicaId,
    model_name: r.modelName,
    model_version: r.modelVersion,
    state: r.state,
    pid: r.pid ?? null,
    restarts: r.restarts,
    started_at: r.startedAt ? new Date(r.startedAt).toISOString() : null,
    log_file: r.logFile,
  };
}
