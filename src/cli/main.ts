/** The `clipper` command: a thin client of the admin/query APIs, plus `start` which runs the server. */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { Command, InvalidArgumentError } from 'commander';
import { ClipperClient, ClipperHttpError } from '../client.ts';
import { BACKENDS, resolveConfig, type BackendKind } from '../config.ts';
import { LOG_FORMATS, LOG_LEVELS, type LogFormat, type LogLevel } from '../observability/log.ts';
import { mib, print, spinner, table } from './format.ts';
import { renderManifests } from './k8s-render.ts';
import { runStart } from './start.ts';
import { autoscalingText, type ScalingJson, type StatusJson } from './status-types.ts';
import { statusText } from './status-text.ts';
import { runTop } from './top.ts';

const program = new Command('clipper').description('Clipper for TypeScript: low-latency prediction serving').showHelpAfterError();

const int = (v: string) => {
  const n = Number(v);
  if (!Number.isInteger(n)) throw new InvalidArgumentError('not an integer');
  return n;
};
const float = (v: string) => {
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n)) throw new InvalidArgumentError('not a number');
  return n;
};
const curve = (v: string): 'auto' | 'on' | 'off' => {
  if (!['auto', 'on', 'off'].includes(v)) throw new InvalidArgumentError('must be one of auto, on, off');
  return v as 'auto' | 'on' | 'off';
};
/** A secret or certificate from a file, as one trimmed string; an unreadable file is a one-line error. */
function readSecretFile(flag: string, path: string): string {
  let text: string;
  try {
    text = readFileSync(path, 'utf8').trim();
  } catch (e) {
    console.error(`clipper: cannot start: ${flag} ${path} cannot be read: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    process.exit(1);
  }
  if (text === '') {
    console.error(`clipper: cannot start: ${flag} ${path} is empty`);
    process.exit(1);
  }
  return text;
}
const oneOf = <T extends string>(list: readonly T[]) => (v: string): T => {
  if (!(list as readonly string[]).includes(v)) throw new InvalidArgumentError(`must be one of ${list.join(', ')}`);
  return v as T;
};
const backend = (v: string): BackendKind => {
  if (!(BACKENDS as readonly string[]).includes(v)) throw new InvalidArgumentError(`must be one of ${BACKENDS.join(', ')}`);
  return v as BackendKind;
};

program.command('start')
  .description('start the server (query API, admin API, RPC, local replicas)')
  .option('--data-dir <dir>', 'data directory', './.clipper')
  .option('--host <host>', 'address to bind', '127.0.0.1')
  .option('--query-port <port>', 'query API port', int, 1337)
  .option('--admin-port <port>', 'admin API port', int, 1338)
  .option('--rpc-port <port>', 'RPC port for model containers', int, 7000)
  .option('--grpc-port <port>', 'KServe V2 gRPC port; -1 turns it off', int, 8001)
  .option('--body-limit <bytes>', 'largest accepted request body (default 10 MB)', int)
  .option('--cache-bytes <bytes>', 'prediction cache size; 0 turns it off (default 64 MB)', int)
  .option('--model-slo-ms <ms>', 'latency objective of a V2 inference sent to a model directly, not through an application (default 1000)', int)
  .option('--max-batch-size <n>', 'largest adaptive batch (default 256)', int)
  .option('--max-batch-wait-ms <ms>', 'delayed batching: wait this long for a fuller batch (default 0)', int)
  .option('--max-queue <n>', 'inputs a version queue holds before answering 503 (default 100000)', int)
  .option('--max-inflight <n>', 'batches in flight per replica (default 1)', int)
  .option('--backend <kind>', `where replicas run: ${BACKENDS.join('|')} (default local)`, backend)
  .option('--docker-host <url>', 'Docker engine for --backend docker: unix:///path/docker.sock or tcp://host:port (default $DOCKER_HOST or /var/run/docker.sock)')
  .option('--docker-image <name>', 'image of the built-in runtimes on the Docker backend (see `clipper image build`)')
  .option('--machine <[name=]url>', 'a Docker engine of one machine: unix://, tcp:// or ssh:// (repeat for several: replicas are placed across them by utilization)', collect, [])
  .option('--machines <file>', 'a JSON file listing machines: [{"name", "host", "tls": {"certPath"}}]')
  .option('--machine-down-after-ms <ms>', 'a machine whose engine is silent this long is down and its replicas start elsewhere (default 10000)', int)
  .option('--docker-tls-dir <dir>', 'ca.pem, cert.pem and key.pem for tcp:// engines (default $DOCKER_CERT_PATH)')
  .option('--kube-namespace <ns>', 'namespace of the replicas on --backend kubernetes (default clipper)')
  .option('--store <url>', 'registry: redis://host:port/db shares it with every frontend on that Redis (default: SQLite in the data directory)')
  .option('--store-prefix <p>', 'prefix of every Redis key (default clipper:)')
  .option('--advertise-address <addr>', 'address replicas and other frontends use to reach this one (default --host, or the first address when bound to all)')
  .option('--lease-ttl-ms <ms>', 'with --store redis: how long the resource manager lease lasts unrenewed (default 5000)', int)
  .option('--warm-versions <n>', 'superseded versions kept warm with one replica each (default 1)', int)
  .option('--on-demand-idle-ms <ms>', 'stop a version started for pinned queries after this long without any (default 60000)', int)
  .option('--measure-interval-ms <ms>', 'how often load is measured and the autoscaler decides (default 1000)', int)
  .option('--heartbeat-timeout-ms <ms>', 'a silent replica is unresponsive after this long (default 5000)', int)
  .option('--predict-timeout-ms <ms>', 'a replica whose batch is in flight this long while silent is killed (default 30000)', int)
  .option('--start-timeout-ms <ms>', 'a replica not registered this long after it started is restarted (default 60000)', int)
  .option('--ready-timeout-ms <ms>', 'how long deploy and scale wait for replicas to be ready (default 30000)', int)
  .option('--stop-grace-ms <ms>', 'time a stopping replica gets before SIGKILL (default 3000)', int)
  // Security and limits: docs/security.md explains each default.
  .option('--admin-token <token>', 'admin API token with every right (default $CLIPPER_ADMIN_TOKEN; required off loopback)')
  .option('--read-token <token>', 'admin API token that may only read (default $CLIPPER_READ_TOKEN)')
  .option('--admin-token-file <file>', 'read the admin token from a file (keeps it out of `ps`)')
  .option('--read-token-file <file>', 'read the read-only token from a file')
  .option('--tls-cert <file>', 'PEM certificate chain: serve both APIs over HTTPS')
  .option('--tls-key <file>', 'PEM private key for --tls-cert')
  .option('--request-timeout-ms <ms>', 'a whole request must arrive within this (default 30000)', int)
  .option('--headers-timeout-ms <ms>', 'request headers must arrive within this (default 10000)', int)
  .option('--keep-alive-timeout-ms <ms>', 'idle kept-alive connections are closed after this (default 5000)', int)
  .option('--drain-timeout-ms <ms>', 'on SIGTERM, in-flight queries get this long to finish (default 10000)', int)
  .option('--rpc-curve <mode>', 'CurveZMQ on the RPC port: auto|on|off (default auto: on unless bound to loopback)', curve)
  .option('--rpc-allow-plain', 'let containers register without the per-replica secret (default: only on loopback)')
  .option('--no-rpc-allow-plain', 'refuse plain registrations even on loopback')
  .option('--rpc-max-message-bytes <n>', 'largest RPC frame accepted (default 64 MiB)', int)
  .option('--allow-command-runtime', 'allow `runtime: command` deployments (they run programs as this user)')
  .option('--artifact-root <dir>', 'model_data_path must lie under this directory (default: the working directory)')
  .option('--max-artifact-bytes <n>', 'largest artifact a deploy may copy (default 2 GiB)', int)
  .option('--max-queue-bytes <n>', 'bytes of inputs a version queue holds before answering 503 (default 256 MiB)', int)
  .option('--max-selection-uids <n>', 'per-user selection state kept per application (default 10000)', int)
  .option('--otlp-endpoint <url>', 'send OpenTelemetry traces to this OTLP/HTTP collector, e.g. http://127.0.0.1:4318 (default $OTEL_EXPORTER_OTLP_ENDPOINT; none: no traces)')
  .option('--trace-sample-ratio <r>', 'share of new traces recorded, 0..1 (default 1)', float)
  .option('--log-level <level>', `server log threshold: ${LOG_LEVELS.join('|')} (default info)`, oneOf<LogLevel>(LOG_LEVELS))
  .option('--log-format <format>', 'server log on stderr: json (one record per line) or text (for a terminal) (default json)', oneOf<LogFormat>(LOG_FORMATS))
  .option('--demo', 'deploy and link the example model')
  .action(async (o) => {
    const adminToken = o.adminTokenFile !== undefined ? readSecretFile('--admin-token-file', o.adminTokenFile) : o.adminToken;
    const readToken = o.readTokenFile !== undefined ? readSecretFile('--read-token-file', o.readTokenFile) : o.readToken;
    await runStart({
      dataDir: o.dataDir, host: o.host, queryPort: o.queryPort, adminPort: o.adminPort, rpcPort: o.rpcPort, grpcPort: o.grpcPort, bodyLimitBytes: o.bodyLimit,
      cacheBytes: o.cacheBytes, modelSloMs: o.modelSloMs, maxBatchSize: o.maxBatchSize, maxBatchWaitMs: o.maxBatchWaitMs, maxQueue: o.maxQueue, maxInflightPerReplica: o.maxInflight,
      backend: o.backend, dockerHost: o.dockerHost, dockerImage: o.dockerImage, dockerHosts: o.machine, machinesFile: o.machines, dockerTlsDir: o.dockerTlsDir, machineDownAfterMs: o.machineDownAfterMs, kubeNamespace: o.kubeNamespace,
      store: o.store, storePrefix: o.storePrefix, advertiseAddress: o.advertiseAddress, leaseTtlMs: o.leaseTtlMs, warmVersions: o.warmVersions, onDemandIdleMs: o.onDemandIdleMs,
      measureIntervalMs: o.measureIntervalMs, heartbeatTimeoutMs: o.heartbeatTimeoutMs, predictTimeoutMs: o.predictTimeoutMs,
      startTimeoutMs: o.startTimeoutMs, readyTimeoutMs: o.readyTimeoutMs, stopGraceMs: o.stopGraceMs,
      adminToken, readToken, tlsCert: o.tlsCert, tlsKey: o.tlsKey,
      requestTimeoutMs: o.requestTimeoutMs, headersTimeoutMs: o.headersTimeoutMs, keepAliveTimeoutMs: o.keepAliveTimeoutMs, drainTimeoutMs: o.drainTimeoutMs,
      rpcCurve: o.rpcCurve, rpcAllowPlain: o.rpcAllowPlain, rpcMaxMessageBytes: o.rpcMaxMessageBytes, allowCommandRuntime: o.allowCommandRuntime,
      artifactRoot: o.artifactRoot, maxArtifactBytes: o.maxArtifactBytes, maxQueueBytes: o.maxQueueBytes, maxSelectionUids: o.maxSelectionUids,
      logLevel: o.logLevel, logFormat: o.logFormat,
      otlpEndpoint: o.otlpEndpoint, traceSampleRatio: o.traceSampleRatio,
    }, Boolean(o.demo));
  });

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

program.command('k8s').description('Kubernetes').command('render')
  .description('print manifests for the whole cluster (namespace, frontends, Redis, RBAC): pipe to `kubectl apply -f -`')
  .option('--namespace <ns>', 'namespace (default clipper)')
  .option('--image <name>', 'image of the frontends (default clipper-runtime:<version>)')
  .option('--runtime-image <name>', 'image of the model replicas (default: --image)')
  .option('--image-pull-policy <p>', 'Always|IfNotPresent|Never (default IfNotPresent)')
  .option('--frontends <n>', 'frontend pods (default 1)', int)
  .option('--service-type <t>', 'ClusterIP|NodePort|LoadBalancer (default ClusterIP)')
  .option('--redis-storage <size>', "Redis volume size (default 1Gi)")
  .option('--storage-class <name>', 'storage class of the Redis volume')
  .option('--admin-token-file <file>', 'admin token to put in the Secret (default: a random one)')
  .option('--yaml', 'YAML instead of a JSON List')
  .action((o) => {
    const adminToken = o.adminTokenFile !== undefined ? readSecretFile('--admin-token-file', o.adminTokenFile) : undefined;
    try {
      process.stdout.write(renderManifests({
        namespace: o.namespace, image: o.image, runtimeImage: o.runtimeImage, imagePullPolicy: o.imagePullPolicy, frontendReplicas: o.frontends,
        serviceType: o.serviceType, redisStorage: o.redisStorage, storageClassName: o.storageClass, adminToken, format: o.yaml ? 'yaml' : 'json',
      }));
    } catch (e) {
      console.error(`clipper: ${e instanceof Error ? e.message.split('\n')[0] : String(e)}`);
      process.exit(1);
    }
  });

program.command('image').description('container images').command('build')
  .description('build the runtime image for --backend docker from this machine (offline: no registry, no Dockerfile)')
  .option('--docker-host <url>', 'Docker engine (default $DOCKER_HOST or /var/run/docker.sock)')
  .option('--tag <tag>', 'image tag (default clipper-runtime:<version>)')
  .option('--json', 'machine-readable output')
  .action(async (o) => {
    // Loaded on use: the image builder pulls in the Docker client, which no other command needs.
    const { buildRuntimeImage } = await import('../manager/docker/image-build.ts');
    try {
      const r = await buildRuntimeImage({ dockerHost: resolveConfig({ dockerHost: o.dockerHost }).dockerHost, tag: o.tag, log: (m) => console.error(m) });
      print(Boolean(o.json), r, () => `built ${r.tag}: ${r.files} files, ${mib(r.bytes)} MiB in ${r.seconds.toFixed(1)} s${r.python ? ' (with python)' : ''}`);
    } catch (e) {
      console.error(`error: image build failed: ${(e as Error).message}`);
      process.exitCode = 1;
    }
  });

/** Adds the client options and runs `fn` with a client, printing errors as one line. */
function clientCommand(cmd: Command, fn: (c: ClipperClient, json: boolean, ...args: any[]) => Promise<void>): Command {
  return cmd
    .option('--admin-url <url>', 'admin API', process.env.CLIPPER_ADMIN_URL ?? 'http://127.0.0.1:1338')
    .option('--query-url <url>', 'query API', process.env.CLIPPER_QUERY_URL ?? 'http://127.0.0.1:1337')
    // Secrets from the environment are read here, not given to commander as defaults, which --help would print.
    .option('--token <token>', 'admin API token (default $CLIPPER_TOKEN)')
    .option('--app-key <key>', 'key of an application that has keys, for predict (default $CLIPPER_APP_KEY)')
    .option('--ca-cert <file>', 'trust this PEM certificate for HTTPS (e.g. a self-signed one; NODE_EXTRA_CA_CERTS works too)')
    .option('--json', 'machine-readable output')
    .action(async (...args: any[]) => {
      const opts = args[args.length - 2] as { adminUrl: string; queryUrl: string; json?: boolean; token?: string; appKey?: string; caCert?: string };
      try {
        let ca: Buffer | undefined;
        if (opts.caCert !== undefined) {
          try {
            ca = readFileSync(opts.caCert);
          } catch (e) {
            throw new InvalidArgumentError(`--ca-cert ${opts.caCert} cannot be read: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
          }
        }
        opts.token ||= process.env.CLIPPER_TOKEN;
        opts.appKey ||= process.env.CLIPPER_APP_KEY;
        const client = new ClipperClient(opts.adminUrl, opts.queryUrl, { token: opts.token || undefined, appKey: opts.appKey || undefined, ca });
        await fn(client, Boolean(opts.json), ...args.slice(0, -1));
      } catch (e) {
        if (e instanceof ClipperHttpError) {
          const hint = e.status === 401 && !opts.token && !opts.appKey ? ' (pass --token or set CLIPPER_TOKEN; for predict, --app-key)' : '';
          if (opts.json) console.log(JSON.stringify({ error: e.code, cause: e.message }));
          else console.error(`error: ${e.code}: ${e.message}${hint}`);
          process.exitCode = 1;
        } else if (e instanceof InvalidArgumentError) {
          console.error(`error: ${e.message}`);
          process.exitCode = 1;
        } else throw e;
      }
    });
}

const app = program.command('app').description('applications');
clientCommand(app.command('add <name>').requiredOption('--input-type <type>', 'bytes|ints|floats|doubles|strings')
  .option('--default-output <text>', 'answer when no prediction arrives in time', 'None')
  .option('--slo-micros <n>', 'latency objective in microseconds', int, 100_000), async (c, json, name, o) => {
  const r = await c.admin('add_app', { name, input_type: o.inputType, default_output: o.defaultOutput, latency_slo_micros: o.sloMicros });
  print(json, r, () => `application ${name} added`);
});
clientCommand(app.command('rm <name>'), async (c, json, name) => {
  const r = await c.admin('delete_app', { name });
  print(json, r, () => `application ${name} deleted`);
});
clientCommand(app.command('keys <name> [keys...]').description("set an application's query keys (none: open to everyone)"), async (c, json, name, keys) => {
  const r = await c.admin('set_app_keys', { app_name: name, keys: keys ?? [] });
  print(json, r, () => (keys?.length ? `application ${name} now needs one of ${keys.length} key(s)` : `application ${name} is open`));
});
clientCommand(app.command('ls'), async (c, json) => {
  const r = await c.admin<Array<Record<string, unknown>>>('get_all_applications', { verbose: true });
  print(json, r, () => table(r, ['name', 'input_type', 'latency_slo_micros', 'default_output', 'linked_models']));
});

clientCommand(app.command('policy <name> <policy>').description('set the selection policy: single|weighted|shadow|exp3|exp4|epsilon-greedy|ucb1')
  .option('--param <k=v>', 'policy parameter (value parsed as JSON when it can be), repeatable', (v: string, acc: string[]) => [...acc, v], [] as string[]), async (c, json, name, policy, o) => {
  const params: Record<string, unknown> = {};
  for (const kv of o.param as string[]) {
    const eq = kv.indexOf('=');
    if (eq < 1) throw new InvalidArgumentError(`--param ${kv}: expected key=value`);
    const raw = kv.slice(eq + 1);
    try {
      params[kv.slice(0, eq)] = JSON.parse(raw);
    } catch {
      params[kv.slice(0, eq)] = raw;
    }
  }
  const r = await c.admin('set_selection_policy', { app_name: name, policy, params });
  print(json, r, () => `application ${name} now selects with ${policy} ${JSON.stringify((r as { params: unknown }).params)}`);
});
clientCommand(app.command('selection <name>').description("an application's selection state (weights per model)").option('--uid <uid>', 'state of one user'), async (c, json, name, o) => {
  const r = await c.admin<{ policy: string; weights: Record<string, number> }>('get_selection_state', { app_name: name, uid: o.uid });
  print(json, r, () => `policy ${r.policy}\n${table(Object.entries(r.weights).map(([model, weight]) => ({ model, weight: weight.toFixed(4) })))}`);
});

const model = program.command('model').description('models and versions');
clientCommand(model.command('deploy <name>').requiredOption('--version <v>', 'version')
  .option('--runtime <r>', 'js|onnx|spark|python|command|image', 'js')
  .option('--path <artifact>', 'model file or directory')
  .requiredOption('--input-type <type>', 'bytes|ints|floats|doubles|strings')
  .option('--replicas <n>', 'replicas to start', int, 1)
  .option('--batch-size <n>', 'fixed batch size (default adaptive)', int)
  .option('--command <program>', 'for --runtime command: the program to run')
  .option('--image <name>', 'for --runtime image: the container image to run (Docker backend)')
  .option('--cpus <f>', 'CPU cores per replica, fractions allowed (default: no limit)', float)
  .option('--memory-mb <n>', 'memory per replica in MiB (default: no limit)', int)
  .option('--labels <list>', 'comma-separated labels'), async (c, json, name, o) => {
  if (o.command !== undefined && o.image !== undefined) throw new InvalidArgumentError('--command and --image exclude each other');
  const spin = json ? { stop: () => {} } : spinner(`deploying ${name}:${o.version}, starting ${o.replicas} replica(s)`);
  let r: { ready: boolean };
  try {
    r = await c.admin<{ ready: boolean }>('add_model', {
      model_name: name, model_version: o.version, runtime: o.runtime, model_data_path: o.path ? resolve(o.path) : undefined,
      input_type: o.inputType, replicas: o.replicas, batch_size: o.batchSize, container_name: o.image ?? o.command ?? '',
      cpus: o.cpus, memory_mb: o.memoryMb,
      labels: o.labels ? String(o.labels).split(',') : [],
    });
  } finally {
    spin.stop();
  }
  print(json, r, () => `model ${name}:${o.version} deployed (${o.runtime}); replicas ${r.ready ? 'ready' : 'still starting'}`);
});
clientCommand(model.command('ls'), async (c, json) => {
  const r = await c.admin<Array<Record<string, unknown>>>('get_all_models', { verbose: true });
  print(json, r, () => table(r, ['model_name', 'model_version', 'runtime', 'input_type', 'replicas', 'batch_size', 'is_current_version']));
});
clientCommand(model.command('set-version <name> <version>'), async (c, json, name, version) => {
  const r = await c.admin('set_model_version', { model_name: name, model_version: version });
  print(json, r, () => `model ${name} now serves version ${version}`);
});
clientCommand(model.command('rm <name> <version>'), async (c, json, name, version) => {
  const r = await c.admin('delete_versioned_model', { model_name: name, model_version: version });
  print(json, r, () => `model ${name}:${version} deleted`);
});
clientCommand(model.command('scale <name> <replicas>').description('run a fixed number of replicas (turns autoscaling off)')
  .option('--version <v>', 'version (default: current)'), async (c, json, name, n, o) => {
  const spin = json ? { stop: () => {} } : spinner(`scaling ${name} to ${n} replica(s)`);
  let r: { ready: boolean };
  try {
    r = await c.admin<{ ready: boolean }>('set_num_replicas', { model_name: name, model_version: o.version, num_replicas: int(n) });
  } finally {
    spin.stop();
  }
  print(json, r, () => `model ${name} scaled to ${n} replica(s)${r.ready ? '' : ' (still starting)'}`);
});

clientCommand(model.command('autoscale <name>').description("let the server size a model's current version to its load")
  .option('--min <n>', 'fewest replicas (0 lets it scale to zero)', int)
  .option('--max <n>', 'most replicas', int)
  .option('--off', 'turn autoscaling off, keeping the count it chose last')
  .option('--upscale-delay <s>', 'demand must exceed capacity this long before scaling up (default 2)', float)
  .option('--downscale-delay <s>', 'slack must last this long before scaling down (default 30)', float)
  .option('--target-utilization <f>', 'share of a replica to plan for, 0..1 (default 0.7)', float)
  .addHelpText('after', '\n`clipper model scale` (set_num_replicas) sets a fixed count and turns autoscaling off.'), async (c, json, name, o) => {
  if (o.off) {
    const r = await c.admin<{ scaling: ScalingJson }>('set_autoscaling', { model_name: name, enabled: false });
    print(json, r, () => `model ${name}: autoscaling off; fixed at ${r.scaling.desired_replicas ?? '-'} replica(s)`);
    return;
  }
  if (o.min === undefined || o.max === undefined) throw new InvalidArgumentError('--min and --max are required (or --off)');
  const r = await c.admin<{ scaling: ScalingJson }>('set_autoscaling', {
    model_name: name, min_replicas: o.min, max_replicas: o.max,
    upscale_delay_s: o.upscaleDelay, downscale_delay_s: o.downscaleDelay, target_utilization: o.targetUtilization,
  });
  print(json, r, () => `model ${name} autoscales ${autoscalingText(r.scaling.autoscaling)}; desired now ${r.scaling.desired_replicas ?? '-'}`);
});
clientCommand(model.command('resources <name>').description("set a version's CPU and memory limits per replica (its replicas are replaced to apply them)")
  .option('--version <v>', 'version (default: current)')
  .option('--cpus <f>', 'CPU cores, fractions allowed; 0 = no limit', float)
  .option('--memory-mb <n>', 'memory in MiB; 0 = no limit', int), async (c, json, name, o) => {
  const r = await c.admin<{ model: { model_version: string; cpus: number; memory_mb: number } }>('set_resources', {
    model_name: name, model_version: o.version, cpus: o.cpus, memory_mb: o.memoryMb,
  });
  const m = r.model;
  print(json, r, () => `model ${name}:${m.model_version} limits: ${m.cpus ? `${m.cpus} cpus` : 'no cpu limit'}, ${m.memory_mb ? `${m.memory_mb} MiB` : 'no memory limit'}`);
});

clientCommand(program.command('link <app> <model>').description('link a model to an application'), async (c, json, appName, modelName) => {
  const r = await c.admin('add_model_links', { app_name: appName, model_names: [modelName] });
  print(json, r, () => `linked ${modelName} to ${appName}`);
});
clientCommand(program.command('unlink <app> <model>').description('unlink a model from an application'), async (c, json, appName, modelName) => {
  const r = await c.admin('delete_model_links', { app_name: appName, model_names: [modelName] });
  print(json, r, () => `unlinked ${modelName} from ${appName}`);
});
clientCommand(program.command('predict <app> <input>').description('ask an application for a prediction (input as JSON, or a plain string)')
  .option('--batch', 'the input is a JSON array of inputs')
  .option('--version <v>', 'pin a model version'), async (c, json, appName, input, o) => {
  let value: unknown;
  try {
    value = JSON.parse(input);
  } catch {
    value = input;
  }
  const r = await c.predict(appName, { [o.batch ? 'input_batch' : 'input']: value, ...(o.version ? { version: o.version } : {}) });
  print(json, r, () => JSON.stringify(r, null, 2));
});
clientCommand(program.command('status').description('machines, applications, models, replicas, load, scaling and queues'), async (c, json) => {
  const s = await c.status<StatusJson>();
  print(json, s, () => statusText(s));
});
clientCommand(program.command('top').description('live view of machines, models, load and replicas, refreshed every second (q quits; --json: the raw status once)')
  .option('--once', 'print one frame without terminal control codes, then exit')
  .option('--interval <ms>', 'refresh period', int, 1000)
  .option('--width <n>', 'columns when not on a terminal (default 120)', int), async (c, json, o) => {
  await runTop(c, { json, once: Boolean(o.once), intervalMs: Math.max(100, o.interval), width: o.width, server: c.adminUrl });
});
clientCommand(program.command('logs <model>').description("a model's replica logs")
  .option('--version <v>', 'version (default: current)')
  .option('--replica <id>', 'one replica')
  .option('--tail <n>', 'last n lines', int, 100), async (c, json, modelName, o) => {
  const r = await c.admin<{ replicas: Array<{ replica_id: string; lines: string[] }> }>('get_replica_logs', { model_name: modelName, model_version: o.version, replica_id: o.replica, tail: o.tail });
  print(json, r, () => r.replicas.map((x) => `==> ${x.replica_id} <==\n${x.lines.join('\n')}`).join('\n\n'));
});

await program.parseAsync(process.argv);
