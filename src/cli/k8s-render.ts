/**
 * `clipper k8s render`: the manifests of a whole Clipper on a Kubernetes cluster, for
 * `kubectl apply -f`: a Namespace; Redis (StatefulSet with a PVC template, AOF on, headless
 * Service); the frontends (Deployment + Service: query 1337, admin 1338, RPC 7000) started with
 * `--backend kubernetes`; their ServiceAccount, Role and RoleBinding (what the Kubernetes backend
 * calls); a Secret with the admin token. Every object is checked against the Kubernetes schemas
 * (src/manager/kubernetes/validate.ts) before it is rendered. Output: a JSON `List` (kubectl takes
 * it as is) or YAML documents.
 */
import { randomBytes } from 'node:crypto';
import { IMAGE_APP_DIR, TS_LOADER_IN_IMAGE, runtimeImageTag } from '../manager/docker/image-build.ts';
import { validateObject } from '../manager/kubernetes/validate.ts';

export interface RenderOptions {
  /** Default `clipper`. */
  namespace?: string;
  /** Image of the frontends: the runtime image has the whole app at /app. Default clipper-runtime:<version>. */
  image?: string;
  /** Image of the model replicas (--docker-image / the backend's image). Default: `image`. */
  runtimeImage?: string;
  imagePullPolicy?: 'Always' | 'IfNotPresent' | 'Never';
  /** Frontend pods. Default 1. */
  frontendReplicas?: number;
  /** Service type of the frontends. Default ClusterIP. */
  serviceType?: 'ClusterIP' | 'NodePort' | 'LoadBalancer';
  redisImage?: string;
  /** The Redis volume's size. Default 1Gi. */
  redisStorage?: string;
  storageClassName?: string;
  /** The admin API token (stored in a Secret); default a random one. */
  adminToken?: string;
  /** More `clipper start` arguments. */
  extraArgs?: string[];
  format?: 'json' | 'yaml';
}

export const FRONTEND = 'clipper-frontend';
export const REDIS = 'clipper-redis';
const PORTS = { query: 1337, admin: 1338, rpc: 7000 } as const;

type K8sObject = { apiVersion: string; kind: string; metadata: { name: string; namespace?: string; labels?: Record<string, string> }; [k: string]: unknown };

/** The objects, validated, in the order kubectl should create them. */
export function manifestObjects(o: RenderOptions = {}): K8sObject[] {
  const ns = o.namespace ?? 'clipper';
  const image = o.image ?? runtimeImageTag();
  const pull = o.imagePullPolicy ?? 'IfNotPresent';
  const labels = (component: string) => ({
    'app.kubernetes.io/name': component, 'app.kubernetes.io/part-of': 'clipper', 'app.kubernetes.io/managed-by': 'clipper-render',
  });
  const meta = (name: string, component: string) => ({ name, namespace: ns, labels: labels(component) });
  const select = (component: string) => ({ 'app.kubernetes.io/name': component, 'app.kubernetes.io/part-of': 'clipper' });
  const args = [
    'start', '--host', '0.0.0.0', '--data-dir', '/data',
    '--store', `redis://${REDIS}:6379/0`,
    '--backend', 'kubernetes', '--kube-namespace', ns,
    ...(o.runtimeImage ? ['--docker-image', o.runtimeImage] : ['--docker-image', image]),
    '--advertise-address', '$(POD_IP)',
    '--admin-token-file', '/etc/clipper/admin-token',
    '--query-port', String(PORTS.query), '--admin-port', String(PORTS.admin), '--rpc-port', String(PORTS.rpc),
    ...(o.extraArgs ?? []),
  ];
  const objects: K8sObject[] = [
    { apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns, labels: { 'app.kubernetes.io/part-of': 'clipper' } } },
    { apiVersion: 'v1', kind: 'ServiceAccount', metadata: meta(FRONTEND, FRONTEND), automountServiceAccountToken: true },
    {
      apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'Role', metadata: meta(FRONTEND, FRONTEND),
      rules: [
        { apiGroups: ['apps'], resources: ['deployments'], verbs: ['get', 'list', 'watch', 'create', 'update', 'patch', 'delete'] },
        { apiGroups: ['apps'], resources: ['deployments/scale'], verbs: ['get', 'update', 'patch'] },
        { apiGroups: [''], resources: ['services', 'configmaps', 'secrets'], verbs: ['get', 'list', 'watch', 'create', 'update', 'patch', 'delete'] },
        { apiGroups: [''], resources: ['pods'], verbs: ['get', 'list', 'watch', 'patch', 'delete'] },
        { apiGroups: [''], resources: ['pods/log'], verbs: ['get'] },
        { apiGroups: ['metrics.k8s.io'], resources: ['pods'], verbs: ['get', 'list'] },
      ],
    },
    {
      apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'RoleBinding', metadata: meta(FRONTEND, FRONTEND),
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: FRONTEND },
      subjects: [{ kind: 'ServiceAccount', name: FRONTEND, namespace: ns }],
    },
    {
      apiVersion: 'v1', kind: 'Secret', metadata: meta('clipper-admin', FRONTEND), type: 'Opaque',
      data: { 'admin-token': Buffer.from(o.adminToken ?? randomBytes(24).toString('hex')).toString('base64') },
    },
    {
      apiVersion: 'v1', kind: 'Service', metadata: meta(REDIS, REDIS),
      spec: { clusterIP: 'None', selector: select(REDIS), ports: [{ name: 'redis', port: 6379, targetPort: 6379 }] },
    },
    {
      apiVersion: 'apps/v1', kind: 'StatefulSet', metadata: meta(REDIS, REDIS),
      spec: {
        serviceName: REDIS, replicas: 1, selector: { matchLabels: select(REDIS) },
        template: {
          metadata: { labels: labels(REDIS) },
          spec: {
            containers: [{
              name: 'redis', image: o.redisImage ?? 'redis:7-alpine', imagePullPolicy: 'IfNotPresent',
              args: ['redis-server', '--appendonly', 'yes', '--appendfsync', 'everysec', '--dir', '/data'],
              ports: [{ name: 'redis', containerPort: 6379 }],
              readinessProbe: { exec: { command: ['redis-cli', 'ping'] }, periodSeconds: 5 },
              livenessProbe: { tcpSocket: { port: 6379 }, initialDelaySeconds: 10, periodSeconds: 10 },
              resources: { requests: { cpu: '100m', memory: '128Mi' } },
              volumeMounts: [{ name: 'data', mountPath: '/data' }],
            }],
          },
        },
        volumeClaimTemplates: [{
          metadata: { name: 'data' },
          spec: {
            accessModes: ['ReadWriteOnce'], resources: { requests: { storage: o.redisStorage ?? '1Gi' } },
            ...(o.storageClassName ? { storageClassName: o.storageClassName } : {}),
          },
        }],
      },
    },
    {
      apiVersion: 'v1', kind: 'Service', metadata: meta(FRONTEND, FRONTEND),
      spec: {
        type: o.serviceType ?? 'ClusterIP', selector: select(FRONTEND),
        ports: Object.entries(PORTS).map(([name, port]) => ({ name, port, targetPort: port, protocol: 'TCP' })),
      },
    },
    {
      apiVersion: 'apps/v1', kind: 'Deployment', metadata: meta(FRONTEND, FRONTEND),
      spec: {
        replicas: o.frontendReplicas ?? 1, selector: { matchLabels: select(FRONTEND) },
        template: {
          metadata: { labels: labels(FRONTEND) },
          spec: {
            serviceAccountName: FRONTEND,
            enableServiceLinks: false,
            terminationGracePeriodSeconds: 30,
            containers: [{
              name: 'frontend', image, imagePullPolicy: pull,
              command: ['node', '--import', TS_LOADER_IN_IMAGE, `${IMAGE_APP_DIR}/src/cli/main.ts`],
              args,
              env: [
                { name: 'POD_IP', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } },
                { name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
              ],
              ports: Object.entries(PORTS).map(([name, port]) => ({ name, containerPort: port, protocol: 'TCP' })),
              readinessProbe: { httpGet: { path: '/metrics', port: PORTS.query }, periodSeconds: 5 },
              livenessProbe: { tcpSocket: { port: PORTS.admin }, initialDelaySeconds: 20, periodSeconds: 10 },
              resources: { requests: { cpu: '250m', memory: '256Mi' } },
              volumeMounts: [{ name: 'data', mountPath: '/data' }, { name: 'admin', mountPath: '/etc/clipper', readOnly: true }],
            }],
            volumes: [
              { name: 'data', emptyDir: {} },
              { name: 'admin', secret: { secretName: 'clipper-admin', defaultMode: 0o400 } },
            ],
          },
        },
      },
    },
  ];
  for (const obj of objects) validateObject(obj);
  return objects;
}

export function renderManifests(o: RenderOptions = {}): string {
  const objects = manifestObjects(o);
  if ((o.format ?? 'json') === 'json') return `${JSON.stringify({ apiVersion: 'v1', kind: 'List', items: objects }, null, 2)}\n`;
  return objects.map((obj) => `---\n${toYaml(obj, 0)}`).join('');
}

/** A small YAML emitter for JSON data: block mappings and sequences, every string double-quoted (JSON's escapes are YAML's). */
export function toYaml(value: unknown, indent: number): string {
  const pad = ' '.repeat(indent);
  const scalar = (v: unknown) => (typeof v === 'string' ? JSON.stringify(v) : v === null || v === undefined ? 'null' : String(v));
  const isEmpty = (v: unknown) => (Array.isArray(v) && !v.length) || (v !== null && typeof v === 'object' && !Array.isArray(v) && !Object.keys(v).length);
  if (Array.isArray(value)) {
    return value.map((item) => {
      if (item !== null && typeof item === 'object' && !isEmpty(item)) {
        const body = toYaml(item, indent + 2);
        return `${pad}- ${body.slice(indent + 2)}`;
      }
      return `${pad}- ${isEmpty(item) ? (Array.isArray(item) ? '[]' : '{}') : scalar(item)}\n`;
    }).join('');
  }
  if (value !== null && typeof value === 'object') {
    return Object.entries(value as Record<string, unknown>).map(([k, v]) => {
      const key = /^[A-Za-z_][A-Za-z0-9_.\/-]*$/.test(k) ? k : JSON.stringify(k);
      if (v !== null && typeof v === 'object' && !isEmpty(v)) return `${pad}${key}:\n${toYaml(v, Array.isArray(v) ? indent : indent + 2)}`;
      return `${pad}${key}: ${isEmpty(v) ? (Array.isArray(v) ? '[]' : '{}') : scalar(v)}\n`;
    }).join('');
  }
  return `${pad}${scalar(value)}\n`;
}
