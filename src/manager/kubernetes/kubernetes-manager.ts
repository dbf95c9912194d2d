/**
 * The resource manager on Kubernetes: one Deployment (+ headless Service, Secret, artifact
 * ConfigMaps) per model version; a replica is a pod, its id `pod/<name>`. Kubernetes restarts
 * crashed containers, replaces deleted pods and enforces limits; this manager only makes the
 * objects say what the ReplicaController wants and reports what the pods do, from a list+watch
 * cache (reflector.ts) — no polling.
 *
 * apply(model, targets), per model one at a time (a newer call's targets replace a waiting one's):
 *   1. every wanted version's objects are created, or updated when what its pods run with changed
 *      (the spec hash); replica counts go up through the Deployment's scale subresource;
 *   2. if some version goes up while another goes down (a version switch), wait until the ones
 *      going up have their replicas ready (status.readyReplicas or registered pods), at most
 *      `rolloutTimeoutMs`;
 *   3. then the others go down: the pods to remove are chosen (not ready first, newest first),
 *      taken out of rotation ('replica-stopping'), given a low pod-deletion-cost so the ReplicaSet
 *      controller removes those, and the scale is patched; versions no longer wanted are deleted.
 */
import { EventEmitter } from 'node:events';
import { Metrics, type KubeConfig, type V1ConfigMap, type V1Deployment, type V1Pod } from '@kubernetes/client-node';
import { errorMessage, ServingError } from '../../errors.ts';
import type { MachineUsage, ReplicaUsage } from '../../measure/usage.ts';
import type { ModelVersion } from '../../registry/types.ts';
import type { RpcEndpoint } from '../../rpc/replica-auth.ts';
import type { ContainerManager, ContainerManagerEvents, ReplicaExitCause, ReplicaInfo, VersionTarget } from '../container-manager.ts';
import { runtimeImageTag } from '../docker/image-build.ts';
import { MANIFEST_KEY, packArtifact, type ArtifactLayout } from './artifact.ts';
import { KubeApi, isStatus, loadKubeConfig, type KubeConfigSource } from './kube-api.ts';
import { ANNOTATION, LABEL, MANAGED_SELECTOR, deploymentName, podNameOf, podReplicaId, selectorString } from './names.ts';
import { artifactConfigMaps, specHashOf, versionObjects, type ObjectSettings, type VersionObjects } from './objects.ts';
import { lastTermination, parseQuantity, podRestarts, podStartedAt, podState, podVersion } from './pod-state.ts';
import { Reflector } from './reflector.ts';

export interface KubernetesManagerOptions {
  /** A loaded KubeConfig, or where to load one from ({ kind: 'in-cluster' } inside a pod). */
  kubeConfig: KubeConfig | KubeConfigSource;
  namespace: string;
  /** The runtime image; default clipper-runtime:<package.json version>. */
  image?: string;
  imagePullPolicy?: ObjectSettings['imagePullPolicy'];
  /** The RPC server's endpoint (RpcServer.endpoint()): its auth gives the replica secret and the curve key. */
  rpc: RpcEndpoint;
  /** Where pods reach the frontend's RPC port; default host `clipper-frontend.<namespace>.svc`, the endpoint's port. */
  replicaRpc?: { host: string; port?: number };
  stopGraceMs: number;
  /** A replica not ready this long after its container started is restarted by the kubelet (startup probe). */
  startTimeoutMs: number;
  /** How long a version switch waits for the new version before scaling the old one down anyway. Default 120 s. */
  rolloutTimeoutMs?: number;
  /** Largest artifact shipped in ConfigMaps. Default 32 MiB. */
  maxArtifactBytes?: number;
  log?: (msg: string) => void;
}

interface Queue { running: Promise<void> | undefined; next: VersionTarget[] | undefined; waiters: Array<{ resolve: () => void; reject: (e: unknown) => void }> }

export class KubernetesManager extends EventEmitter<ContainerManagerEvents> implements ContainerManager {
  readonly backend = 'kubernetes';
  readonly api: KubeApi;
  private readonly settings: ObjectSettings;
  private readonly deployments: Reflector<V1Deployment>;
  private readonly pods: Reflector<V1Pod>;
  /** Pods that registered over RPC since their container last started. */
  private readonly registered = new Set<string>();
  private readonly unresponsive = new Map<string, string>();
  /** Pods we are ending, and why (cause 'stopped' when they go). */
  private readonly ending = new Map<string, string>();
  /** Deployments we scaled down or deleted: their pods that terminate go for this reason. */
  private readonly intent = new Map<string, string>();
  private readonly lastExit = new Map<string, { reason: string; at: number }>();
  private readonly layouts = new Map<string, ArtifactLayout>();
  private readonly queues = new Map<string, Queue>();
  private readonly waiters = new Set<() => void>();
  private readonly metrics: Metrics;
  private metricsDownUntil = 0;
  private closed = false;

  constructor(private readonly opts: KubernetesManagerOptions) {
    super();
    const kc = 'kind' in opts.kubeConfig && typeof opts.kubeConfig.kind === 'string' ? loadKubeConfig(opts.kubeConfig as KubeConfigSource) : (opts.kubeConfig as KubeConfig);
    this.api = new KubeApi(kc, opts.namespace);
    this.metrics = new Metrics(kc);
    this.settings = {
      namespace: opts.namespace,
      image: opts.image ?? runtimeImageTag(),
      imagePullPolicy: opts.imagePullPolicy ?? 'IfNotPresent',
      rpc: { ...opts.rpc, host: opts.replicaRpc?.host ?? `clipper-frontend.${opts.namespace}.svc`, port: opts.replicaRpc?.port ?? opts.rpc.port },
      terminationGraceSeconds: Math.max(1, Math.ceil(opts.stopGraceMs / 1000)),
      startTimeoutMs: opts.startTimeoutMs,
    };
    const ns = encodeURIComponent(opts.namespace);
    const log = (m: string) => this.log(m);
    this.deployments = new Reflector<V1Deployment>({
      api: this.api, path: `/apis/apps/v1/namespaces/${ns}/deployments`, labelSelector: MANAGED_SELECTOR, log,
      list: () => this.api.listDeployments(MANAGED_SELECTOR),
      onChange: () => this.notify(),
    });
    this.pods = new Reflector<V1Pod>({
      api: this.api, path: `/api/v1/namespaces/${ns}/pods`, labelSelector: MANAGED_SELECTOR, log,
      list: () => this.api.listPods(MANAGED_SELECTOR),
      onChange: (type, pod, prev) => this.onPod(type, pod, prev),
    });
  }

  /** Times the watches listed their collection (a re-list follows a 410 Gone). */
  get relists(): { deployments: number; pods: number } {
    return { deployments: this.deployments.lists, pods: this.pods.lists };
  }

  async start(targets: Map<string, VersionTarget[]>): Promise<void> {
    await Promise.all([this.deployments.start(), this.pods.start()]);
    // Versions of models no longer in the registry (deleted while no frontend ran).
    for (const d of this.deployments.items.values()) {
      const model = d.metadata?.annotations?.[ANNOTATION.model];
      if (model !== undefined && !targets.has(model)) await this.apply(model, []);
    }
    await Promise.all([...targets].map(([model, t]) => this.apply(model, t)));
  }

  apply(model: string, targets: VersionTarget[]): Promise<void> {
    if (this.closed) return Promise.resolve();
    let q = this.queues.get(model);
    if (!q) this.queues.set(model, (q = { running: undefined, next: undefined, waiters: [] }));
    q.next = targets;
    const done = new Promise<void>((resolve, reject) => q!.waiters.push({ resolve, reject }));
    if (!q.running) q.running = this.drain(model, q);
    return done;
  }

  markReady(replicaId: string | undefined, name: string, version: string): string | undefined {
    let pod: string | undefined;
    if (replicaId !== undefined) {
      pod = podNameOf(replicaId);
      const known = pod !== undefined ? this.pods.items.get(pod) : undefined;
      // Not in the cache yet (the watch lags the pod's own start): trust the version-wide secret RPC checked.
      if (pod === undefined || (known && !sameVersion(known, name, version))) return undefined;
    } else {
      // A plain v3 container sends no id: the longest-starting unregistered pod of its version.
      pod = this.podsOf(name, version).filter((p) => !this.registered.has(p.metadata!.name!) && !p.metadata?.deletionTimestamp)
        .sort((a, b) => (podStartedAt(a) ?? 0) - (podStartedAt(b) ?? 0))[0]?.metadata?.name;
      if (pod === undefined) return undefined;
    }
    this.registered.add(pod);
    this.notify();
    return podReplicaId(pod);
  }

  markUnresponsive(replicaId: string, reason: string): void {
    const name = podNameOf(replicaId);
    const pod = name !== undefined ? this.pods.items.get(name) : undefined;
    if (!pod || pod.metadata?.deletionTimestamp || this.unresponsive.has(name!)) return;
    this.log(`replica ${replicaId} is unresponsive (${reason}); deleting its pod (the Deployment replaces it)`);
    this.unresponsive.set(name!, reason);
    this.ending.set(name!, `unresponsive: ${reason}`);
    this.registered.delete(name!);
    this.emit('replica-stopping', replicaId);
    this.notify();
    this.api.deletePod(name!, this.settings.terminationGraceSeconds).catch((e: unknown) => {
      if (!isStatus(e, 404)) this.log(`could not delete pod ${name}: ${errorMessage(e)}`);
    });
  }

  isStarting(name: string, version: string): boolean {
    const pods = this.podsOf(name, version);
    if (pods.some((p) => ['STARTING', 'BACKOFF', 'UNRESPONSIVE'].includes(this.state(p)))) return true;
    const d = this.deployments.items.get(deploymentName(name, version));
    return !!d && (d.spec?.replicas ?? 0) > pods.filter((p) => !p.metadata?.deletionTimestamp).length;
  }

  waitReady(name: string, version: string, count: number, timeoutMs: number): Promise<boolean> {
    return this.waitUntil(() => this.readyCount(name, version) >= count, timeoutMs);
  }

  waitStopped(name: string, version: string, keep: number, timeoutMs: number): Promise<boolean> {
    return this.waitUntil(() => this.podsOf(name, version).length <= keep, timeoutMs);
  }

  replicas(): ReplicaInfo[] {
    return [...this.pods.items.values()].flatMap((p) => {
      const info = this.info(p);
      return info ? [info] : [];
    }).sort((a, b) => a.replicaId.localeCompare(b.replicaId));
  }

  async logs(name: string, version: string, replicaId: string | undefined, tail: number): Promise<Array<{ replica_id: string; lines: string[] }>> {
    const pods = this.podsOf(name, version);
    const chosen = replicaId === undefined ? pods : pods.filter((p) => podReplicaId(p.metadata!.name!) === replicaId);
    if (replicaId !== undefined && !chosen.length) {
      throw new ServingError('REPLICA_NOT_FOUND', `model ${name}:${version} has no pod ${JSON.stringify(replicaId)} (logs of deleted pods are with the cluster's logging, not here)`);
    }
    return Promise.all(chosen.map(async (p) => {
      const text = await this.api.podLog(p.metadata!.name!, tail).catch((e: unknown) => `(no logs: ${errorMessage(e)})`);
      const lines = text.split('\n');
      if (lines[lines.length - 1] === '') lines.pop();
      return { replica_id: podReplicaId(p.metadata!.name!), lines: lines.slice(-tail) };
    }));
  }

  /** From the metrics API (metrics-server) when the cluster has it; empty otherwise (checked again each minute). */
  async usage(): Promise<ReplicaUsage[]> {
    if (Date.now() < this.metricsDownUntil) return [];
    try {
      const list = await this.metrics.getPodMetrics(this.opts.namespace);
      return list.items.filter((m) => this.pods.items.has(m.metadata.name)).map((m) => {
        const c = m.containers.find((x) => x.name === 'replica') ?? m.containers[0];
        return { replicaId: podReplicaId(m.metadata.name), cpuCores: parseQuantity(c?.usage.cpu), rssBytes: parseQuantity(c?.usage.memory) };
      }).sort((a, b) => a.replicaId.localeCompare(b.replicaId));
    } catch {
      this.metricsDownUntil = Date.now() + 60_000;
      return [];
    }
  }

  /** Empty: nodes are cluster-scoped (the frontend's Role is namespaced), and the cluster's scheduler, not the autoscaler, fits pods to them. */
  async machines(): Promise<MachineUsage[]> {
    return [];
  }

  /** Stops watching. Deployments stay: a frontend restarting (or one of several going) must not take the replicas down. */
  async close(): Promise<void> {
    this.closed = true;
    await Promise.allSettled([...this.queues.values()].map((q) => q.running));
    this.deployments.close();
    this.pods.close();
    this.notify();
  }

  // ---------- reconciling ----------

  private async drain(model: string, q: Queue): Promise<void> {
    while (q.next && !this.closed) {
      const targets = q.next;
      const waiters = q.waiters.splice(0);
      q.next = undefined;
      try {
        await this.reconcile(model, targets);
        for (const w of waiters) w.resolve();
      } catch (e) {
        this.log(`apply ${model}: ${errorMessage(e)}`);
        for (const w of waiters) w.reject(e);
      }
    }
    for (const w of q.waiters.splice(0)) w.resolve();
    q.running = undefined;
  }

  private async reconcile(model: string, targets: VersionTarget[]): Promise<void> {
    const wanted = new Map(targets.filter((t) => t.version.name === model).map((t) => [deploymentName(model, t.version.version), t]));
    const ups: Array<{ v: ModelVersion; replicas: number }> = [];
    const downs: Array<{ name: string; replicas: number; reason: string }> = [];
    for (const [name, { version: v, replicas }] of wanted) {
      const layout = v.artifactPath || v.artifactHash ? await this.ensureArtifact(name, v) : undefined;
      const objs = versionObjects(v, this.settings, replicas, layout);
      const cur = this.deployments.items.get(name);
      if (!cur) {
        if (objs.secret) await this.api.applySecret(objs.secret);
        await this.api.applyService(objs.service);
        this.log(`kubernetes: creating deployment ${name} (${model}:${v.version}) with ${replicas} replica(s)`);
        const made = await this.api.createDeployment(objs.deployment).catch(async (e: unknown) => {
          if (!isStatus(e, 409)) throw e;
          return this.api.readDeployment(name); // made meanwhile by another frontend
        });
        this.deployments.items.set(name, made); // the watch confirms it
        if (replicas > 0) ups.push({ v, replicas });
        continue;
      }
      const have = cur.spec?.replicas ?? 0;
      if (specHashOf(cur) !== objs.deployment.metadata?.annotations?.[ANNOTATION.specHash]) {
        this.log(`kubernetes: updating deployment ${name}: what its pods run with changed`);
        if (objs.secret) await this.api.applySecret(objs.secret);
        await this.api.applyService(objs.service);
        this.deployments.items.set(name, await this.replace(objs.deployment, cur, Math.max(have, replicas)));
      } else if (have < replicas) {
        await this.scale(name, replicas);
      }
      if (have < replicas) ups.push({ v, replicas });
      if (have > replicas) downs.push({ name, replicas, reason: 'scaled down' });
      void this.collectArtifacts(name, v.artifactHash);
    }
    const gone = [...this.deployments.items.values()].filter((d) => d.metadata?.annotations?.[ANNOTATION.model] === model && !wanted.has(d.metadata!.name!));
    if (!downs.length && !gone.length) return;
    if (ups.length) {
      const ok = await this.waitUntil(() => ups.every((u) => this.readyCount(u.v.name, u.v.version) >= u.replicas), this.opts.rolloutTimeoutMs ?? 120_000);
      if (!ok) this.log(`kubernetes: ${ups.map((u) => `${u.v.name}:${u.v.version}`).join(', ')} not ready in time; scaling the others down anyway`);
      if (this.closed) return;
    }
    for (const d of downs) await this.scaleDown(d.name, d.replicas, d.reason);
    for (const d of gone) await this.remove(d);
  }

  /** PUT with the version we know; on 409 Conflict (the controller wrote status meanwhile) read it again and retry. */
  private async replace(want: VersionObjects['deployment'], cur: V1Deployment, replicas: number): Promise<V1Deployment> {
    for (let attempt = 0; ; attempt++) {
      const body = { ...want, metadata: { ...want.metadata, resourceVersion: cur.metadata?.resourceVersion }, spec: { ...want.spec!, replicas } };
      try {
        return await this.api.replaceDeployment(body);
      } catch (e) {
        if (!isStatus(e, 409) || attempt >= 4) throw e;
        cur = await this.api.readDeployment(want.metadata!.name!);
      }
    }
  }

  private async scale(name: string, replicas: number): Promise<void> {
    await this.api.patchScale(name, replicas);
    const cur = this.deployments.items.get(name);
    if (cur?.spec) this.deployments.items.set(name, { ...cur, spec: { ...cur.spec, replicas } });
  }

  /** Chooses the pods to go, takes them out of rotation, marks them cheapest to delete, then scales. */
  private async scaleDown(name: string, replicas: number, reason: string): Promise<void> {
    const pods = this.podsOfDeployment(name).filter((p) => !p.metadata?.deletionTimestamp);
    const rank = (p: V1Pod) => (this.state(p) === 'READY' ? 1 : 0);
    const victims = pods.sort((a, b) => rank(a) - rank(b) || (podStartedAt(b) ?? 0) - (podStartedAt(a) ?? 0)).slice(0, Math.max(0, pods.length - replicas));
    this.intent.set(name, reason);
    for (const p of victims) {
      const pod = p.metadata!.name!;
      this.ending.set(pod, reason);
      this.emit('replica-stopping', podReplicaId(pod));
      await this.api.annotatePod(pod, { [ANNOTATION.deletionCost]: '-1000' }).catch((e: unknown) => this.log(`could not annotate pod ${pod}: ${errorMessage(e)}`));
    }
    this.log(`kubernetes: scaling ${name} down to ${replicas} (${reason})`);
    await this.scale(name, replicas);
  }

  private async remove(d: V1Deployment): Promise<void> {
    const name = d.metadata!.name!;
    const reason = 'version no longer served';
    this.intent.set(name, reason);
    for (const p of this.podsOfDeployment(name)) {
      if (p.metadata?.deletionTimestamp || this.ending.has(p.metadata!.name!)) continue;
      this.ending.set(p.metadata!.name!, reason);
      this.emit('replica-stopping', podReplicaId(p.metadata!.name!));
    }
    this.log(`kubernetes: deleting deployment ${name} (${reason})`);
    const ignore404 = (e: unknown) => { if (!isStatus(e, 404)) throw e; };
    await this.api.deleteDeployment(name).catch(ignore404);
    this.deployments.items.delete(name);
    await this.api.deleteService(name).catch(ignore404);
    await this.api.deleteSecret(`${name}-auth`).catch(ignore404);
    for (const cm of await this.api.listConfigMaps(selectorString({ [LABEL.instance]: name, [LABEL.managedBy]: 'clipper' }))) {
      await this.api.deleteConfigMap(cm.metadata!.name!).catch(ignore404);
    }
    for (const key of [...this.layouts.keys()]) if (key.startsWith(`${name}|`)) this.layouts.delete(key);
  }

  /** The artifact's ConfigMaps: found in the cluster (made by any frontend) or made from the local copy. */
  private async ensureArtifact(name: string, v: ModelVersion): Promise<ArtifactLayout | undefined> {
    const key = `${name}|${v.artifactHash}`;
    const cached = this.layouts.get(key);
    if (cached) return cached;
    const existing = (await this.api.listConfigMaps(selectorString({ [LABEL.instance]: name, [LABEL.component]: 'model-artifact' })))
      .filter((c) => c.metadata?.annotations?.[ANNOTATION.artifactHash] === v.artifactHash);
    let layout = layoutOf(existing);
    if (!layout) {
      if (!v.artifactPath) return undefined;
      const packed = await packArtifact(v.artifactPath, this.opts.maxArtifactBytes ?? 32 * 1024 * 1024);
      const maps = artifactConfigMaps(v, this.settings, packed);
      this.log(`kubernetes: storing the artifact of ${v.name}:${v.version} (${packed.bytes} bytes) in ${maps.length} ConfigMap(s)`);
      for (const cm of maps) await this.api.createConfigMap(cm);
      layout = { root: packed.manifest.root, keys: packed.parts.map((p) => Object.keys(p.data)) };
    }
    this.layouts.set(key, layout);
    return layout;
  }

  /** Deletes artifact ConfigMaps of other hashes once no pod of the Deployment uses them. */
  private async collectArtifacts(name: string, hash: string): Promise<void> {
    const inUse = new Set(this.podsOfDeployment(name).map((p) => p.metadata?.annotations?.[ANNOTATION.artifactHash]));
    inUse.add(hash);
    const stale = [...this.layouts.keys()].filter((k) => k.startsWith(`${name}|`) && !inUse.has(k.slice(name.length + 1)));
    if (!stale.length) return;
    try {
      for (const cm of await this.api.listConfigMaps(selectorString({ [LABEL.instance]: name, [LABEL.component]: 'model-artifact' }))) {
        if (!inUse.has(cm.metadata?.annotations?.[ANNOTATION.artifactHash])) await this.api.deleteConfigMap(cm.metadata!.name!).catch(() => {});
      }
      for (const k of stale) this.layouts.delete(k);
    } catch (e) {
      this.log(`kubernetes: could not collect old artifacts of ${name}: ${errorMessage(e)}`);
    }
  }

  // ---------- pods ----------

  private onPod(type: 'ADDED' | 'MODIFIED' | 'DELETED', pod: V1Pod, prev: V1Pod | undefined): void {
    const name = pod.metadata!.name!;
    const id = podReplicaId(name);
    const owner = pod.metadata?.labels?.[LABEL.instance] ?? '';
    if (type === 'DELETED') {
      const ours = this.ending.get(name) ?? this.intent.get(owner);
      const reason = ours ?? 'pod deleted outside Clipper';
      this.lastExit.set(name, { reason, at: Date.now() });
      this.cleanup(name);
      this.emit('replica-exit', id, reason, ours ? 'stopped' : 'killed');
    } else {
      if (pod.metadata?.deletionTimestamp && !prev?.metadata?.deletionTimestamp) {
        if (!this.ending.has(name)) {
          this.ending.set(name, this.intent.get(owner) ?? 'pod deleted outside Clipper');
          this.emit('replica-stopping', id);
        }
      }
      const before = prev ? podRestarts(prev) : podRestarts(pod);
      if (podRestarts(pod) > before) {
        // The kubelet restarted the container: the replica must register again.
        this.registered.delete(name);
        this.unresponsive.delete(name);
        const t = lastTermination(pod);
        const reason = t?.reason ?? 'container restarted';
        this.lastExit.set(name, { reason, at: t?.at ?? Date.now() });
        const cause: ReplicaExitCause = t?.cause ?? 'crashed';
        this.emit('replica-exit', id, reason, cause);
      }
    }
    this.notify();
  }

  private cleanup(pod: string): void {
    this.registered.delete(pod);
    this.unresponsive.delete(pod);
    this.ending.delete(pod);
    if (this.lastExit.size > 1000) this.lastExit.delete(this.lastExit.keys().next().value!);
  }

  private state(p: V1Pod) {
    const name = p.metadata!.name!;
    return podState(p, { registered: this.registered.has(name), unresponsive: this.unresponsive.has(name) });
  }

  private info(p: V1Pod): ReplicaInfo | undefined {
    const v = podVersion(p);
    if (!v) return undefined;
    const a = p.metadata?.annotations ?? {};
    const limits = { cpus: Number(a[ANNOTATION.cpus] ?? 0), memoryMb: Number(a[ANNOTATION.memoryMb] ?? 0) };
    const name = p.metadata!.name!;
    const t = lastTermination(p);
    return {
      replicaId: podReplicaId(name),
      modelName: v.model,
      modelVersion: v.version,
      state: this.state(p),
      machine: p.spec?.nodeName ?? '',
      restarts: podRestarts(p),
      startedAt: podStartedAt(p),
      lastExit: t ? { reason: t.reason, at: t.at } : this.lastExit.get(name),
      limits,
      enforcement: { cpu: limits.cpus > 0 ? 'kubernetes' : 'none set', memory: limits.memoryMb > 0 ? 'kubernetes' : 'none set' },
    };
  }

  private podsOf(name: string, version: string): V1Pod[] {
    return [...this.pods.items.values()].filter((p) => sameVersion(p, name, version));
  }

  private podsOfDeployment(name: string): V1Pod[] {
    return [...this.pods.items.values()].filter((p) => p.metadata?.labels?.[LABEL.instance] === name);
  }

  private readyCount(name: string, version: string): number {
    const pods = this.podsOf(name, version).filter((p) => this.state(p) === 'READY').length;
    const d = this.deployments.items.get(deploymentName(name, version));
    const fromStatus = d && (d.status?.observedGeneration ?? 0) >= (d.metadata?.generation ?? 0) ? d.status?.readyReplicas ?? 0 : 0;
    return Math.max(pods, fromStatus);
  }

  private waitUntil(cond: () => boolean, timeoutMs: number): Promise<boolean> {
    if (cond()) return Promise.resolve(true);
    return new Promise((resolve) => {
      const check = () => {
        if (!cond() && !this.closed) return;
        clearTimeout(timer);
        this.waiters.delete(check);
        resolve(cond());
      };
      const timer = setTimeout(() => {
        this.waiters.delete(check);
        resolve(cond());
      }, timeoutMs);
      this.waiters.add(check);
    });
  }

  private notify(): void {
    for (const w of [...this.waiters]) w();
  }

  private log(msg: string): void {
    this.opts.log?.(msg);
  }
}

function sameVersion(p: V1Pod, name: string, version: string): boolean {
  const v = podVersion(p);
  return !!v && v.model === name && v.version === version;
}

/** The layout of an artifact from its ConfigMaps in the cluster, when all its parts are there. */
function layoutOf(maps: V1ConfigMap[]): ArtifactLayout | undefined {
  if (!maps.length) return undefined;
  const total = Number(maps[0]!.metadata?.annotations?.['clipper.io/parts'] ?? 0);
  const byIndex = new Map(maps.map((c) => [Number(/-(\d+)$/.exec(c.metadata!.name!)?.[1] ?? -1), c]));
  if (byIndex.size !== total) return undefined;
  const first = byIndex.get(0);
  const manifest = first?.data?.[MANIFEST_KEY];
  if (!manifest) return undefined;
  const keys: string[][] = [];
  for (let i = 0; i < total; i++) {
    const c = byIndex.get(i);
    if (!c) return undefined;
    keys.push(Object.keys(c.binaryData ?? {}));
  }
  return { root: (JSON.parse(manifest) as { root: string }).root, keys };
}
