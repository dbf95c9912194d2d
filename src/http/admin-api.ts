/** Admin API (:1338): Clipper's `/admin/*` endpoints with JSON answers, plus deploy, replicas and logs. */
import type { FastifyInstance } from 'fastify';
import { ServingError } from '../errors.ts';
import { resolveAutoscaleSettings } from '../manager/autoscale-policy.ts';
import type { ContainerManager } from '../manager/container-manager.ts';
import type { ReplicaController } from '../manager/replica-controller.ts';
import type { Measurements } from '../measure/measurements.ts';
import type { QueryProcessor } from '../query/query-processor.ts';
import type { SelectionService } from '../query/selection-service.ts';
import { parseInputType } from '../registry/input-types.ts';
import type { ChangeOrigin, RegistryService } from '../registry/registry-service.ts';
import {
  checkBool, checkInt, checkNumber, checkUid, checkName, checkObject, checkRuntime, checkString, checkStringList, checkVersion,
} from '../registry/validation.ts';
import type { AppKeys } from '../security/app-keys.ts';
import { appView, containerView, machineView, modelView, scalingView, versionLoadView } from './admin-views.ts';
import { guardAdminApi, type AdminTokens } from './auth.ts';
import { createHttpServer, type HttpOptions } from './server-common.ts';

export interface AdminDeps {
  registry: RegistryService;
  manager: ContainerManager;
  controller: ReplicaController;
  measurements: Measurements;
  processor: QueryProcessor;
  selection: SelectionService;
  /** How long deploy / set_model_version wait for replicas to register. */
  readyTimeoutMs: number;
  /** Bearer tokens of the admin API (http/auth.ts) and the query API's per-application keys. */
  tokens: AdminTokens;
  appKeys: AppKeys;
  /** In a cluster: this frontend, whether it leads the resource manager, and its peers. */
  cluster?: () => Record<string, unknown>;
}

const MAX_REPLICAS = 64;
const MAX_CPUS = 256;
const MAX_MEMORY_MB = 1024 * 1024;

export function createAdminApi(deps: AdminDeps, opts: HttpOptions): FastifyInstance {
  const { registry, manager, processor } = deps;
  const app = createHttpServer(opts);
  guardAdminApi(app, deps.tokens);
  type Body = Record<string, unknown>;
  /** `by`: the request's id, for the log of the registry write it makes. */
  const post = (path: string, handler: (body: Body, by: ChangeOrigin) => Promise<unknown> | unknown) =>
    app.post(`/admin/${path}`, async (req) => handler(checkObject(req.body ?? {}), { reqId: req.id }));

  app.get('/admin/ping', async () => ({ status: 'ok' }));

  // One read of the measurements serves status, `clipper top` and the dashboard.
  app.get('/admin/status', async () => {
    const snap = deps.measurements.latest();
    const usage = new Map(snap.replicas.map((r) => [r.replicaId, r]));
    return {
      at: new Date(snap.at).toISOString(),
      backend: manager.backend,
      applications: registry.listApps().map((a) => appView(a, registry, deps.appKeys)),
      models: registry.listVersions().map((v) => modelView(v, registry)),
      scaling: Object.fromEntries(registry.modelNames().map((m) => [m, scalingView(deps.controller.scaling(m))])),
      containers: manager.replicas().map((r) => containerView(r, usage.get(r.replicaId))),
      queues: processor.queueStats().map((q) => ({ model: q.model, depth: q.depth, replicas: q.replicas, batch_sizes: q.batchSizes })),
      load: snap.versions.map(versionLoadView),
      machines: snap.machines.map(machineView),
      scaling_events: deps.controller.events().slice(-20),
      ...(deps.cluster ? { cluster: deps.cluster() } : {}),
    };
  });

  post('add_app', async (b, by) => {
    const slo = checkInt(b.latency_slo_micros, 'latency_slo_micros', { min: 1, max: 3_600_000_000, fallback: 100_000 });
    const a = await registry.addApp({
      name: checkName(b.name, 'name'),
      inputType: parseInputType(b.input_type),
      defaultOutput: checkString(b.default_output, 'default_output', 'None'),
      latencySloMicros: slo,
      overloadDefault: checkBool(b.overload_default, 'overload_default', false),
    }, by);
    return { success: true, application: appView(a, registry, deps.appKeys) };
  });

  post('delete_app', async (b, by) => {
    await registry.deleteApp(checkName(b.name, 'name'), by);
    return { success: true };
  });

  post('get_all_applications', (b) => {
    const verbose = checkBool(b.verbose, 'verbose', false);
    return registry.listApps().map((a) => (verbose ? appView(a, registry, deps.appKeys) : a.name));
  });

  post('get_application', (b) => appView(registry.requireApp(checkName(b.name ?? b.app_name, 'name')), registry, deps.appKeys));

  post('get_linked_models', (b) => {
    const name = checkName(b.app_name, 'app_name');
    registry.requireApp(name);
    return registry.linkedModels(name);
  });

  // Not through `post`: the request's address goes into the log of command-runtime registrations.
  app.post('/admin/add_model', async (req) => {
    const b = checkObject(req.body ?? {});
    const name = checkName(b.model_name, 'model_name');
    const version = checkVersion(b.model_version);
    const runtime = checkRuntime(b.runtime);
    if (runtime === 'image' && manager.backend !== 'docker') {
      throw new ServingError('INVALID_INPUT', `runtime image runs a container image, which needs the Docker backend (this server runs replicas on the ${manager.backend} backend: start it with --backend docker)`);
    }
    const v = await registry.addVersion({
      name, version, runtime,
      inputType: parseInputType(b.input_type),
      labels: checkStringList(b.labels, 'labels', []),
      containerName: checkString(b.container_name, 'container_name', ''),
      modelDataPath: b.model_data_path === undefined ? undefined : checkString(b.model_data_path, 'model_data_path'),
      batchSize: b.batch_size === -1 ? 0 : checkInt(b.batch_size, 'batch_size', { min: 0, max: 100_000, fallback: 0 }),
      replicas: checkInt(b.replicas, 'replicas', { min: 0, max: MAX_REPLICAS, fallback: 1 }),
      cpus: checkNumber(b.cpus, 'cpus', { min: 0, max: MAX_CPUS, fallback: 0 }),
      memoryMb: checkInt(b.memory_mb, 'memory_mb', { min: 0, max: MAX_MEMORY_MB, fallback: 0 }),
      requestedBy: `the admin API client at ${req.ip}`,
    }, { reqId: req.id });
    const ready = await manager.waitReady(name, version, v.replicas, deps.readyTimeoutMs);
    return { success: true, ready, model: modelView(v, registry) };
  });

  post('add_model_links', async (b, by) => {
    const linked = await registry.linkModels(checkName(b.app_name, 'app_name'), names(b.model_names), by);
    return { success: true, linked_models: linked };
  });

  post('delete_model_links', async (b, by) => {
    const linked = await registry.unlinkModels(checkName(b.app_name, 'app_name'), names(b.model_names), by);
    return { success: true, linked_models: linked };
  });

  post('set_model_version', async (b, by) => {
    const name = checkName(b.model_name, 'model_name');
    const version = checkVersion(b.model_version);
    await registry.setCurrentVersion(name, version, by);
    const v = registry.requireVersion(name, version);
    const ready = await manager.waitReady(name, version, Math.min(1, v.replicas), deps.readyTimeoutMs);
    return { success: true, ready };
  });

  post('delete_versioned_model', async (b, by) => {
    await registry.deleteVersion(checkName(b.model_name, 'model_name'), checkVersion(b.model_version), by);
    return { success: true };
  });

  post('get_all_models', (b) => {
    const verbose = checkBool(b.verbose, 'verbose', false);
    return registry.listVersions().map((v) => (verbose ? modelView(v, registry) : `${v.name}:${v.version}`));
  });

  post('get_model', (b) => {
    const name = checkName(b.model_name, 'model_name');
    const version = b.model_version === undefined ? undefined : checkVersion(b.model_version);
    return modelView(registry.requireVersion(name, version), registry);
  });

  post('get_all_containers', (b) => {
    const verbose = checkBool(b.verbose, 'verbose', false);
    return manager.replicas().map((r) => (verbose ? containerView(r) : r.replicaId));
  });

  post('get_container', (b) => {
    const name = checkName(b.model_name, 'model_name');
    const v = registry.requireVersion(name, b.model_version === undefined ? undefined : checkVersion(b.model_version));
    const id = b.replica_id === undefined ? undefined : checkString(b.replica_id, 'replica_id');
    const found = manager.replicas().filter((r) => r.modelName === name && r.modelVersion === v.version && (id === undefined || r.replicaId === id));
    if (found.length === 0) throw new ServingError('REPLICA_NOT_FOUND', `no replica${id ? ` ${id}` : ''} of ${name}:${v.version} is running`);
    return containerView(found[0]!);
  });

  post('set_num_replicas', async (b, by) => {
    const name = checkName(b.model_name, 'model_name');
    const version = b.model_version === undefined ? undefined : checkVersion(b.model_version);
    const n = checkInt(b.num_replicas, 'num_replicas', { min: 0, max: MAX_REPLICAS });
    const v = await registry.setReplicas(name, registry.requireVersion(name, version).version, n, by);
    const isCurrent = registry.currentVersion(name) === v.version;
    const ready = isCurrent
      ? (await manager.waitReady(name, v.version, n, deps.readyTimeoutMs)) && (await manager.waitStopped(name, v.version, n, deps.readyTimeoutMs))
      : true;
    return { success: true, ready, model: modelView(v, registry) };
  });

  post('set_resources', async (b, by) => {
    const name = checkName(b.model_name, 'model_name');
    const v = registry.requireVersion(name, b.model_version === undefined ? undefined : checkVersion(b.model_version));
    if (b.cpus === undefined && b.memory_mb === undefined) throw new ServingError('INVALID_INPUT', 'set_resources needs cpus and/or memory_mb');
    const cpus = checkNumber(b.cpus, 'cpus', { min: 0, max: MAX_CPUS, fallback: v.cpus });
    const memoryMb = checkInt(b.memory_mb, 'memory_mb', { min: 0, max: MAX_MEMORY_MB, fallback: v.memoryMb });
    const updated = await registry.setResources(name, v.version, cpus, memoryMb, by);
    return { success: true, model: modelView(updated, registry) };
  });

  post('set_autoscaling', async (b, by) => {
    const name = checkName(b.model_name, 'model_name');
    if (!registry.hasModel(name)) throw new ServingError('MODEL_NOT_FOUND', `model ${JSON.stringify(name)} does not exist`);
    if (!checkBool(b.enabled, 'enabled', true)) {
      // Off: the current version keeps the count the autoscaler last chose, as a fixed count.
      await registry.setAutoscaling(name, undefined, by);
      return { success: true, scaling: scalingView(deps.controller.scaling(name)) };
    }
    const num = (k: string) => (b[k] === undefined ? undefined : checkNumber(b[k], k, { min: 0 }));
    let settings;
    try {
      settings = resolveAutoscaleSettings({
        minReplicas: checkInt(b.min_replicas, 'min_replicas', { min: 0, max: MAX_REPLICAS }),
        maxReplicas: checkInt(b.max_replicas, 'max_replicas', { min: 1, max: MAX_REPLICAS }),
        upscaleDelayS: num('upscale_delay_s'),
        downscaleDelayS: num('downscale_delay_s'),
        targetUtilization: num('target_utilization'),
      });
    } catch (e) {
      if (e instanceof ServingError) throw e;
      throw new ServingError('INVALID_INPUT', (e as Error).message);
    }
    await registry.setAutoscaling(name, { ...settings }, by);
    return { success: true, scaling: scalingView(deps.controller.scaling(name)) };
  });

  post('set_selection_policy', async (b) => {
    const a = await deps.selection.setPolicy(checkName(b.app_name, 'app_name'), b.policy, b.params);
    return { success: true, application: appView(a, registry, deps.appKeys), params: a.policyParams };
  });

  post('get_selection_state', async (b) => {
    const a = registry.requireApp(checkName(b.app_name, 'app_name'));
    const uid = checkUid(b.uid);
    return deps.selection.state(a, uid);
  });

  post('get_replica_logs', async (b) => {
    const name = checkName(b.model_name, 'model_name');
    const v = registry.requireVersion(name, b.model_version === undefined ? undefined : checkVersion(b.model_version));
    const id = b.replica_id === undefined ? undefined : checkString(b.replica_id, 'replica_id');
    const tail = checkInt(b.tail, 'tail', { min: 1, max: 100_000, fallback: 200 });
    return { model_name: name, model_version: v.version, replicas: await manager.logs(name, v.version, id, tail) };
  });

  // Query API keys of an application (http/auth.ts); an empty list opens it. The keys are never shown.
  post('set_app_keys', async (b) => {
    const name = checkName(b.app_name, 'app_name');
    registry.requireApp(name);
    const count = await deps.appKeys.set(name, b.keys);
    return { success: true, app_name: name, protected: count > 0, keys: count };
  });

  return app;
}

function names(value: unknown): string[] {
  const list = checkStringList(value, 'model_names');
  if (list.length === 0) throw new ServingError('INVALID_INPUT', 'model_names is empty');
  return list.map((m) => checkName(m, 'model_names entry'));
}
