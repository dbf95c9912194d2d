/**
 * The composition root: the only place that wires store, registry, RPC, query processor,
 * resource manager and the HTTP frontends together.
 */
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { resolveConfig, type ResolvedConfig, type UserConfig } from './config.ts';
import { createAdminApi } from './http/admin-api.ts';
import { createQueryApi } from './http/query-api.ts';
import { LocalManager } from './manager/local-manager.ts';
import { QueryMetrics } from './query/metrics.ts';
import { PolicyStateStore } from './query/policy-state.ts';
import { QueryProcessor } from './query/query-processor.ts';
import { SelectionService } from './query/selection-service.ts';
import { RegistryService } from './registry/registry-service.ts';
import type { ModelVersion } from './registry/types.ts';
import type { Replica } from './rpc/replica.ts';
import { RpcServer } from './rpc/router-server.ts';
import { checkArtifact } from './runtimes/check-artifact.ts';
import { SqliteStore } from './store/sqlite-store.ts';

export interface ClipperApp {
  config: ResolvedConfig;
  registry: RegistryService;
  processor: QueryProcessor;
  manager: LocalManager;
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

  const rpc = new RpcServer({ host: config.host, port: config.rpcPort, heartbeatTimeoutMs: config.heartbeatTimeoutMs, log });
  await rpc.start();
  const metrics = new QueryMetrics();
  const selection = new SelectionService(registry, new PolicyStateStore(store));
  const processor = new QueryProcessor(registry, (r, inputs) => rpc.predict(r, r.inputTypeCode, inputs), metrics, selection, {
    queue: {
      maxBatchSize: config.maxBatchSize, maxInflightPerReplica: config.maxInflightPerReplica, maxQueue: config.maxQueue,
      maxAttempts: 3, budgetFraction: 0.8, maxBatchWaitMs: config.maxBatchWaitMs,
    },
    cacheBytes: config.cacheBytes,
  });
  const manager = new LocalManager({ dataDir: config.dataDir, rpc: { host: config.host, port: rpc.boundPort }, stopGraceMs: config.stopGraceMs, log });

  // Replicas: RPC tells the query processor and the manager; the manager tells RPC when a process dies.
  rpc.on('ready', (r: Replica) => {
    processor.addReplica(r);
    const matched = manager.markReady(r.replicaId, r.modelName, r.modelVersion);
    r.replicaId ??= matched;
  });
  rpc.on('lost', (r: Replica) => processor.removeReplica(r));
  manager.on('replica-exit', (id: string, reason: string) => rpc.evictByReplicaId(id, reason));
  manager.on('replica-stopping', (id: string) => rpc.evictByReplicaId(id, 'replica is being stopped'));

  // Registry changes drive the resource manager.
  const reconcile = (model: string) => {
    manager.reconcile(model, registry.listVersions(), registry.currentVersion(model)).catch((e) => log(`reconcile ${model}: ${String(e)}`));
  };
  registry.on('version-added', (v: ModelVersion) => reconcile(v.name));
  registry.on('version-deleted', (v: ModelVersion) => reconcile(v.name));
  registry.on('current-changed', (model: string) => reconcile(model));
  registry.on('replicas-changed', (v: ModelVersion) => reconcile(v.name));
  for (const model of new Set(registry.listVersions().map((v) => v.name))) reconcile(model);

  const http = { bodyLimitBytes: config.bodyLimitBytes, log };
  const queryApi = createQueryApi(processor, metrics, http);
  const adminApi = createAdminApi({ registry, manager, processor, selection, readyTimeoutMs: config.readyTimeoutMs }, http);
  const queryUrl = await listen(queryApi, config.host, config.queryPort);
  const adminUrl = await listen(adminApi, config.host, config.adminPort);

  let closed: Promise<void> | undefined;
  const close = () => {
    closed ??= (async () => {
      await Promise.allSettled([queryApi.close(), adminApi.close()]);
      await manager.close();
      await rpc.close();
      await store.close();
    })();
    return closed;
  };
  return { config, registry, processor, manager, rpc, queryUrl, adminUrl, rpcPort: rpc.boundPort, close };
}

async function listen(app: FastifyInstance, host: string, port: number): Promise<string> {
  await app.listen({ host, port });
  const addr = app.server.address();
  const actual = typeof addr === 'object' && addr ? addr.port : port;
  return `http://${host.includes(':') ? `[${host}]` : host}:${actual}`;
}
