/** Admin API (:1338): Clipper's `/admin/*` endpoints with JSON answers, plus deploy, replicas and logs. */
import type { FastifyInstance } from 'fastify';
import { ServingError } from '../errors.ts';
import type { ContainerManager } from '../manager/container-manager.ts';
import type { QueryProcessor } from '../query/query-processor.ts';
import type { SelectionService } from '../query/selection-service.ts';
import { parseInputType } from '../registry/input-types.ts';
import type { RegistryService } from '../registry/registry-service.ts';
import {
  checkBool, checkInt, checkUid, checkName, checkObject, checkRuntime, checkString, checkStringList, checkVersion,
} from '../registry/validation.ts';
import { appView, containerView, modelView } from './admin-views.ts';
import { createHttpServer, type HttpOptions } from './server-common.ts';

export interface AdminDeps {
  registry: RegistryService;
  manager: ContainerManager;
  processor: QueryProcessor;
  selection: SelectionService;
  /** How long deploy / set_model_version wait for replicas to register. */
  readyTimeoutMs: number;
}

const MAX_REPLICAS = 64;

export function createAdminApi(deps: AdminDeps, opts: HttpOptions): FastifyInstance {
  const { registry, manager, processor } = deps;
  const app = createHttpServer(opts);
  type Body = Record<string, unknown>;
  const post = (path: string, handler: (body: Body) => Promise<unknown> | unknown) =>
    app.post(`/admin/${path}`, async (req) => handler(checkObject(req.body ?? {})));

  app.get('/admin/ping', async () => ({ status: 'ok' }));

  app.get('/admin/status', async () => ({
    applications: registry.listApps().map((a) => appView(a, registry)),
    models: registry.listVersions().map((v) => modelView(v, registry)),
    containers: manager.replicas().map(containerView),
    queues: processor.queueStats(),
  }));

  post('add_app', async (b) => {
    const slo = checkInt(b.latency_slo_micros, 'latency_slo_micros', { min: 1, max: 3_600_000_000, fallback: 100_000 });
    const a = await registry.addApp({
      name: checkName(b.name, 'name'),
      inputType: parseInputType(b.input_type),
      defaultOutput: checkString(b.default_output, 'default_output', 'None'),
      latencySloMicros: slo,
      overloadDefault: checkBool(b.overload_default, 'overload_default', false),
    });
    return { success: true, application: appView(a, registry) };
  });

  post('delete_app', async (b) => {
    await registry.deleteApp(checkName(b.name, 'name'));
    return { success: true };
  });

  post('get_all_applications', (b) => {
    const verbose = checkBool(b.verbose, 'verbose', false);
    return registry.listApps().map((a) => (verbose ? appView(a, registry) : a.name));
  });

  post('get_application', (b) => appView(registry.requireApp(checkName(b.name ?? b.app_name, 'name')), registry));

  post('get_linked_models', (b) => {
    const name = checkName(b.app_name, 'app_name');
    registry.requireApp(name);
    return registry.linkedModels(name);
  });

  post('add_model', async (b) => {
    const name = checkName(b.model_name, 'model_name');
    const version = checkVersion(b.model_version);
    const runtime = checkRuntime(b.runtime);
    const v = await registry.addVersion({
      name, version, runtime,
      inputType: parseInputType(b.input_type),
      labels: checkStringList(b.labels, 'labels', []),
      containerName: checkString(b.container_name, 'container_name', ''),
      modelDataPath: b.model_data_path === undefined ? undefined : checkString(b.model_data_path, 'model_data_path'),
      batchSize: b.batch_size === -1 ? 0 : checkInt(b.batch_size, 'batch_size', { min: 0, max: 100_000, fallback: 0 }),
      replicas: checkInt(b.replicas, 'replicas', { min: 0, max: MAX_REPLICAS, fallback: 1 }),
    });
    const ready = await manager.waitReady(name, version, v.replicas, deps.readyTimeoutMs);
    return { success: true, ready, model: modelView(v, registry) };
  });

  post('add_model_links', async (b) => {
    const linked = await registry.linkModels(checkName(b.app_name, 'app_name'), names(b.model_names));
    return { success: true, linked_models: linked };
  });

  post('delete_model_links', async (b) => {
    const linked = await registry.unlinkModels(checkName(b.app_name, 'app_name'), names(b.model_names));
    return { success: true, linked_models: linked };
  });

  post('set_model_version', async (b) => {
    const name = checkName(b.model_name, 'model_name');
    const version = checkVersion(b.model_version);
    await registry.setCurrentVersion(name, version);
    const v = registry.requireVersion(name, version);
    const ready = await manager.waitReady(name, version, Math.min(1, v.replicas), deps.readyTimeoutMs);
    return { success: true, ready };
  });

  post('delete_versioned_model', async (b) => {
    await registry.deleteVersion(checkName(b.model_name, 'model_name'), checkVersion(b.model_version));
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

  post('set_num_replicas', async (b) => {
    const name = checkName(b.model_name, 'model_name');
    const version = b.model_version === undefined ? undefined : checkVersion(b.model_version);
    const n = checkInt(b.num_replicas, 'num_replicas', { min: 0, max: MAX_REPLICAS });
    const v = await registry.setReplicas(name, registry.requireVersion(name, version).version, n);
    const isCurrent = registry.currentVersion(name) === v.version;
    const ready = isCurrent
      ? (await manager.waitReady(name, v.version, n, deps.readyTimeoutMs)) && (await manager.waitStopped(name, v.version, n, deps.readyTimeoutMs))
      : true;
    return { success: true, ready, model: modelView(v, registry) };
  });

  post('set_selection_policy', async (b) => {
    const a = await deps.selection.setPolicy(checkName(b.app_name, 'app_name'), b.policy, b.params);
    return { success: true, application: appView(a, registry), params: a.policyParams };
  });

  post('get_selection_state', async (b) => {
    const a = registry.requireApp(checkName(b.app_name, 'app_name'));
    const uid = checkUid(b.uid);
    return deps.selection.state(a, uid);
  });

  post('get_replica_logs', (b) => {
    const name = checkName(b.model_name, 'model_name');
    const v = registry.requireVersion(name, b.model_version === undefined ? undefined : checkVersion(b.model_version));
    const id = b.replica_id === undefined ? undefined : checkString(b.replica_id, 'replica_id');
    const tail = checkInt(b.tail, 'tail', { min: 1, max: 100_000, fallback: 200 });
    return { model_name: name, model_version: v.version, replicas: manager.logs(name, v.version, id, tail) };
  });

  return app;
}

function names(value: unknown): string[] {
  const list = checkStringList(value, 'model_names');
  if (list.length === 0) throw new ServingError('INVALID_INPUT', 'model_names is empty');
  return list.map((m) => checkName(m, 'model_names entry'));
}
