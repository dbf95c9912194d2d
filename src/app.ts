/**
 * The composition root: the only place that wires store, registry, RPC, query processor,
 * resource manager and the HTTP frontends together.
 */
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { resolveConfig, type ResolvedConfig, type UserConfig } from './config.ts';
import { ServingError } from './errors.ts';
import { GrpcInferenceServer } from './grpc/grpc-server.ts';
import { createAdminApi } from './http/admin-api.ts';
import { adminTokens, checkExposure } from './http/auth.ts';
import { drainable } from './http/drain.ts';
import { createQueryApi, MAX_BATCH_INPUTS } from './http/query-api.ts';
import { ClusterFrontend } from './cluster/cluster-frontend.ts';
import { DockerBackend } from './manager/docker/docker-backend.ts';
import { engineEndpointFromEnv } from './manager/docker/engine-client.ts';
import { MachinesBackend } from './manager/docker/machines-backend.ts';
import { LeaderGatedManager, type LeadingManager } from './manager/leader-gate.ts';
import { loadMachinesFile, machinesFromHosts } from './manager/machines.ts';
import { mergeLoadSamples } from './measure/merge-load.ts';
import { errorFields, messageLog, silentLogger, textLogger, type Logger, type LogLevel } from './observability/log.ts';

import { httpOptions } from './http/server-common.ts';
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
import { INPUT_TYPE_CODE } from './registry/input-types.ts';
import { tracingFromConfig } from './observability/tracing.ts';
import { RegistryService } from './registry/registry-service.ts';
import type { Replica } from './rpc/replica.ts';
import { RpcServer } from './rpc/router-server.ts';
import { rpcSecurity, securityFromKeys, type RpcEndpoint } from './rpc/replica-auth.ts';
import { checkArtifact } from './runtimes/check-artifact.ts';
import { AppKeys } from './security/app-keys.ts';
import { DataDirLock } from './store/data-dir-lock.ts';
import { RedisStore } from './store/redis-store.ts';
import { SqliteStore } from './store/sqlite-store.ts';
import type { Store } from './store/store.ts';

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
  /** The V2 gRPC port bound, or -1 when gRPC is off (grpcPort -1). */
  grpcPort: number;
  close(): Promise<void>;
}

/** What has been started so far, undone in reverse on close or on a failed start. */
type Undo = Array<{ what: string; run: () => Promise<void> | void }>;

/**
 * Starts everything, or nothing: the data directory is locked first (a second server fails there,
 * before anything is created or changed); ports are bound before any replica starts; and when a
 * step fails, what was started is closed again, the lock released and a data directory this call
 * created removed, so a failed start leaves the machine as it was. Errors that an operator can fix
 * (port in use, directory locked, read-only or full) are ServingErrors with a one-line message.
 *
 * `log`: the server's logger (observability/log.ts; the CLI's writes JSON lines to stderr), or a
 * function that gets each record as a line of text (tests); none: silent.
 */
export async function startApp(user: UserConfig = {}, log?: Logger | ((line: string) => void)): Promise<ClipperApp> {
  const config = resolveConfig(user);
  const logger = typeof log === 'function' ? textLogger(log, config.logLevel) : log ?? silentLogger;
  checkExposure(config); // no admin API open to the network (http/auth.ts)
  const lock = DataDirLock.acquire(config.dataDir);
  if (lock.takenOverFrom !== undefined) {
    logger.warn({ dataDir: config.dataDir, previousPid: lock.takenOverFrom }, `took over data directory ${config.dataDir} from pid ${lock.takenOverFrom}, which is no longer running`);
  }
  const undo: Undo = [];
  try {
    return await compose(config, lock, undo, logger);
  } catch (e) {
    await unwind(undo, logger);
    lock.release({ removeCreated: true });
    throw e;
  }
}

async function compose(config: ResolvedConfig, lock: DataDirLock, undo: Undo, logger: Logger): Promise<ClipperApp> {
  // Deep code that logs a line now and then gets a seam: each line is one record of its component.
  const seam = (component: string, level: LogLevel = 'info') => messageLog(logger.child({ component }), level);
  const log = messageLog(logger);
  // Traces (observability/tracing.ts): flushed last, once every request has ended.
  const tracing = await tracingFromConfig(config, log);
  undo.push({ what: 'trace exporter', run: () => tracing.shutdown() });
  const store: Store = config.store
    ? new RedisStore({ url: config.store, prefix: config.storePrefix })
    : new SqliteStore(join(config.dataDir, 'registry.sqlite'));
  undo.push({ what: 'store', run: () => store.close() });
  const registry = new RegistryService(store, {
    artifactDir: join(config.dataDir, 'artifacts'), artifactRoot: config.artifactRoot, maxArtifactBytes: config.maxArtifactBytes,
    allowCommandRuntime: config.allowCommandRuntime, logger: logger.child({ component: 'registry' }),
  }, (runtime, path) => checkArtifact(runtime, path));
  await registry.load();
  undo.push({ what: 'registry feed', run: () => registry.close() });
  // Query API keys per application (http/auth.ts); a deleted application's keys go with it.
  const appKeys = new AppKeys(store);
  await appKeys.load(registry.listApps().map((a) => a.name));
  registry.on('app-deleted', (name: string) => {
    appKeys.drop(name).catch((e) => logger.error({ app: name, ...errorFields(e) }, 'the keys of a deleted application could not be dropped'));
  });
  if (store.shared) {
    // Keys set through another frontend are enforced here within a second.
    const refresh = setInterval(() => void appKeys.load(registry.listApps().map((a) => a.name)).catch(() => {}), 1000);
    refresh.unref();
    undo.push({ what: 'app key refresh', run: () => clearInterval(refresh) });
  }

  // In a cluster (a shared store), the RPC keys, membership, lease and load are shared through Redis.
  const cluster = store.shared
    ? await ClusterFrontend.join({ url: config.store, prefix: config.storePrefix, leaseTtlMs: config.leaseTtlMs, log: seam('cluster') })
    : undefined;
  if (cluster) undo.push({ what: 'cluster membership', run: () => cluster.close() });

  // RPC security (docs/rpc.md): keys from the data dir (or the cluster's), curve off loopback, only registered models register.
  const rpc = new RpcServer({
    host: config.host, port: config.rpcPort, heartbeatTimeoutMs: config.heartbeatTimeoutMs, predictTimeoutMs: config.predictTimeoutMs, log: seam('rpc', 'warn'),
    security: cluster ? securityFromKeys(cluster.keys, config) : rpcSecurity(config),
    lookupVersion: (name, version) => {
      const v = registry.getVersion(name, version);
      return v && { inputTypeCode: INPUT_TYPE_CODE[v.inputType] };
    },
  });
  await bind(() => rpc.start(), config.host, config.rpcPort, 'RPC');
  undo.push({ what: 'rpc', run: () => rpc.close() });
  // What replicas are told: this frontend's reachable address, and in a cluster every frontend's.
  const endpoint: RpcEndpoint = { ...rpc.endpoint(), host: config.advertiseAddress };
  const leadingManager = () => createManager(config, endpoint, registry, logger);
  const gate = cluster && new LeaderGatedManager({
    backend: config.backend, registry, log: seam('manager'),
    connected: () => rpc.readyReplicas(),
    leaderAdmin: () => cluster.leaderAdmin(),
  });
  const manager: ContainerManager = gate ?? await leadingManager();
  undo.push({ what: 'replicas', run: () => manager.close() });
  let controller: ReplicaController | undefined;
  const metrics = new QueryMetrics();
  const selection = new SelectionService(registry, new PolicyStateStore(store, config.maxSelectionUids));
  const processor = new QueryProcessor(registry, (r, inputs) => rpc.predict(r, r.inputTypeCode, inputs), metrics, selection, {
    queue: {
      maxBatchSize: config.maxBatchSize, maxInflightPerReplica: config.maxInflightPerReplica, maxQueue: config.maxQueue,
      maxQueueBytes: config.maxQueueBytes, maxAttempts: 3, budgetFraction: 0.45, maxBatchWaitMs: config.maxBatchWaitMs,
    },
    cacheBytes: config.cacheBytes,
    modelSloMs: config.modelSloMs,
  }, undefined, {
    demand: (name, version) => controller?.demand(name, version),
    starting: (name, version) => manager.isStarting(name, version),
  });
  const load = () => (cluster ? mergeLoadSamples(cluster.shareLoad(processor.takeLoad())) : processor.takeLoad());
  const measurements = new Measurements({ load, usage: () => manager.usage(), machines: () => manager.machines() });
  registerMeasureMetrics(metrics.registry, measurements, () => registry.modelNames().map((model) => ({ model, replicas: controller!.scaling(model).desired })));
  controller = new ReplicaController(registry, manager, measurements, {
    warmVersions: config.warmVersions, onDemandIdleMs: config.onDemandIdleMs, tickMs: config.measureIntervalMs, logger: logger.child({ component: 'controller' }),
    leads: () => gate?.leading ?? true,
    fence: () => cluster?.lease.token(),
  });

  // Replicas: RPC tells the query processor and the manager; the manager tells RPC when a replica goes.
  rpc.on('ready', (r: Replica) => {
    const matched = manager.markReady(r.replicaId, r.modelName, r.modelVersion);
    r.replicaId ??= matched;
    processor.addReplica(r);
  });
  rpc.on('lost', (r: Replica, reason: string, silent: boolean) => {
    // A silent session says nothing about its replica when another session of the same replica id
    // is live: the container reconnected (a new session after its frontend timeout), or this was a
    // stale container of a replica already replaced (a healed partition). Killing would hit the live one.
    // Likewise a session older than the replica's current start: it was restarted (by a new leader) under the same id.
    const live = r.replicaId !== undefined && rpc.readyReplicas().some((o) => o !== r && o.replicaId === r.replicaId);
    const startedAt = r.replicaId === undefined ? undefined : manager.replicas().find((x) => x.replicaId === r.replicaId)?.startedAt;
    const earlier = startedAt !== undefined && r.connectedAt < startedAt;
    if (silent && r.replicaId && !live && !earlier) manager.markUnresponsive(r.replicaId, reason);
    processor.removeReplica(r);
  });
  manager.on('replica-exit', (id, reason, cause) => {
    // First the processor, so the batches the eviction fails are judged as possible queries of death.
    processor.replicaExited(id, reason, cause);
    rpc.evictByReplicaId(id, reason);
  });
  manager.on('replica-stopping', (id) => rpc.evictByReplicaId(id, 'replica is being stopped'));

  const http = httpOptions(config, logger.child({ component: 'http' })); // body limit, timeouts, HTTPS, request log
  const queryApi = createQueryApi(processor, metrics, { ...http, tracing }, appKeys, registry);
  const adminApi = createAdminApi({ registry, manager, controller, measurements, processor, selection, readyTimeoutMs: config.readyTimeoutMs, tokens: adminTokens(config), appKeys,
    cluster: cluster && (() => cluster.view()),
  }, http);
  const drains = [drainable(queryApi), drainable(adminApi)];
  // Ports are bound before any replica starts, so a port conflict launches nothing.
  const queryUrl = await bind(() => listen(queryApi, config.host, config.queryPort), config.host, config.queryPort, 'query API');
  undo.push({ what: 'query API', run: () => queryApi.close() });
  const adminUrl = await bind(() => listen(adminApi, config.host, config.adminPort), config.host, config.adminPort, 'admin API');
  undo.push({ what: 'admin API', run: () => adminApi.close() });
  let grpcPort = -1;
  if (config.grpcPort >= 0) {
    const grpcServer = new GrpcInferenceServer({ processor, registry, keys: appKeys, maxMessageBytes: config.bodyLimitBytes, maxInputs: MAX_BATCH_INPUTS, tls: http.tls, log: seam('grpc', 'error'), logger: logger.child({ component: 'grpc' }), tracing });
    // Closed in the drain (calls in flight finish), and again on unwind (a failed start): the second is a no-op.
    undo.push({ what: 'gRPC', run: () => grpcServer.close() });
    grpcPort = await bind(() => grpcServer.start(config.host, config.grpcPort), config.host, config.grpcPort, 'V2 gRPC');
    drains.push({ drain: (ms) => grpcServer.close(ms) });
  }
  undo.push({ what: 'controller', run: () => controller!.close() });
  await controller.start();
  if (cluster && gate) {
    const ctl = controller;
    // Leadership changes one at a time: a new supervisor adopts what the last one left.
    let turn = Promise.resolve();
    const next = (step: () => Promise<void>) => {
      turn = turn.then(step).catch((e) => logger.error(errorFields(e, true), 'resource manager hand-over failed'));
    };
    cluster.lease.on('acquired', (token: number) => next(async () => {
      if (!cluster.lease.isLeader()) return;
      logger.info({ token }, `leading the resource manager (fencing token ${token})`);
      await gate.lead(leadingManager, ctl.allTargets());
    }));
    cluster.lease.on('lost', (reason: string) => next(async () => {
      logger.warn({ reason }, `no longer leading the resource manager: ${reason}`);
      await gate.follow({ park: true });
      if (gate.hasParked) logger.info('local replicas keep running until another frontend leads');
    }));
    cluster.on('other-leader', (id: string) => next(async () => {
      if (!gate.hasParked) return;
      logger.info({ leader: id }, `frontend ${id} leads now: stopping this frontend's local replicas`);
      await gate.otherLeads();
    }));
    const self = { host: config.advertiseAddress, port: rpc.boundPort };
    await cluster.start({ rpc: self, queryUrl, adminUrl }, (list, me) => {
      endpoint.frontends = list;
      rpc.setFrontends(list, me);
    });
    // Shutting down: hand the replicas over first, then the lease, so the next leader adopts them.
    undo.push({ what: 'leadership', run: async () => { await gate.follow(); await cluster.lease.close(); await turn; } });
  }

  // Stopping: drain both APIs (in-flight queries finish or are answered, see http/drain.ts), then
  // the controller, replicas, RPC and store in reverse order of starting, then the lock.
  let closed: Promise<void> | undefined;
  const close = () => {
    closed ??= (async () => {
      await Promise.all(drains.map((d) => d.drain(config.drainTimeoutMs)));
      await unwind(undo, logger);
      lock.release();
      logger.info('server stopped');
    })();
    return closed;
  };
  logger.info({ queryUrl, adminUrl, rpcPort: rpc.boundPort, grpcPort, dataDir: config.dataDir, backend: manager.backend }, 'server started');
  return { config, registry, processor, manager, controller, measurements, rpc, queryUrl, adminUrl, rpcPort: rpc.boundPort, grpcPort, close };
}

/** The manager that starts and stops replicas (in a cluster, the leader's). */
async function createManager(config: ResolvedConfig, rpc: RpcEndpoint, registry: RegistryService, logger: Logger): Promise<LeadingManager> {
  if (config.backend === 'kubernetes') {
    const { KubernetesManager } = await import('./manager/kubernetes/kubernetes-manager.ts');
    const km = new KubernetesManager({
      kubeConfig: process.env.KUBERNETES_SERVICE_HOST ? { kind: 'in-cluster' } : { kind: 'default' },
      namespace: config.kubeNamespace, image: config.dockerImage || undefined, rpc,
      stopGraceMs: config.stopGraceMs, startTimeoutMs: config.startTimeoutMs, maxArtifactBytes: Math.min(config.maxArtifactBytes, 32 * 1024 * 1024),
      log: messageLog(logger.child({ component: 'kubernetes' })),
    });
    // Deployments outlive the frontend that made them: handing over is closing.
    return Object.assign(km, { release: () => km.close(), adoptable: true });
  }
  return new Supervisor(await createBackend(config, logger), {
    rpc, stopGraceMs: config.stopGraceMs, startTimeoutMs: config.startTimeoutMs, logger: logger.child({ component: 'manager' }),
    localArtifact: (v) => registry.localArtifact(v),
  });
}

async function createBackend(config: ResolvedConfig, logger: Logger): Promise<ReplicaBackend> {
  if (config.backend === 'local') return new ProcessBackend(config.dataDir, messageLog(logger.child({ component: 'backend' }), 'warn'));
  const log = messageLog(logger.child({ component: 'docker' }));
  // Containers are labelled with their owner: in a cluster every frontend's leader adopts the same ones.
  const owner = createHash('sha1').update(config.store ? `${config.store}|${config.storePrefix}` : config.dataDir).digest('hex').slice(0, 12);
  const logDir = join(config.dataDir, 'logs');
  const image = config.dockerImage || undefined;
  const tls = config.dockerTlsDir ? { certPath: config.dockerTlsDir } : engineEndpointFromEnv().tls;
  const machines = [...(config.machinesFile ? loadMachinesFile(config.machinesFile) : []), ...(config.dockerHosts.length ? machinesFromHosts(config.dockerHosts, tls) : [])];
  const health = { intervalMs: Math.max(200, Math.floor(config.machineDownAfterMs / 5)), downAfterMs: config.machineDownAfterMs };
  if (machines.length > 0) return new MachinesBackend({ machines, image, owner, logDir, log, health });
  const dockerHost = { ...engineEndpointFromEnv(process.env, config.dockerHost), ...(config.dockerTlsDir ? { tls } : {}) };
  return new DockerBackend({ dockerHost, image, owner, logDir, log, health });
}

async function unwind(undo: Undo, logger: Logger): Promise<void> {
  for (const step of undo.splice(0).reverse()) {
    try {
      await step.run();
    } catch (e) {
      logger.error({ step: step.what, ...errorFields(e) }, `closing the ${step.what} failed`);
    }
  }
}

/** Runs a bind, turning the OS's refusal into one line that names the port and what it is for. */
async function bind<T>(fn: () => Promise<T>, host: string, port: number, what: string): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    const code = (e as { code?: unknown }).code;
    if (code === 'EADDRINUSE') throw new ServingError('UNAVAILABLE', `port ${port} (${what}) is already in use on ${host}`);
    if (code === 'EACCES') throw new ServingError('UNAVAILABLE', `port ${port} (${what}) cannot be bound on ${host}: permission denied`);
    if (code === 'EADDRNOTAVAIL' || code === 'ENOTFOUND') throw new ServingError('UNAVAILABLE', `cannot bind ${what} to ${host}: not an address of this machine`);
    throw e;
  }
}

async function listen(app: FastifyInstance, host: string, port: number): Promise<string> {
  await app.listen({ host, port });
  const addr = app.server.address();
  const actual = typeof addr === 'object' && addr ? addr.port : port;
  return `${app.initialConfig.https ? 'https' : 'http'}://${host.includes(':') ? `[${host}]` : host}:${actual}`;
}
