/** Every setting and its default, resolved once into a frozen object (UserConfig → ResolvedConfig). */
import { networkInterfaces } from 'node:os';
import { resolve } from 'node:path';
import type { LogFormat, LogLevel } from './observability/log.ts';

export const BACKENDS = ['local', 'docker', 'kubernetes'] as const;
export type BackendKind = (typeof BACKENDS)[number];

export interface UserConfig {
  dataDir?: string;
  host?: string;
  queryPort?: number;
  adminPort?: number;
  rpcPort?: number;
  /** V2 gRPC (inference.GRPCInferenceService) port; 0 = a free port, -1 = no gRPC server. */
  grpcPort?: number;
  bodyLimitBytes?: number;
  heartbeatTimeoutMs?: number;
  /** A replica whose batch has been in flight this long while silent is killed as stuck. */
  predictTimeoutMs?: number;
  /** A replica that has not registered this long after it started is killed and restarted. */
  startTimeoutMs?: number;
  readyTimeoutMs?: number;
  stopGraceMs?: number;
  maxBatchSize?: number;
  maxInflightPerReplica?: number;
  maxQueue?: number;
  maxBatchWaitMs?: number;
  cacheBytes?: number;
  /** Latency objective (ms) of a V2 inference sent to a model directly, not through an application. */
  modelSloMs?: number;
  /** Where replicas run: child processes, or containers of a Docker engine. */
  backend?: BackendKind;
  /** The Docker engine (unix:///path/docker.sock or tcp://host:port). */
  dockerHost?: string;
  /** Several Docker engines, one per machine: replicas are placed across them (overrides dockerHost). */
  dockerHosts?: string[];
  /** A JSON file listing the machines: [{name, host, tls?: {certPath | ca, cert, key}}] (adds to dockerHosts). */
  machinesFile?: string;
  /** ca.pem, cert.pem and key.pem for tcp:// engines, as DOCKER_CERT_PATH ('' = plain TCP). */
  dockerTlsDir?: string;
  /** A machine whose engine has not answered this long is down: its replicas start elsewhere. */
  machineDownAfterMs?: number;
  /** Kubernetes backend: the namespace replicas' Deployments go in. */
  kubeNamespace?: string;
  /** Image of the built-in runtimes on the Docker backend. */
  dockerImage?: string;
  /** Superseded versions kept warm (one replica each) for pinned queries and instant rollback. */
  warmVersions?: number;
  /** A version started on demand (a pinned query) is stopped after this long without queries. */
  onDemandIdleMs?: number;
  /** How often measurements are taken and the autoscaler decides. */
  measureIntervalMs?: number;

  // ---------- cluster ----------
  /** Where the registry lives: '' = SQLite in the data directory; redis://host:port/db = shared by every frontend on it. */
  store?: string;
  /** Prefix of every Redis key, so several clusters can share one Redis. */
  storePrefix?: string;
  /** The address replicas and other frontends use to reach this frontend (default: --host, or this machine's first address when bound to all). */
  advertiseAddress?: string;
  /** Redis store: how long the resource manager's leader lease lasts without renewal. */
  leaseTtlMs?: number;

  // ---------- security ----------
  /** Bearer token for the admin API with every right ('' = none; required off loopback). */
  adminToken?: string;
  /** Bearer token for the admin API's reads only ('' = none). */
  readToken?: string;
  /** PEM files for HTTPS on both APIs ('' = plain HTTP). */
  tlsCert?: string;
  tlsKey?: string;
  /** RPC: CurveZMQ encryption and authentication: 'auto' (on when not bound to loopback), 'on', 'off'. */
  rpcCurve?: 'auto' | 'on' | 'off';
  /** RPC: let containers register without the per-replica secret (plain Clipper v3). Default: only on loopback. */
  rpcAllowPlain?: boolean;
  /** RPC: largest frame accepted from a container. */
  rpcMaxMessageBytes?: number;
  /** Allow `runtime: command` (runs a program of the caller's choosing as this server's user). */
  allowCommandRuntime?: boolean;
  /** `model_data_path` must lie under this directory (default: the working directory at start). */
  artifactRoot?: string;
  /** Largest artifact (file or directory, in total) a deploy may copy. */
  maxArtifactBytes?: number;

  // ---------- bounds ----------
  /** Bytes of inputs a version queue holds before answering 503. */
  maxQueueBytes?: number;
  /** Per-uid selection state kept per application (least recently used evicted). */
  maxSelectionUids?: number;

  // ---------- HTTP ----------
  /** Whole request (headers and body) must arrive within this. */
  requestTimeoutMs?: number;
  headersTimeoutMs?: number;
  keepAliveTimeoutMs?: number;
  /** On SIGTERM: how long in-flight queries may take to finish before replicas are stopped. */
  drainTimeoutMs?: number;

  // ---------- logs (docs/observability.md) ----------
  /** The server log's threshold: trace, debug, info, warn, error or fatal. */
  logLevel?: LogLevel;
  /** JSON lines (for collectors) or text (for a terminal). */
  logFormat?: LogFormat;

  // ---------- traces (docs/observability.md) ----------
  /**
   * OTLP/HTTP collector for OpenTelemetry traces: a base URL (`/v1/traces` is added) or the full
   * traces URL. Default: $OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, else $OTEL_EXPORTER_OTLP_ENDPOINT;
   * '' = no traces. Resolved to the URL spans are POSTed to.
   */
  otlpEndpoint?: string;
  /** `service.name` of the spans (default $OTEL_SERVICE_NAME or clipper-ts). */
  traceServiceName?: string;
  /** Share of new traces recorded, 0..1 (default 1); a caller's sampled flag is followed either way. */
  traceSampleRatio?: number;
}

export type ResolvedConfig = Readonly<Required<UserConfig>>;

export function resolveConfig(user: UserConfig = {}): ResolvedConfig {
  const heartbeatTimeoutMs = user.heartbeatTimeoutMs ?? 5000;
  return Object.freeze({
    dataDir: resolve(user.dataDir ?? './.clipper'),
    host: user.host ?? '127.0.0.1',
    queryPort: user.queryPort ?? 1337,
    adminPort: user.adminPort ?? 1338,
    rpcPort: user.rpcPort ?? 7000,
    grpcPort: user.grpcPort ?? 8001,
    bodyLimitBytes: user.bodyLimitBytes ?? 10 * 1024 * 1024,
    heartbeatTimeoutMs,
    predictTimeoutMs: user.predictTimeoutMs ?? Math.max(30_000, heartbeatTimeoutMs),
    startTimeoutMs: user.startTimeoutMs ?? 60_000,
    readyTimeoutMs: user.readyTimeoutMs ?? 30_000,
    stopGraceMs: user.stopGraceMs ?? 3000,
    maxBatchSize: user.maxBatchSize ?? 256,
    maxInflightPerReplica: user.maxInflightPerReplica ?? 1,
    maxQueue: user.maxQueue ?? 100_000,
    maxBatchWaitMs: user.maxBatchWaitMs ?? 0,
    cacheBytes: user.cacheBytes ?? 64 * 1024 * 1024,
    modelSloMs: user.modelSloMs ?? 1000,
    backend: user.backend ?? 'local',
    dockerHost: user.dockerHost ?? process.env.DOCKER_HOST ?? 'unix:///var/run/docker.sock',
    dockerImage: user.dockerImage ?? '',
    dockerHosts: user.dockerHosts ?? [],
    machinesFile: user.machinesFile ?? '',
    dockerTlsDir: user.dockerTlsDir ?? process.env.DOCKER_CERT_PATH ?? '',
    machineDownAfterMs: user.machineDownAfterMs ?? 10_000,
    kubeNamespace: user.kubeNamespace ?? 'clipper',
    store: user.store ?? '',
    storePrefix: user.storePrefix ?? 'clipper:',
    advertiseAddress: user.advertiseAddress ?? defaultAdvertiseAddress(user.host ?? '127.0.0.1'),
    leaseTtlMs: user.leaseTtlMs ?? 5000,
    warmVersions: user.warmVersions ?? 1,
    onDemandIdleMs: user.onDemandIdleMs ?? 60_000,
    measureIntervalMs: user.measureIntervalMs ?? 1000,
    adminToken: user.adminToken ?? process.env.CLIPPER_ADMIN_TOKEN ?? '',
    readToken: user.readToken ?? process.env.CLIPPER_READ_TOKEN ?? '',
    tlsCert: user.tlsCert ?? '',
    tlsKey: user.tlsKey ?? '',
    rpcCurve: user.rpcCurve ?? 'auto',
    rpcAllowPlain: user.rpcAllowPlain ?? isLoopback(user.host ?? '127.0.0.1'),
    rpcMaxMessageBytes: user.rpcMaxMessageBytes ?? 64 * 1024 * 1024,
    allowCommandRuntime: user.allowCommandRuntime ?? false,
    artifactRoot: resolve(user.artifactRoot ?? process.cwd()),
    maxArtifactBytes: user.maxArtifactBytes ?? 2 * 1024 * 1024 * 1024,
    maxQueueBytes: user.maxQueueBytes ?? 256 * 1024 * 1024,
    maxSelectionUids: user.maxSelectionUids ?? 10_000,
    requestTimeoutMs: user.requestTimeoutMs ?? 30_000,
    headersTimeoutMs: user.headersTimeoutMs ?? 10_000,
    keepAliveTimeoutMs: user.keepAliveTimeoutMs ?? 5_000,
    drainTimeoutMs: user.drainTimeoutMs ?? 10_000,
    logLevel: user.logLevel ?? 'info',
    logFormat: user.logFormat ?? 'json',
    otlpEndpoint: otlpTracesUrl(user.otlpEndpoint),
    traceServiceName: user.traceServiceName || process.env.OTEL_SERVICE_NAME || 'clipper-ts',
    traceSampleRatio: user.traceSampleRatio ?? 1,
  });
}

/**
 * Where traces go: a flag's or $OTEL_EXPORTER_OTLP_ENDPOINT's base URL gets the signal path
 * `/v1/traces` (as OpenTelemetry's exporters do); $OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is used as is.
 */
export function otlpTracesUrl(flag: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  const withPath = (base: string) => (/\/v1\/traces\/?$/.test(base) ? base : `${base.replace(/\/+$/, '')}/v1/traces`);
  if (flag !== undefined) return flag === '' ? '' : withPath(flag);
  if (env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) return env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT;
  if (env.OTEL_EXPORTER_OTLP_ENDPOINT) return withPath(env.OTEL_EXPORTER_OTLP_ENDPOINT);
  return '';
}

export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || host.startsWith('127.');
}

function defaultAdvertiseAddress(host: string): string {
  if (host !== '0.0.0.0' && host !== '::') return host;
  for (const list of Object.values(networkInterfaces())) {
    for (const a of list ?? []) if (a.family === 'IPv4' && !a.internal) return a.address;
  }
  return '127.0.0.1';
}
