/**
 * The composition root: the only place that wires store, registry, RPC, query processor,
 * resource manager and the HTTP frontends together.
 */
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { resolveConfig, type ResolvedConfig, type UserConfig } from './config.ts';
import { createAdminApi } from './http/admin-api.ts';
import { createQueryApi } from './http/query-api.ts';
import type { ReplicaBackend } from './manager/backend.ts';
import type { ContainerManager } from './manager/container-manager.ts';
import { ProcessBackend } from './manager/process-backend.ts';
import { ReplicaController } from './manager/replica-controller.ts';
import { Supervisor } from './manager/supervisor.ts';
import { registerMeasureMetrics } from './measure/measure-metrics.ts';
import { Measurements } from './measure/measurements.ts';
import { QueryMetrics } from './query/metrics.ts';
import { PolicyStateStore } from './query/policy-state.ts';
import { QueryProcessor } from './query/query-processor.ts';
import { SelectionService } from './query/selection-service.ts';
import { RegistryService } from './registry/registry-service.ts';
import type { Replica } from './rpc/replica.ts';
import { RpcServer } from './rpc/router-server.ts';
import { checkArtifact } from './runtimes/check-artifact.ts';
import { SqliteStore } from './store/sqlite-store.ts';

export interface ClipperApp {
  config: ResolvedConfig;
  registry: RegistryService;
  processor: QueryProcessor;
  manager: ContainerManager;
  controller: ReplicaController;
  measurements: Measurements;
  rpc: RpcServer;
  queryUrl: string;
  adminUrl: string;
  rpcPort: number;
  close(): Promise<void>;
}

export async function startApp(user: UserConfig = {}, log: (msg: string) => void = () => {}): Promise<ClipperApp> {
  const config = resolveConfig(user);
  const store = new SqliteStore(join(config.dataDir, 'registry.sqlite'));
  const registry = new RegistryService(store, join(config.dataDir, 'artifacts'), (runtime, path) => checkArtifact(runtime, path));
  await registry.load();

  const rpc = new RpcServer({ host: config.host, port: config.rpcPort, heartbeatTimeoutMs: config.heartbeatTimeoutMs, predictTimeoutMs: config.predictTimeoutMs, log });
  await rpc.start();
  const manager = new Supervisor(await createBackend(config, log), {
    rpc: { host: config.host, port: rpc.boundPort }, stopGraceMs: config.stopGraceMs, startTimeoutMs: config.startTimeoutMs, log,
  });
  let controller: ReplicaController | undefined;
  const metrics = new QueryMetrics();
  const selection = new SelectionService(registry, new PolicyStateStore(store));
  const processor = new QueryProcessor(registry, (r, inputs) => rpc.predict(r, r.inputTypeCode, inputs), metrics, selection, {
    queue: {
      maxBatchSize: config.maxBatchSize, maxInflightPerReplica: config.maxInflightPerReplica, maxQueue: config.maxQueue,
      maxAttempts: 3, budgetFraction: 0.45, maxBatchWaitMs: config.maxBatchWaitMs,
    },
    cacheBytes: config.cacheBytes,
  }, undefined, {
    demand: (name, version) => controller?.demand(name, version),
    starting: (name, version) => manager.isStarting(name, version),
  });
  const measurements = new Measurements({ load: () => processor.takeLoad(), usage: () => manager.usage(), machines: () => manager.machines() });
  registerMeasureMetrics(metrics.registry, measurements, () => registry.modelNames().map((model) => ({ model, replicas: controller!.scaling(model).desired })));
  controller = new ReplicaController(registry, manager, measurements, {
    warmVersions: config.warmVersions, onDemandIdleMs: config.onDemandIdleMs, tickMs: config.measureIntervalMs, log,
  });

  // Replicas: RPC tells the query processor and the manager; the manager tells RPC when a replica goes.
  rpc.on('ready', (r: Replica) => {
    const matched = manager.markReady(r.replicaId, r.modelName, r.modelVersion);
    r.replicaId ??= matched;
    processor.addReplica(r);
  });
  rpc.on('lost', (r: Replica, reason: string, silent: boolean) => {
    if (silent && r.replicaId) manager.markUnresponsive(r.replicaId, reason);
    processor.removeReplica(r);
  });
  manager.on('replica-exit', (id, reason) => rpc.evictByReplicaId(id, reason));
  manager.on('replica-stopping', (id) => rpc.evictByReplicaId(id, 'replica is being stopped'));
  await controller.start();

  const http = { bodyLimitBytes: config.bodyLimitBytes, log };
  const queryApi = createQueryApi(processor, metrics, http);
  const adminApi = createAdminApi({ registry, manager, controller, measurements, processor, selection, readyTimeoutMs: config.readyTimeoutMs }, http);
  const queryUrl = await listen(queryApi, config.host, config.queryPort);
  const adminUrl = await listen(adminApi, config.host, config.adminPort);

  let closed: Promise<void> | undefined;
  const close = () => {
    closed ??= (async () => {
      await Promise.allSettled([queryApi.close(), adminApi.close()]);
      await controller!.close();
      await manager.close();
      await rpc.close();
      await store.close();
    })();
    return closed;
  };
  return { config, registry, processor, manager, controller, measurements, rpc, queryUrl, adminUrl, rpcPort: rpc.boundPort, close };
}

async function createBackend(config: ResolvedConfig, log: (msg: string) => void): Promise<ReplicaBackend> {
  if (config.backend === 'local') return new ProcessBackend(config.dataDir);
  const { DockerBackend } = await import('./manager/docker/docker-backend.ts');
  const owner = createHash('sha1').update(config.dataDir).digest('hex').slice(0, 12);
  return new DockerBackend({ dockerHost: config.dockerHost, image: config.dockerImage || undefined, owner, logDir: join(config.dataDir, 'logs'), log });
}

async function listen(app: FastifyInstance, host: string, port: number): Promise<string> {
  await app.listen({ host, port });
  const addr = app.server.address();
  const actual = typeof addr === 'object' && addr ? addr.port : port;
  return `http://${host.includes(':') ? `[${host}]` : host}:${actual}`;
}
