/**
 * All contact with the Kubernetes API server, through @kubernetes/client-node: the few calls the
 * backend makes, each object checked against the schemas (validate.ts) before it is sent.
 * Errors come back as `KubeError` with the HTTP status, so callers test `status === 404` etc.
 */
import {
  AppsV1Api, CoreV1Api, KubeConfig, PatchStrategy, Watch, setHeaderOptions,
  type V1ConfigMap, type V1Deployment, type V1Pod, type V1Scale, type V1Secret, type V1Service,
} from '@kubernetes/client-node';
import { validateObject } from './validate.ts';

/** Where the cluster's credentials come from. */
export type KubeConfigSource =
  | { kind: 'in-cluster' }
  | { kind: 'default' }
  | { kind: 'file'; path: string; context?: string }
  /** A URL with no credentials (a `kubectl proxy`, or the test API server); plain http needs no TLS check. */
  | { kind: 'url'; server: string; insecure?: boolean };

export function loadKubeConfig(source: KubeConfigSource): KubeConfig {
  const kc = new KubeConfig();
  switch (source.kind) {
    case 'in-cluster': kc.loadFromCluster(); break;
    case 'default': kc.loadFromDefault(); break;
    case 'file':
      kc.loadFromFile(source.path);
      if (source.context) kc.setCurrentContext(source.context);
      break;
    case 'url':
      kc.loadFromOptions({
        clusters: [{ name: 'c', server: source.server, skipTLSVerify: source.insecure ?? source.server.startsWith('http:') }],
        users: [{ name: 'u' }],
        contexts: [{ name: 'ctx', cluster: 'c', user: 'u' }],
        currentContext: 'ctx',
      });
      break;
  }
  return kc;
}

export class KubeError extends Error {
  constructor(readonly status: number, message: string, readonly reason?: string) { super(message); }
}

export function isStatus(e: unknown, ...codes: number[]): boolean {
  return e instanceof KubeError && codes.includes(e.status);
}

/** Turns client-node's ApiException (code, body) into a KubeError with the server's message. */
function wrap(what: string): (e: unknown) => never {
  return (e: unknown) => {
    const x = e as { code?: number; body?: unknown; message?: string };
    if (typeof x?.code === 'number') {
      let body = x.body as { message?: string; reason?: string } | string | undefined;
      if (typeof body === 'string') { try { body = JSON.parse(body) as { message?: string }; } catch { /* text */ } }
      const msg = typeof body === 'object' && body?.message ? body.message : String(body ?? x.message);
      throw new KubeError(x.code, `${what}: ${x.code} ${msg}`, typeof body === 'object' ? body?.reason : undefined);
    }
    throw new KubeError(0, `${what}: ${x?.message ?? String(e)}`);
  };
}

/** An object as built here (kubernetes-models' interfaces), sent as client-node's type of its kind. */
export interface Body { apiVersion?: string; kind?: string; metadata?: { name?: string; resourceVersion?: string } }

const mergePatch = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);

export type WatchEvent<T> = { type: 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR'; object: T };

function checked<T>(obj: Body): T {
  validateObject(obj);
  return obj as T;
}

export class KubeApi {
  readonly apps: AppsV1Api;
  readonly core: CoreV1Api;
  private readonly watcher: Watch;

  constructor(readonly config: KubeConfig, readonly namespace: string) {
    this.apps = config.makeApiClient(AppsV1Api);
    this.core = config.makeApiClient(CoreV1Api);
    this.watcher = new Watch(config);
  }

  // ---------- deployments ----------
  listDeployments(labelSelector: string): Promise<{ items: V1Deployment[]; resourceVersion: string }> {
    return this.apps.listNamespacedDeployment({ namespace: this.namespace, labelSelector })
      .then((l) => ({ items: l.items, resourceVersion: l.metadata?.resourceVersion ?? '' }), wrap('list deployments'));
  }
  readDeployment(name: string): Promise<V1Deployment> {
    return this.apps.readNamespacedDeployment({ name, namespace: this.namespace }).catch(wrap(`read deployment ${name}`));
  }
  createDeployment(obj: Body): Promise<V1Deployment> {
    const body = checked<V1Deployment>(obj);
    return this.apps.createNamespacedDeployment({ namespace: this.namespace, body }).catch(wrap(`create deployment ${body.metadata?.name}`));
  }
  replaceDeployment(obj: Body): Promise<V1Deployment> {
    const body = checked<V1Deployment>(obj);
    const name = body.metadata!.name!;
    return this.apps.replaceNamespacedDeployment({ name, namespace: this.namespace, body }).catch(wrap(`replace deployment ${name}`));
  }
  deleteDeployment(name: string): Promise<void> {
    return this.apps.deleteNamespacedDeployment({ name, namespace: this.namespace, propagationPolicy: 'Background' })
      .then(() => undefined, wrap(`delete deployment ${name}`));
  }
  readScale(name: string): Promise<V1Scale> {
    return this.apps.readNamespacedDeploymentScale({ name, namespace: this.namespace }).catch(wrap(`read the scale of ${name}`));
  }
  /** The scale subresource, merge-patched: only `spec.replicas` changes, nothing of the template. */
  patchScale(name: string, replicas: number): Promise<V1Scale> {
    const body = { spec: { replicas } };
    validateObject({ apiVersion: 'autoscaling/v1', kind: 'Scale', metadata: { name, namespace: this.namespace }, ...body });
    return this.apps.patchNamespacedDeploymentScale({ name, namespace: this.namespace, body }, mergePatch).catch(wrap(`scale ${name}`));
  }

  // ---------- services, secrets, configmaps ----------
  async applyService(obj: Body): Promise<void> {
    const body = checked<V1Service>(obj);
    const name = body.metadata!.name!;
    try {
      await this.core.createNamespacedService({ namespace: this.namespace, body });
    } catch (e) {
      if ((e as { code?: number }).code !== 409) wrap(`create service ${name}`)(e);
    }
  }
  deleteService(name: string): Promise<void> {
    return this.core.deleteNamespacedService({ name, namespace: this.namespace }).then(() => undefined, wrap(`delete service ${name}`));
  }
  /** Creates the Secret, or replaces it when it differs (a frontend with new RPC keys). */
  async applySecret(obj: Body): Promise<void> {
    const body = checked<V1Secret>(obj);
    const name = body.metadata!.name!;
    try {
      await this.core.createNamespacedSecret({ namespace: this.namespace, body });
      return;
    } catch (e) {
      if ((e as { code?: number }).code !== 409) wrap(`create secret ${name}`)(e);
    }
    const cur = await this.core.readNamespacedSecret({ name, namespace: this.namespace }).catch(wrap(`read secret ${name}`));
    if (JSON.stringify(cur.data) === JSON.stringify(body.data)) return;
    await this.core.replaceNamespacedSecret({ name, namespace: this.namespace, body: { ...body, metadata: { ...body.metadata, resourceVersion: cur.metadata?.resourceVersion } } })
      .catch(wrap(`replace secret ${name}`));
  }
  deleteSecret(name: string): Promise<void> {
    return this.core.deleteNamespacedSecret({ name, namespace: this.namespace }).then(() => undefined, wrap(`delete secret ${name}`));
  }
  listConfigMaps(labelSelector: string): Promise<V1ConfigMap[]> {
    return this.core.listNamespacedConfigMap({ namespace: this.namespace, labelSelector }).then((l) => l.items, wrap('list configmaps'));
  }
  async createConfigMap(obj: Body): Promise<void> {
    const body = checked<V1ConfigMap>(obj);
    await this.core.createNamespacedConfigMap({ namespace: this.namespace, body }).catch((e: unknown) => {
      if ((e as { code?: number }).code !== 409) wrap(`create configmap ${body.metadata?.name}`)(e);
    });
  }
  deleteConfigMap(name: string): Promise<void> {
    return this.core.deleteNamespacedConfigMap({ name, namespace: this.namespace }).then(() => undefined, wrap(`delete configmap ${name}`));
  }

  // ---------- pods ----------
  listPods(labelSelector: string): Promise<{ items: V1Pod[]; resourceVersion: string }> {
    return this.core.listNamespacedPod({ namespace: this.namespace, labelSelector })
      .then((l) => ({ items: l.items, resourceVersion: l.metadata?.resourceVersion ?? '' }), wrap('list pods'));
  }
  deletePod(name: string, graceSeconds?: number): Promise<void> {
    return this.core.deleteNamespacedPod({ name, namespace: this.namespace, gracePeriodSeconds: graceSeconds })
      .then(() => undefined, wrap(`delete pod ${name}`));
  }
  annotatePod(name: string, annotations: Record<string, string>): Promise<void> {
    return this.core.patchNamespacedPod({ name, namespace: this.namespace, body: { metadata: { annotations } } }, mergePatch)
      .then(() => undefined, wrap(`annotate pod ${name}`));
  }
  podLog(name: string, tailLines: number, previous = false): Promise<string> {
    return this.core.readNamespacedPodLog({ name, namespace: this.namespace, container: 'replica', tailLines, previous }).catch(wrap(`logs of pod ${name}`));
  }

  // ---------- watch ----------
  /** Streams events of `path` (e.g. /api/v1/namespaces/ns/pods) from `resourceVersion`; `done` once when it ends. */
  watch<T>(path: string, params: { labelSelector: string; resourceVersion: string }, onEvent: (e: WatchEvent<T>) => void, done: (err: unknown) => void): Promise<AbortController> {
    return this.watcher.watch(path, { ...params, allowWatchBookmarks: true }, (type, object) => onEvent({ type: type as WatchEvent<T>['type'], object: object as T }), done);
  }
}
