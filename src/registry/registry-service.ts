/**
 * The model registry: applications, model versions, links and current versions, kept in memory
 * for the hot path and written through to a Store. Listeners (query processor, resource manager)
 * learn of changes from events; the registry imports none of them.
 *
 * Events: 'app-added' (app), 'app-deleted' (name), 'app-changed' (app), 'links-changed' (appName),
 *         'version-added' (v), 'version-deleted' (v), 'current-changed' (modelName, version|undefined),
 *         'version-changed' (v: replicas or resources), 'autoscaling-changed' (modelName)
 */
import { EventEmitter } from 'node:events';
import { ServingError } from '../errors.ts';
import type { Store } from '../store/store.ts';
import { inspectArtifact } from './artifact-source.ts';
import { removeArtifact, storeArtifact, sweepPartialArtifacts } from './artifacts.ts';
import type { InputType } from './input-types.ts';
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
  log: (msg: string) => void;
}
/** Checks a copied artifact for its runtime at deploy time; throws ARTIFACT_INVALID saying what is wrong. */
export type ArtifactCheck = (runtime: Runtime, artifactPath: string, v: NewVersion) => Promise<void>;

export class RegistryService extends EventEmitter {
  private apps = new Map<string, Application>();
  private versions = new Map<string, ModelVersion>();
  private current = new Map<string, string>();
  private links = new Map<string, string[]>();
  private autoscale = new Map<string, Record<string, unknown>>();
  /** Versions being registered (copy, check, store in flight): a second registration of one is refused at once. */
  private pending = new Map<string, NewVersion>();

  constructor(
    private readonly store: Store,
    private readonly opts: RegistryOptions,
    private readonly checkArtifact: ArtifactCheck = async () => {},
  ) {
    super();
  }

  async load(): Promise<void> {
    const s = await this.store.load();
    for (const a of s.apps) this.apps.set(a.name, a);
    for (const v of s.versions) this.versions.set(versionKey(v.name, v.version), v);
    for (const [m, v] of Object.entries(s.currentVersions)) this.current.set(m, v);
    for (const l of s.links) this.links.set(l.appName, [...(this.links.get(l.appName) ?? []), l.modelName]);
    for (const [m, a] of Object.entries(s.autoscaling)) this.autoscale.set(m, a);
    await sweepPartialArtifacts(this.opts.artifactDir);
  }

  // ---------- reads (synchronous, from memory) ----------
  getApp(name: string): Application | undefined { return this.apps.get(name); }
  listApps(): Application[] { return [...this.apps.values()]; }
  linkedModels(app: string): string[] { return this.links.get(app) ?? []; }
  currentVersion(model: string): string | undefined { return this.current.get(model); }
  getVersion(name: string, version: string): ModelVersion | undefined { return this.versions.get(versionKey(name, version)); }
  listVersions(): ModelVersion[] { return [...this.versions.values()]; }
  versionsOf(name: string): ModelVersion[] { return this.listVersions().filter((v) => v.name === name); }
  hasModel(name: string): boolean { return this.versionsOf(name).length > 0; }
  modelNames(): string[] { return [...new Set(this.listVersions().map((v) => v.name))]; }
  /** A model's autoscaling settings as stored (the autoscaler validates them), or undefined when it is off. */
  autoscaling(model: string): Record<string, unknown> | undefined { return this.autoscale.get(model); }

  requireApp(name: string): Application {
    const a = this.apps.get(name);
    if (!a) throw new ServingError('APP_NOT_FOUND', `application ${JSON.stringify(name)} does not exist`);
    return a;
  }
  requireVersion(name: string, version?: string): ModelVersion {
    if (!this.hasModel(name)) throw new ServingError('MODEL_NOT_FOUND', `model ${JSON.stringify(name)} does not exist`);
    const v = version ?? this.current.get(name);
    const mv = v === undefined ? undefined : this.versions.get(versionKey(name, v));
    if (!mv) throw new ServingError('VERSION_NOT_FOUND', version === undefined ? `model ${name} has no current version` : `model ${name} has no version ${JSON.stringify(version)}`);
    return mv;
  }

  // ---------- writes ----------
  async addApp(n: NewApp): Promise<Application> {
    if (this.apps.has(n.name)) throw new ServingError('ALREADY_EXISTS', `application ${n.name} already exists`);
    const app: Application = { ...n, overloadDefault: n.overloadDefault ?? false, policy: 'single', policyParams: {}, createdAt: Date.now() };
    await this.store.putApp(app).catch((e) => { throw alreadyExists(e, `application ${n.name} already exists`); });
    this.apps.set(app.name, app);
    this.emit('app-added', app);
    return app;
  }

  async deleteApp(name: string): Promise<void> {
    this.requireApp(name);
    await this.store.deleteApp(name);
    this.apps.delete(name);
    this.links.delete(name);
    this.emit('app-deleted', name);
  }

  async setAppPolicy(name: string, policy: string, params: Record<string, unknown>): Promise<Application> {
    const app = this.requireApp(name);
    await this.store.updateAppPolicy(name, policy, params);
    const updated = { ...app, policy, policyParams: params };
    this.apps.set(name, updated);
    this.emit('app-changed', updated);
    return updated;
  }

  /**
   * Registers a version: vets and copies its artifact, checks it for its runtime, stores it and
   * makes it current. A version is reserved from the first await to the last, so of concurrent
   * registrations of one name and version exactly one proceeds and the rest get ALREADY_EXISTS;
   * each copies into its own directory, so a failed one removes only its own files.
   */
  async addVersion(n: NewVersion): Promise<ModelVersion> {
    const key = versionKey(n.name, n.version);
    if (this.versions.has(key) || this.pending.has(key)) throw new ServingError('ALREADY_EXISTS', `model ${n.name} version ${n.version} already exists`);
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
      const v = await this.register(n);
      this.versions.set(key, v);
      if (n.runtime === 'command') this.opts.log(`runtime command: registered ${key}, which runs ${JSON.stringify(n.containerName)} (requested by ${n.requestedBy ?? 'this process'})`);
      const previous = this.current.get(n.name);
      this.current.set(n.name, n.version);
      this.emit('version-added', v);
      this.emit('current-changed', n.name, n.version, previous);
      return v;
    } finally {
      this.pending.delete(key);
    }
  }

  private async register(n: NewVersion): Promise<ModelVersion> {
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
      await this.store.putVersion(v, true).catch((e) => { throw alreadyExists(e, `model ${n.name} version ${n.version} already exists`); });
    } catch (e) {
      await this.discard(artifact.path);
      throw e;
    }
    return v;
  }

  /** Removes a copy no version uses any more; a failure is logged, not thrown (the registry is already right). */
  private async discard(artifactPath: string): Promise<void> {
    await removeArtifact(this.opts.artifactDir, artifactPath).catch((e) => this.opts.log(`could not remove ${artifactPath}: ${(e as Error).message}`));
  }

  async setCurrentVersion(name: string, version: string): Promise<void> {
    this.requireVersion(name, version);
    const previous = this.current.get(name);
    await this.store.setCurrentVersion(name, version);
    this.current.set(name, version);
    this.emit('current-changed', name, version, previous);
  }

  async deleteVersion(name: string, version: string): Promise<void> {
    const v = this.requireVersion(name, version);
    const wasCurrent = this.current.get(name) === version;
    const others = this.versionsOf(name).filter((o) => o.version !== version).sort((a, b) => b.createdAt - a.createdAt);
    const next = wasCurrent ? others[0]?.version : undefined;
    await this.store.deleteVersion(name, version, next);
    this.versions.delete(versionKey(name, version));
    if (others.length === 0) {
      for (const [app, models] of this.links) if (models.includes(name)) this.links.set(app, models.filter((m) => m !== name));
      this.autoscale.delete(name);
    }
    if (wasCurrent) {
      if (next) this.current.set(name, next);
      else this.current.delete(name);
    }
    this.emit('version-deleted', v);
    if (wasCurrent) this.emit('current-changed', name, next, version);
    if (v.artifactPath && !this.listVersions().some((o) => o.artifactPath === v.artifactPath)) await this.discard(v.artifactPath);
  }

  /**
   * Sets a version's replica count. A count set by hand turns the model's autoscaling off
   * (in the same write); the autoscaler's own decisions pass `byAutoscaler`.
   */
  async setReplicas(name: string, version: string, replicas: number, opts: { byAutoscaler?: boolean } = {}): Promise<ModelVersion> {
    const v = this.requireVersion(name, version);
    const turnsOff = !opts.byAutoscaler && this.autoscale.has(name);
    if (turnsOff) await this.store.setAutoscaling(name, undefined, { version: v.version, count: replicas });
    else await this.store.setReplicas(name, v.version, replicas);
    const updated = { ...v, replicas };
    this.versions.set(versionKey(name, v.version), updated);
    if (turnsOff) {
      this.autoscale.delete(name);
      this.emit('autoscaling-changed', name);
    }
    this.emit('version-changed', updated);
    return updated;
  }

  async setResources(name: string, version: string, cpus: number, memoryMb: number): Promise<ModelVersion> {
    const v = this.requireVersion(name, version);
    await this.store.setResources(name, v.version, cpus, memoryMb);
    const updated = { ...v, cpus, memoryMb };
    this.versions.set(versionKey(name, v.version), updated);
    this.emit('version-changed', updated);
    return updated;
  }

  /** Turns a model's autoscaling on (validated settings) or off (undefined). */
  async setAutoscaling(model: string, settings: Record<string, unknown> | undefined): Promise<void> {
    if (!this.hasModel(model)) throw new ServingError('MODEL_NOT_FOUND', `model ${JSON.stringify(model)} does not exist`);
    await this.store.setAutoscaling(model, settings);
    if (settings) this.autoscale.set(model, settings);
    else this.autoscale.delete(model);
    this.emit('autoscaling-changed', model);
  }

  async linkModels(appName: string, modelNames: string[]): Promise<string[]> {
    const app = this.requireApp(appName);
    for (const m of modelNames) {
      const v = this.versionsOf(m)[0];
      if (!v) throw new ServingError('MODEL_NOT_FOUND', `model ${JSON.stringify(m)} does not exist`);
      if (v.inputType !== app.inputType) {
        throw new ServingError('TYPE_MISMATCH', `cannot link model ${m} (input type ${v.inputType}) to application ${appName} (input type ${app.inputType})`);
      }
    }
    const next = [...new Set([...this.linkedModels(appName), ...modelNames])];
    await this.store.setLinks(appName, next);
    this.links.set(appName, next);
    this.emit('links-changed', appName);
    return next;
  }

  async unlinkModels(appName: string, modelNames: string[]): Promise<string[]> {
    this.requireApp(appName);
    const linked = this.linkedModels(appName);
    const missing = modelNames.filter((m) => !linked.includes(m));
    if (missing.length) throw new ServingError('MODEL_NOT_FOUND', `model(s) ${missing.join(', ')} are not linked to ${appName}`);
    const next = linked.filter((m) => !modelNames.includes(m));
    await this.store.setLinks(appName, next);
    this.links.set(appName, next);
    this.emit('links-changed', appName);
    return next;
  }
}

/** A store's uniqueness violation (a race the in-memory checks did not see) as ALREADY_EXISTS; anything else unchanged. */
function alreadyExists(e: unknown, message: string): unknown {
  const code = (e as { code?: unknown } | null)?.code;
  return code === 'SQLITE_CONSTRAINT_PRIMARYKEY' || code === 'SQLITE_CONSTRAINT_UNIQUE' ? new ServingError('ALREADY_EXISTS', message) : e;
}
