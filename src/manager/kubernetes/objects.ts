/**
 * The objects of one model version, as pure functions of the version and the backend's settings:
 * a Deployment (its pods are the replicas), a headless Service, a Secret (the version-wide replica
 * secret) and the artifact's ConfigMaps (artifact.ts). No I/O here; kube-api.ts sends them.
 */
import { createHash } from 'node:crypto';
import type { IConfigMap } from 'kubernetes-models/v1/ConfigMap';
import type { IContainer } from 'kubernetes-models/v1/Container';
import type { IEnvVar } from 'kubernetes-models/v1/EnvVar';
import type { IPodSpec } from 'kubernetes-models/v1/PodSpec';
import type { ISecret } from 'kubernetes-models/v1/Secret';
import type { IService } from 'kubernetes-models/v1/Service';
import type { IVolume } from 'kubernetes-models/v1/Volume';
import type { IDeployment } from 'kubernetes-models/apps/v1/Deployment';
import type { ModelVersion } from '../../registry/types.ts';
import { replicaSecret, type RpcEndpoint } from '../../rpc/replica-auth.ts';
import type { ResourceLimits } from '../container-manager.ts';
import { IMAGE_APP_DIR, TS_LOADER_IN_IMAGE } from '../docker/image-build.ts';
import { replicaEnv } from '../launch.ts';
import { MANIFEST_KEY, MODEL_DIR, PARTS_DIR, REBUILD_SCRIPT, type ArtifactLayout, type PackedArtifact } from './artifact.ts';
import { ANNOTATION, LABEL, deploymentName, shortHash, versionLabels, versionSelector } from './names.ts';

/** What every version's objects are made with. */
export interface ObjectSettings {
  namespace: string;
  /** The runtime image (`clipper image build`, or the Dockerfile), pushed where the cluster pulls from. */
  image: string;
  imagePullPolicy: 'Always' | 'IfNotPresent' | 'Never';
  /** The frontend's RPC endpoint, with the auth replicas need; host and port as pods reach it. */
  rpc: RpcEndpoint;
  /** Seconds between SIGTERM and SIGKILL when a pod goes. */
  terminationGraceSeconds: number;
  /** The startup probe gives a replica this long to register before the kubelet restarts it. */
  startTimeoutMs: number;
}

/** The file the runtime SDK keeps while registered, touched on every heartbeat (CLIPPER_READY_FILE). */
export const READY_FILE = '/var/run/clipper/ready';
const RUN_DIR = '/var/run/clipper';
const LIVENESS_MARK = `${RUN_DIR}/liveness-mark`;
export const SECRET_KEY = 'replica-secret';

/**
 * Liveness: the ready file was touched since the previous probe. The probe leaves a mark file
 * after each pass and fails when the ready file is not newer than it. Only the shell's own
 * `test` and a redirection are used: the runtime image has /bin/sh but no coreutils (no find,
 * touch, stat). With a 1 s heartbeat and a 10 s period there are always fresh touches.
 */
export const LIVENESS_SCRIPT = `f=$CLIPPER_READY_FILE; m=${LIVENESS_MARK}; [ -f "$f" ] || exit 1; if [ -f "$m" ] && ! [ "$f" -nt "$m" ]; then exit 1; fi; : > "$m"`;
export const READINESS_SCRIPT = 'test -f "$CLIPPER_READY_FILE"';

export interface VersionObjects {
  deployment: IDeployment;
  service: IService;
  secret: ISecret | undefined;
  /** Names of the artifact's ConfigMaps (made by `artifactConfigMaps` from the packed artifact). */
  artifactConfigMaps: string[];
}

export function limitsOf(v: Pick<ModelVersion, 'cpus' | 'memoryMb'>): ResourceLimits {
  return { cpus: v.cpus, memoryMb: v.memoryMb };
}

export function artifactConfigMapNames(v: ModelVersion, count: number): string[] {
  const base = `${deploymentName(v.name, v.version)}-art-${shortHash(v.artifactHash, 10)}`;
  return Array.from({ length: count }, (_, i) => `${base}-${i}`);
}

/** The ConfigMaps that carry a packed artifact; the manifest is in the first. */
export function artifactConfigMaps(v: ModelVersion, s: ObjectSettings, packed: PackedArtifact): IConfigMap[] {
  const names = artifactConfigMapNames(v, packed.parts.length);
  return packed.parts.map((part, i) => ({
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: {
      name: names[i]!, namespace: s.namespace,
      labels: { ...versionLabels(v.name, v.version), [LABEL.component]: 'model-artifact' },
      annotations: { [ANNOTATION.model]: v.name, [ANNOTATION.version]: v.version, [ANNOTATION.artifactHash]: v.artifactHash, 'clipper.io/parts': String(names.length) },
    },
    immutable: true,
    ...(i === 0 ? { data: { [MANIFEST_KEY]: JSON.stringify(packed.manifest) } } : {}),
    binaryData: Object.fromEntries(Object.entries(part.data).map(([k, b]) => [k, b.toString('base64')])),
  }));
}

/** The projected volume's items: each ConfigMap's keys under `<index>/<key>`. */
function partsVolume(v: ModelVersion, layout: ArtifactLayout): IVolume {
  const names = artifactConfigMapNames(v, layout.keys.length);
  return {
    name: 'artifact-parts',
    projected: {
      sources: layout.keys.map((keys, i) => ({
        configMap: {
          name: names[i]!,
          items: [...(i === 0 ? [{ key: MANIFEST_KEY, path: MANIFEST_KEY }] : []), ...keys.map((k) => ({ key: k, path: `${i}/${k}` }))],
        },
      })),
    },
  };
}

/** Program and arguments of the replica container: those of the Docker backend (docs/docker.md). */
export function replicaCommand(v: ModelVersion, s: Pick<ObjectSettings, 'image'>): { image: string; command: string[] | undefined; env: Record<string, string> } {
  const node = (runtime: string) => ['node', '--import', TS_LOADER_IN_IMAGE, `${IMAGE_APP_DIR}/src/runtimes/${runtime}/main.ts`];
  switch (v.runtime) {
    case 'js':
    case 'onnx':
    case 'spark':
      return { image: s.image, command: node(v.runtime), env: {} };
    case 'python':
      return { image: s.image, command: ['python3', '-m', 'clipper_container'], env: { PYTHONPATH: `${IMAGE_APP_DIR}/python`, PYTHONUNBUFFERED: '1' } };
    case 'command':
      return { image: s.image, command: ['/bin/sh', '-c', `exec ${v.containerName}`], env: {} };
    case 'image':
      return { image: v.containerName, command: undefined, env: {} };
  }
}

function quantityCpu(cpus: number): string {
  return `${Math.max(1, Math.round(cpus * 1000))}m`;
}

/**
 * The objects of version `v` with `replicas` pods. `packed` is the artifact's layout (undefined
 * when the version has no artifact); `specHash` in the result's annotations changes whenever
 * anything the pods run with changes, so the backend knows to update the Deployment.
 */
export function versionObjects(v: ModelVersion, s: ObjectSettings, replicas: number, packed: ArtifactLayout | undefined): VersionObjects {
  const name = deploymentName(v.name, v.version);
  const labels = versionLabels(v.name, v.version);
  const limits = limitsOf(v);
  const modelPath = packed ? `${MODEL_DIR}/${packed.root}` : '';
  const run = replicaCommand(v, s);
  const base = replicaEnv(v, s.rpc, '*', limits, modelPath);
  delete base.CLIPPER_REPLICA_ID;
  delete base.CLIPPER_REPLICA_SECRET;
  // CLIPPER_IP as given: replicaEnv turns 0.0.0.0 into loopback, which is right for a local process only.
  base.CLIPPER_IP = s.rpc.host;
  const secretName = s.rpc.auth ? `${name}-auth` : undefined;
  const secretValue = s.rpc.auth ? replicaSecret(s.rpc.auth.replicaKey, '*', v.name, v.version) : undefined;
  const env: IEnvVar[] = [
    { name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
    ...Object.entries({ ...base, ...run.env, CLIPPER_READY_FILE: READY_FILE }).sort(([a], [b]) => a.localeCompare(b)).map(([k, value]) => ({ name: k, value })),
    { name: 'CLIPPER_REPLICA_ID', value: 'pod/$(POD_NAME)' },
    ...(secretName ? [{ name: 'CLIPPER_REPLICA_SECRET', valueFrom: { secretKeyRef: { name: secretName, key: SECRET_KEY } } }] : []),
  ];
  const resources: NonNullable<IContainer['resources']> = {};
  if (limits.cpus > 0 || limits.memoryMb > 0) {
    const q: Record<string, string> = {};
    if (limits.cpus > 0) q.cpu = quantityCpu(limits.cpus);
    if (limits.memoryMb > 0) q.memory = `${limits.memoryMb}Mi`;
    // requests = limits: the scheduler places a replica only where its limit fits (Guaranteed QoS when both are set).
    resources.requests = { ...q };
    resources.limits = { ...q };
  }
  // A plain v3 container (runtime `image`) knows nothing of the ready file: no probes, the RPC timeouts watch it.
  const probes = v.runtime === 'image' ? {} : {
    readinessProbe: { exec: { command: ['/bin/sh', '-c', READINESS_SCRIPT] }, periodSeconds: 2, failureThreshold: 1, timeoutSeconds: 2 },
    livenessProbe: { exec: { command: ['/bin/sh', '-c', LIVENESS_SCRIPT] }, initialDelaySeconds: 10, periodSeconds: 10, failureThreshold: 3, timeoutSeconds: 2 },
    startupProbe: { exec: { command: ['/bin/sh', '-c', READINESS_SCRIPT] }, periodSeconds: 2, failureThreshold: Math.max(1, Math.ceil(s.startTimeoutMs / 2000)), timeoutSeconds: 2 },
  };
  const container: IContainer = {
    name: 'replica',
    image: run.image,
    imagePullPolicy: s.imagePullPolicy,
    ...(run.command ? { command: run.command } : {}),
    env,
    resources,
    ...probes,
    ...(modelPath ? { workingDir: MODEL_DIR } : {}),
    volumeMounts: [
      { name: 'run', mountPath: RUN_DIR },
      ...(packed ? [{ name: 'model', mountPath: MODEL_DIR, readOnly: true }] : []),
    ],
  };
  const volumes: IVolume[] = [{ name: 'run', emptyDir: { medium: 'Memory', sizeLimit: '1Mi' } }];
  const initContainers: IContainer[] = [];
  if (packed) {
    volumes.push({ name: 'model', emptyDir: {} }, partsVolume(v, packed));
    initContainers.push({
      name: 'artifact',
      image: s.image,
      imagePullPolicy: s.imagePullPolicy,
      command: ['node', '-e', REBUILD_SCRIPT],
      volumeMounts: [{ name: 'artifact-parts', mountPath: PARTS_DIR, readOnly: true }, { name: 'model', mountPath: MODEL_DIR }],
      resources: { requests: { cpu: '50m', memory: '64Mi' }, limits: { memory: '256Mi' } },
    });
  }
  const podSpec: IPodSpec = {
    containers: [container],
    ...(initContainers.length ? { initContainers } : {}),
    volumes,
    restartPolicy: 'Always',
    terminationGracePeriodSeconds: s.terminationGraceSeconds,
    enableServiceLinks: false,
    automountServiceAccountToken: false,
  };
  const annotations = {
    [ANNOTATION.model]: v.name, [ANNOTATION.version]: v.version, [ANNOTATION.artifactHash]: v.artifactHash,
    [ANNOTATION.cpus]: String(limits.cpus), [ANNOTATION.memoryMb]: String(limits.memoryMb),
  };
  const template = { metadata: { labels, annotations: { ...annotations, ...(secretValue ? { 'clipper.io/secret-hash': sha(secretValue).slice(0, 16) } : {}) } }, spec: podSpec };
  const specHash = sha(JSON.stringify(template)).slice(0, 16);
  const deployment: IDeployment = {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name, namespace: s.namespace, labels, annotations: { ...annotations, [ANNOTATION.specHash]: specHash } },
    spec: {
      replicas,
      selector: { matchLabels: versionSelector(v.name, v.version) },
      // Surge one, take none away: a changed version (limits, artifact) keeps serving while it rolls.
      strategy: { type: 'RollingUpdate', rollingUpdate: { maxSurge: 1, maxUnavailable: 0 } },
      revisionHistoryLimit: 2,
      template,
    },
  };
  const service: IService = {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name, namespace: s.namespace, labels, annotations },
    // Headless: replicas dial the frontend, nothing dials them; the Service names the version's pods in DNS.
    spec: { clusterIP: 'None', selector: versionSelector(v.name, v.version), publishNotReadyAddresses: false },
  };
  const secret: ISecret | undefined = secretName && secretValue ? {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name: secretName, namespace: s.namespace, labels, annotations },
    type: 'Opaque',
    data: { [SECRET_KEY]: Buffer.from(secretValue).toString('base64') },
  } : undefined;
  return { deployment, service, secret, artifactConfigMaps: packed ? artifactConfigMapNames(v, packed.keys.length) : [] };
}

export function specHashOf(d: { metadata?: { annotations?: Record<string, string> } }): string | undefined {
  return d.metadata?.annotations?.[ANNOTATION.specHash];
}

function sha(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

