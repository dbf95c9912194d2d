/**
 * The model registry: applications, model versions, links and current versions, kept in memory
 * for the hot path (a RegistryView) and written to a Store. Listeners (query processor, resource
 * manager) learn of changes from events; the registry imports none of them.
 *
 * The store's change feed is the only way state reaches the view, this frontend's own writes
 * included: a write goes to the store, which answers with its revision, and resolves once the
 * feed has brought that revision here (read-your-writes). Events are emitted as batches are
 * applied, so every frontend sharing a store emits the same events for every change.
 *
 * Events: 'app-added' (app), 'app-deleted' (name), 'app-changed' (app), 'links-changed' (appName),
 *         'version-added' (v), 'version-deleted' (v), 'current-changed' (modelName, version|undefined),
 *         'version-changed' (v: replicas or resources), 'autoscaling-changed' (modelName)
 *
 * Log: each write this frontend makes is logged here once it has applied ('model deployed',
 * 'current version set', ...; docs/observability.md), with the admin request's id when one asked.
 * Changes other frontends make arrive as events and are logged by the frontend that made them.
 */
import { EventEmitter } from 'node:events';
import { resolve } from 'node:path';
import { ServingError } from '../errors.ts';
import { errorFields, silentLogger, type Logger } from '../observability/log.ts';
import type { FeedEvent, FeedSubscription, FencingToken, Store } from '../store/store.ts';
import { exists, materializeArtifact, packArtifact } from './artifact-blobs.ts';
import { inspectArtifact, isUnder } from './artifact-source.ts';
import { removeArtifact, storeArtifact, sweepPartialArtifacts } from './artifacts.ts';
import type { InputType } from './input-types.ts';
import { RegistryView, type ChangeBatch, type RegistryEvent } from './registry-view.ts';
import { versionKey, type Application, type ModelVersion, type Runtime } from './types.ts';

export interface NewApp { name: string; inputType: InputType; defaultOutput: string; latencySloMicros: number; overloadDefault?: boolean }
export interface NewVersion {
  name: string; version: string; inputType: InputType; labels: string[]; runtime: Runtime;
  containerName: string; modelDataPath: string | undefined; batchSize: number; replicas: number;
  cpus?: number; memoryMb?: number;
  /** Who asked (for the log of command-runtime registrations), e.g. the client's address. */
  requestedBy?: string;
}
/** What a registration may read and run: the operator's choices at start. */
export interface RegistryOptions {
  /** Where the registry keeps its copies of artifacts (inside the data directory). */
  artifactDir: string;
  /** A `model_data_path` must lie under this directory. */
  artifactRoot: string;
  maxArtifactBytes: number;
  /** `runtime: command` runs a program of the caller's choosing; refused (FORBIDDEN) unless true. */
  allowCommandRuntime: boolean;
  logger?: Logger;
}
/** Who asked for a write, for the log: the id of the admin request that made it. */
export interface ChangeOrigin { reqId?: string }
/** Checks a copied artifact for its runtime at deploy time; throws ARTIFACT_INVALID saying what is wrong. */
export type ArtifactCheck = (runtime: Runtime, artifactPath: string, v: NewVersion) => Promise<void>;

export class RegistryService extends EventEmitter {
  private readonly view = new RegistryView();
  /** Versions being registered (copy, check, store in flight): a second registration of one is refused at once. */
  private pending = new Map<string, NewVersion>();
  private feed: FeedSubscription | undefined;
  /** Writes waiting for their revision to come back on the feed. */
  private waiters: Array<{ rev: number; done: (e?: Error) => void }> = [];
  /** Artifacts fetched from a shared store into this frontend's directory, by hash. */
  private fetched = new Map<string, Promise<string>>();
  private readonly log: Logger;

  constructor(
    private readonly store: Store,
    private readonly opts: RegistryOptions,
    private readonly checkArtifact: ArtifactCheck = async () => {},
    /** Longest a write waits for the feed to bring its own change back. */
    private readonly applyTimeoutMs = 10_000,
  ) {
    super();
    this.log = opts.logger ?? silentLogger;
  }

  /** Loads the registry (emitting nothing) and follows the store's feed from there. */
  async load(): Promise<void> {
    const s = await this.store.load();
    this.view.reset(s, s.rev);
    await sweepPartialArtifacts(this.opts.artifactDir);
    this.feed?.close();
    this.feed = this.store.watch(s.rev, (e) => this.onFeed(e), (e) => this.log.error(errorFields(e), 'registry change feed failed'));
  }

  /** Stops following the feed; writes still waiting fail. */
  close(): void {
    this.feed?.close();
    this.feed = undefined;
    for (const w of this.waiters.splice(0)) w.done(new ServingError('UNAVAILABLE', 'the registry is closing'));
  }

  /** The revision of the last change applied to this frontend's view. */
  get revision(): number { return this.view.rev; }

  // ---------- reads (synchronous, from memory) ----------
  getApp(name: string): Application | undefined { return this.view.apps.get(name); }
  listApps(): Application[] { return [...this.view.apps.values()].sort((a, b) => a.name.localeCompare(b.name)); }
  linkedModels(app: string): string[] { return this.view.links.get(app) ?? []; }
  currentVersion(model: string): string | undefined { return this.view.current.get(model); }
  getVersion(name: string, version: string): ModelVersion | undefined { return this.view.versions.get(versionKey(name, version)); }
  listVersions(): ModelVersion[] { return [...this.view.versions.values()]; }
  versionsOf(name: string): ModelVersion[] { return this.listVersions().filter((v) => v.name === name); }
  hasModel(name: string): boolean {
    // On the query path: a model with a current version exists without a scan of every version.
    if (this.view.current.has(name)) return true;
    for (const v of this.view.versions.values()) if (v.name === name) return true;
    return false;
  }
  modelNames(): string[] { return [...new Set(this.listVersions().map((v) => v.name))]; }
  /** A model's autoscaling settings as stored (the autoscaler validates them), or undefined when it is off. */
  autoscaling(model: string): Record<string, unknown> | undefined { return this.view.autoscale.get(model); }

  requireApp(name: string): Application {
    const a = this.view.apps.get(name);
    if (!a) throw new ServingError('APP_NOT_FOUND', `application ${JSON.stringify(name)} does not exist`);
    return a;
  }
  requireVersion(name: string, version?: string): ModelVersion {
    if (!this.hasModel(name)) throw new ServingError('MODEL_NOT_FOUND', `model ${JSON.stringify(name)} does not exist`);
    const v = version ?? this.view.current.get(name);
    const mv = v === undefined ? undefined : this.view.versions.get(versionKey(name, v));
    if (!mv) throw new ServingError('VERSION_NOT_FOUND', version === undefined ? `model ${name} has no current version` : `model ${name} has no version ${JSON.stringify(version)}`);
    return mv;
  }

  // ---------- writes ----------
  async addApp(n: NewApp, origin: ChangeOrigin = {}): Promise<Application> {
    if (this.view.apps.has(n.name)) throw new ServingError('ALREADY_EXISTS', `application ${n.name} already exists`);
    const app: Application = { ...n, overloadDefault: n.overloadDefault ?? false, policy: 'single', policyParams: {}, createdAt: Date.now() };
    await this.applied(await this.store.putApp(app).catch((e) => { throw alreadyExists(e, `application ${n.name} already exists`); }));
    this.log.info({ ...origin, app: n.name, inputType: n.inputType, latencySloMicros: n.latencySloMicros }, 'application created');
    return this.view.apps.get(n.name) ?? app;
  }

  async deleteApp(name: string, origin: ChangeOrigin = {}): Promise<void> {
    this.requireApp(name);
    await this.applied(await this.store.deleteApp(name));
    this.log.info({ ...origin, app: name }, 'application deleted');
  }

  async setAppPolicy(name: string, policy: string, params: Record<string, unknown>): Promise<Application> {
    const app = this.requireApp(name);
    await this.applied(await this.store.updateAppPolicy(name, policy, params));
    this.log.info({ app: name, policy }, 'selection policy set');
    return this.view.apps.get(name) ?? { ...app, policy, policyParams: params };
  }

  /**
   * Registers a version: vets and copies its artifact, checks it for its runtime, stores it and
   * makes it current. A version is reserved from the first await to the last, so of concurrent
   * registrations of one name and version exactly one proceeds and the rest get ALREADY_EXISTS
   * (across frontends, the store's atomic check decides); each copies into its own directory, so a
   * failed one removes only its own files.
   */
  async addVersion(n: NewVersion, origin: ChangeOrigin = {}): Promise<ModelVersion> {
    const key = versionKey(n.name, n.version);
    if (this.view.versions.has(key) || this.pending.has(key)) throw new ServingError('ALREADY_EXISTS', `model ${n.name} version ${n.version} already exists`);
    const sibling = this.versionsOf(n.name)[0] ?? [...this.pending.values()].find((p) => p.name === n.name);
    if (sibling && sibling.inputType !== n.inputType) {
      throw new ServingError('TYPE_MISMATCH', `model ${n.name} has input type ${sibling.inputType}; a new version cannot use ${n.inputType}`);
    }
    if (n.runtime === 'command' && !n.containerName) throw new ServingError('INVALID_INPUT', 'container_name (the program to run) is required for runtime command');
    if (n.runtime === 'image' && !n.containerName) throw new ServingError('INVALID_INPUT', 'container_name (the image to run) is required for runtime image');
    if (n.runtime !== 'command' && n.runtime !== 'image' && !n.modelDataPath) throw new ServingError('INVALID_INPUT', `model_data_path is required for runtime ${n.runtime}`);
    if (n.runtime === 'command' && !this.opts.allowCommandRuntime) {
      throw new ServingError('FORBIDDEN', "runtime command runs a program of the caller's choosing as this server's user, so it is off: start the server with --allow-command-runtime to allow it");
    }

    this.pending.set(key, n);
    try {
      const { v, rev } = await this.register(n);
      await this.applied(rev);
      this.log.info({ ...origin, model: n.name, version: n.version, runtime: n.runtime, inputType: n.inputType, replicas: n.replicas, artifactHash: v.artifactHash || undefined }, 'model deployed');
      if (n.runtime === 'command') {
        this.log.warn({ ...origin, model: n.name, version: n.version, command: n.containerName, requestedBy: n.requestedBy },
          `runtime command: registered ${key}, which runs ${JSON.stringify(n.containerName)} (requested by ${n.requestedBy ?? 'this process'})`);
      }
      return this.view.versions.get(key) ?? v;
    } finally {
      this.pending.delete(key);
    }
  }

  private async register(n: NewVersion): Promise<{ v: ModelVersion; rev: number }> {
    const { artifactDir, artifactRoot, maxArtifactBytes } = this.opts;
    const plan = n.modelDataPath ? await inspectArtifact(n.modelDataPath, { root: artifactRoot, maxBytes: maxArtifactBytes }) : undefined;
    const artifact = plan ? await storeArtifact(artifactDir, n.name, n.version, plan, maxArtifactBytes) : { path: '', hash: '' };
    const v: ModelVersion = {
      name: n.name, version: n.version, inputType: n.inputType, labels: n.labels, runtime: n.runtime, containerName: n.containerName,
      artifactPath: artifact.path, artifactHash: artifact.hash, batchSize: n.batchSize, replicas: n.replicas,
      cpus: n.cpus ?? 0, memoryMb: n.memoryMb ?? 0, createdAt: Date.now(),
    };
    try {
      await this.checkArtifact(n.runtime, artifact.path, n);
      // Other frontends fetch the content from the shared store (localArtifact); it goes in before the version that names it.
      if (this.store.shared && artifact.path) await this.store.putArtifact!(artifact.hash, await packArtifact(artifact.path, artifactDir, maxArtifactBytes));
      const rev = await this.store.putVersion(v, true).catch((e) => { throw alreadyExists(e, `model ${n.name} version ${n.version} already exists`); });
      return { v, rev };
    } catch (e) {
      await this.discard(artifact.path);
      throw e;
    }
  }

  /**
   * A local path holding a version's artifact: the registered copy when it is in this frontend's
   * artifact directory, otherwise (a shared store) fetched into it once and verified against the
   * version's hash. '' for a version without one.
   */
  async localArtifact(v: ModelVersion): Promise<string> {
    if (!v.artifactPath) return '';
    if (!this.store.shared || (isUnder(resolve(v.artifactPath), resolve(this.opts.artifactDir)) && await exists(v.artifactPath))) return v.artifactPath;
    const cached = this.fetched.get(v.artifactHash);
    if (cached) {
      const path = await cached.catch(() => undefined);
      if (path !== undefined && await exists(path)) return path;
      if (this.fetched.get(v.artifactHash) === cached) this.fetched.delete(v.artifactHash);
      return this.localArtifact(v);
    }
    const fetching = this.fetchArtifact(v);
    this.fetched.set(v.artifactHash, fetching);
    fetching.catch(() => { if (this.fetched.get(v.artifactHash) === fetching) this.fetched.delete(v.artifactHash); });
    return fetching;
  }

  private async fetchArtifact(v: ModelVersion): Promise<string> {
    const { artifactDir, maxArtifactBytes } = this.opts;
    const blob = await this.store.getArtifact!(v.artifactHash);
    if (!blob) throw new ServingError('ARTIFACT_INVALID', `the artifact of ${v.name}:${v.version} is not in the shared store`);
    // The archive's header is small beside the content; anything far past the limit is not ours.
    if (blob.length > maxArtifactBytes + 8 * 1024 * 1024) throw new ServingError('ARTIFACT_INVALID', `the shared copy of the artifact of ${v.name}:${v.version} is larger than the artifact limit`);
    return materializeArtifact(blob, v, artifactDir, maxArtifactBytes);
  }

  /** Removes a copy no version uses any more; a failure is logged, not thrown (the registry is already right). */
  private async discard(artifactPath: string): Promise<void> {
    await removeArtifact(this.opts.artifactDir, artifactPath).catch((e) => this.log.warn({ path: artifactPath, ...errorFields(e) }, 'could not remove an artifact copy'));
  }

  async setCurrentVersion(name: string, version: string, origin: ChangeOrigin = {}): Promise<void> {
    const v = this.requireVersion(name, version);
    const previous = this.currentVersion(name);
    const before = previous === undefined ? undefined : this.getVersion(name, previous);
    await this.applied(await this.store.setCurrentVersion(name, version));
    // A rollback: back to a version older than the one it replaces.
    this.log.info({ ...origin, model: name, version, previous, rollback: before !== undefined && v.createdAt < before.createdAt }, 'current version set');
  }

  async deleteVersion(name: string, version: string, origin: ChangeOrigin = {}): Promise<void> {
    this.requireVersion(name, version);
    const wasCurrent = this.view.current.get(name) === version;
    const others = this.versionsOf(name).filter((o) => o.version !== version).sort((a, b) => b.createdAt - a.createdAt);
    const next = wasCurrent ? others[0]?.version : undefined;
    await this.applied(await this.store.deleteVersion(name, version, next));
    this.log.info({ ...origin, model: name, version, ...(wasCurrent ? { current: next ?? null } : {}) }, 'model version deleted');
  }

  /**
   * Sets a version's replica count. A count set by hand turns the model's autoscaling off
   * (in the same write); the autoscaler's own decisions pass `byAutoscaler`, and in a cluster the
   * leader's fencing token (`fence`): the store refuses the write (FORBIDDEN, see isFenced) once
   * another frontend has taken the lead.
   */
  async setReplicas(name: string, version: string, replicas: number, opts: { byAutoscaler?: boolean; fence?: FencingToken } & ChangeOrigin = {}): Promise<ModelVersion> {
    const v = this.requireVersion(name, version);
    const turnsOff = !opts.byAutoscaler && this.view.autoscale.has(name);
    const rev = turnsOff
      ? await this.store.setAutoscaling(name, undefined, { version: v.version, count: replicas }, opts.fence)
      : await this.store.setReplicas(name, v.version, replicas, opts.fence);
    await this.applied(rev);
    // The autoscaler logs its own decisions (replica-controller.ts).
    if (!opts.byAutoscaler) this.log.info({ reqId: opts.reqId, model: name, version: v.version, replicas, ...(turnsOff ? { autoscaling: false } : {}) }, 'replicas set');
    return this.getVersion(name, v.version) ?? { ...v, replicas };
  }

  async setResources(name: string, version: string, cpus: number, memoryMb: number, origin: ChangeOrigin = {}): Promise<ModelVersion> {
    const v = this.requireVersion(name, version);
    await this.applied(await this.store.setResources(name, v.version, cpus, memoryMb));
    this.log.info({ ...origin, model: name, version: v.version, cpus, memoryMb }, 'resources set');
    return this.getVersion(name, v.version) ?? { ...v, cpus, memoryMb };
  }

  /** Turns a model's autoscaling on (validated settings) or off (undefined); `fence` as for setReplicas. */
  async setAutoscaling(model: string, settings: Record<string, unknown> | undefined, opts: { fence?: FencingToken } & ChangeOrigin = {}): Promise<void> {
    if (!this.hasModel(model)) throw new ServingError('MODEL_NOT_FOUND', `model ${JSON.stringify(model)} does not exist`);
    await this.applied(await this.store.setAutoscaling(model, settings, undefined, opts.fence));
    this.log.info({ reqId: opts.reqId, model, autoscaling: settings ?? false }, settings ? 'autoscaling on' : 'autoscaling off');
  }

  async linkModels(appName: string, modelNames: string[], origin: ChangeOrigin = {}): Promise<string[]> {
    const app = this.requireApp(appName);
    for (const m of modelNames) {
      const v = this.versionsOf(m)[0];
      if (!v) throw new ServingError('MODEL_NOT_FOUND', `model ${JSON.stringify(m)} does not exist`);
      if (v.inputType !== app.inputType) {
        throw new ServingError('TYPE_MISMATCH', `cannot link model ${m} (input type ${v.inputType}) to application ${appName} (input type ${app.inputType})`);
      }
    }
    const next = [...new Set([...this.linkedModels(appName), ...modelNames])];
    await this.applied(await this.store.setLinks(appName, next));
    this.log.info({ ...origin, app: appName, models: modelNames, linked: this.linkedModels(appName) }, 'models linked');
    return this.linkedModels(appName);
  }

  async unlinkModels(appName: string, modelNames: string[], origin: ChangeOrigin = {}): Promise<string[]> {
    this.requireApp(appName);
    const linked = this.linkedModels(appName);
    const missing = modelNames.filter((m) => !linked.includes(m));
    if (missing.length) throw new ServingError('MODEL_NOT_FOUND', `model(s) ${missing.join(', ')} are not linked to ${appName}`);
    const next = linked.filter((m) => !modelNames.includes(m));
    await this.applied(await this.store.setLinks(appName, next));
    this.log.info({ ...origin, app: appName, models: modelNames, linked: this.linkedModels(appName) }, 'models unlinked');
    return this.linkedModels(appName);
  }

  // ---------- the feed ----------

  private onFeed(e: FeedEvent): void {
    let batch: ChangeBatch;
    if ('batch' in e) {
      if (e.batch.rev <= this.view.rev) return;
      batch = e.batch;
    } else {
      batch = { rev: e.snapshot.rev, changes: this.view.diff(e.snapshot) };
      this.log.warn({ rev: e.snapshot.rev, missed: batch.changes.length }, `registry: reloaded from the store at revision ${e.snapshot.rev} (${batch.changes.length} change(s) missed)`);
    }
    const events = this.view.apply(batch);
    this.publish(events);
    for (const w of this.waiters.filter((x) => x.rev <= this.view.rev)) w.done();
    this.waiters = this.waiters.filter((x) => x.rev > this.view.rev);
    for (const ev of events) if (ev.name === 'version-deleted') void this.dropLocalCopies(ev.args[0] as ModelVersion);
  }

  /** Emits a batch's events; a listener that throws is logged, so the feed goes on for the others. */
  private publish(events: RegistryEvent[]): void {
    for (const ev of events) {
      try {
        this.emit(ev.name, ...ev.args);
      } catch (e) {
        this.log.error({ event: ev.name, ...errorFields(e, true) }, 'a listener of a registry event failed');
      }
    }
  }

  /** Removes this frontend's copies of a deleted version's artifact that no remaining version uses. */
  private async dropLocalCopies(v: ModelVersion): Promise<void> {
    const left = this.listVersions();
    if (v.artifactPath && isUnder(resolve(v.artifactPath), resolve(this.opts.artifactDir)) && !left.some((o) => o.artifactPath === v.artifactPath)) {
      await this.discard(v.artifactPath);
    }
    const fetched = this.fetched.get(v.artifactHash);
    if (fetched && !left.some((o) => o.artifactHash === v.artifactHash)) {
      this.fetched.delete(v.artifactHash);
      const path = await fetched.catch(() => undefined);
      if (path) await this.discard(path);
    }
  }

  /** Resolves once the feed has applied revision `rev` here. */
  private applied(rev: number): Promise<void> {
    if (this.view.rev >= rev) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        reject(new ServingError('STORAGE_UNAVAILABLE', `the change was saved (revision ${rev}) but this frontend's change feed has not brought it back within ${this.applyTimeoutMs / 1000} s; it will apply once the feed catches up`));
      }, this.applyTimeoutMs);
      const waiter = { rev, done: (e?: Error) => { clearTimeout(timer); e ? reject(e) : resolve(); } };
      this.waiters.push(waiter);
    });
  }
}

/** A store's uniqueness violation (a race the in-memory checks did not see) as ALREADY_EXISTS; anything else unchanged. */
function alreadyExists(e: unknown, message: string): unknown {
  const code = (e as { code?: unknown } | null)?.code;
  return code === 'SQLITE_CONSTRAINT_PRIMARYKEY' || code === 'SQLITE_CONSTRAINT_UNIQUE' ? new ServingError('ALREADY_EXISTS', message) : e;
}
