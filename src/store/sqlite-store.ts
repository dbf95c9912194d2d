/**
 * The embedded default store: one SQLite file under the data directory (better-sqlite3, WAL).
 * Every call goes through `guard`, so a full or read-only disk reaches callers as STORAGE_FULL or
 * STORAGE_UNAVAILABLE saying what could not be saved (storage-errors.ts), never as a raw SqliteError.
 *
 * Its feed is in-process (one server per data directory is enforced by the data-dir lock): each
 * committed write hands its batch to the watchers before the call returns. Revisions count from 0
 * at each open, which is all a feed within one process needs.
 */
import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { ServingError } from '../errors.ts';
import type { InputType } from '../registry/input-types.ts';
import type { RegistryChange } from '../registry/registry-view.ts';
import type { Application, ModelVersion, Runtime } from '../registry/types.ts';
import { guardStorage, storageCode } from './storage-errors.ts';
import type { FeedEvent, FeedSubscription, Store, StoreSnapshot } from './store.ts';

const SCHEMA = `
CREATE TABLE IF NOT EXISTS applications (
  name TEXT PRIMARY KEY, input_type TEXT NOT NULL, default_output TEXT NOT NULL,
  latency_slo_micros INTEGER NOT NULL, overload_default INTEGER NOT NULL DEFAULT 0, policy TEXT NOT NULL DEFAULT 'single',
  policy_params TEXT NOT NULL DEFAULT '{}', created_at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS model_versions (
  name TEXT NOT NULL, version TEXT NOT NULL, input_type TEXT NOT NULL, labels TEXT NOT NULL,
  runtime TEXT NOT NULL, container_name TEXT NOT NULL, artifact_path TEXT NOT NULL,
  artifact_hash TEXT NOT NULL, batch_size INTEGER NOT NULL, replicas INTEGER NOT NULL,
  created_at INTEGER NOT NULL, PRIMARY KEY (name, version));
CREATE TABLE IF NOT EXISTS current_versions (model_name TEXT PRIMARY KEY, version TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS links (app_name TEXT NOT NULL, model_name TEXT NOT NULL, PRIMARY KEY (app_name, model_name));
CREATE TABLE IF NOT EXISTS state (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS autoscaling (model_name TEXT PRIMARY KEY, settings TEXT NOT NULL);
`;

/** Columns added after the first release: added to an existing file on open. */
const MIGRATIONS: Array<{ table: string; column: string; ddl: string }> = [
  { table: 'model_versions', column: 'cpus', ddl: 'ALTER TABLE model_versions ADD COLUMN cpus REAL NOT NULL DEFAULT 0' },
  { table: 'model_versions', column: 'memory_mb', ddl: 'ALTER TABLE model_versions ADD COLUMN memory_mb INTEGER NOT NULL DEFAULT 0' },
];

interface AppRow { name: string; input_type: string; default_output: string; latency_slo_micros: number; overload_default: number; policy: string; policy_params: string; created_at: number }
interface VersionRow { name: string; version: string; input_type: string; labels: string; runtime: string; container_name: string; artifact_path: string; artifact_hash: string; batch_size: number; replicas: number; cpus: number; memory_mb: number; created_at: number }

export class SqliteStore implements Store {
  readonly shared = false;
  private readonly db: Database.Database;
  private rev = 0;
  private readonly watchers = new Set<(e: FeedEvent) => void>();

  constructor(private readonly file: string) {
    this.db = guardStorage('open the registry', file, () => {
      mkdirSync(dirname(file), { recursive: true });
      const db = new Database(file);
      try {
        db.pragma('journal_mode = WAL');
        db.pragma('busy_timeout = 5000');
        db.exec(SCHEMA);
        for (const m of MIGRATIONS) {
          const cols = db.prepare(`PRAGMA table_info(${m.table})`).all() as Array<{ name: string }>;
          if (!cols.some((c) => c.name === m.column)) db.exec(m.ddl);
        }
        return db;
      } catch (e) {
        db.close();
        throw e;
      }
    });
  }

  async load(): Promise<StoreSnapshot> {
    return this.guard('read the registry', () => {
      const apps = (this.db.prepare('SELECT * FROM applications ORDER BY name').all() as AppRow[]).map((r): Application => ({
        name: r.name, inputType: r.input_type as InputType, defaultOutput: r.default_output, latencySloMicros: r.latency_slo_micros, overloadDefault: r.overload_default === 1,
        policy: r.policy, policyParams: JSON.parse(r.policy_params) as Record<string, unknown>, createdAt: r.created_at,
      }));
      const versions = (this.db.prepare('SELECT * FROM model_versions ORDER BY name, created_at').all() as VersionRow[]).map((r): ModelVersion => ({
        name: r.name, version: r.version, inputType: r.input_type as InputType, labels: JSON.parse(r.labels) as string[],
        runtime: r.runtime as Runtime, containerName: r.container_name, artifactPath: r.artifact_path, artifactHash: r.artifact_hash,
        batchSize: r.batch_size, replicas: r.replicas, cpus: r.cpus, memoryMb: r.memory_mb, createdAt: r.created_at,
      }));
      const currentVersions: Record<string, string> = {};
      for (const r of this.db.prepare('SELECT model_name, version FROM current_versions').all() as Array<{ model_name: string; version: string }>) {
        currentVersions[r.model_name] = r.version;
      }
      const links = (this.db.prepare('SELECT app_name, model_name FROM links ORDER BY app_name, model_name').all() as Array<{ app_name: string; model_name: string }>)
        .map((r) => ({ appName: r.app_name, modelName: r.model_name }));
      const autoscaling: Record<string, Record<string, unknown>> = {};
      for (const r of this.db.prepare('SELECT model_name, settings FROM autoscaling').all() as Array<{ model_name: string; settings: string }>) {
        autoscaling[r.model_name] = JSON.parse(r.settings) as Record<string, unknown>;
      }
      return { apps, versions, currentVersions, links, autoscaling, rev: this.rev };
    });
  }

  watch(fromRev: number, onEvent: (e: FeedEvent) => void): FeedSubscription {
    // Writes between the caller's load and now cannot be replayed (batches are not kept): a snapshot instead.
    if (fromRev !== this.rev) queueMicrotask(() => { this.load().then((snapshot) => onEvent({ snapshot }), () => {}); });
    this.watchers.add(onEvent);
    return { close: () => { this.watchers.delete(onEvent); } };
  }

  /** Numbers a committed write's changes and hands them to the watchers; returns the revision. */
  private publish(changes: RegistryChange[]): number {
    const batch = { rev: ++this.rev, changes };
    for (const w of this.watchers) w({ batch });
    return batch.rev;
  }

  async putApp(a: Application): Promise<number> {
    this.guard(`save application ${a.name}`, () => unique(`application ${a.name} already exists`, () => {
      this.db.prepare(`INSERT INTO applications (name, input_type, default_output, latency_slo_micros, overload_default, policy, policy_params, created_at)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?)`).run(a.name, a.inputType, a.defaultOutput, a.latencySloMicros, a.overloadDefault ? 1 : 0, a.policy, JSON.stringify(a.policyParams), a.createdAt);
    }));
    return this.publish([{ kind: 'app-put', app: a }]);
  }

  async deleteApp(name: string): Promise<number> {
    this.guard(`delete application ${name}`, this.db.transaction(() => {
      this.db.prepare('DELETE FROM links WHERE app_name = ?').run(name);
      this.db.prepare('DELETE FROM applications WHERE name = ?').run(name);
      this.db.prepare('DELETE FROM state WHERE key LIKE ?').run(`app/${name}/%`);
    }));
    return this.publish([{ kind: 'app-deleted', name }]);
  }

  async putVersion(v: ModelVersion, makeCurrent: boolean): Promise<number> {
    this.guard(`save model ${v.name} version ${v.version}`, () => unique(`model ${v.name} version ${v.version} already exists`, this.db.transaction(() => {
      const sibling = this.db.prepare('SELECT input_type FROM model_versions WHERE name = ? AND version <> ? LIMIT 1').get(v.name, v.version) as { input_type: string } | undefined;
      if (sibling && sibling.input_type !== v.inputType) {
        throw new ServingError('TYPE_MISMATCH', `model ${v.name} has input type ${sibling.input_type}; a new version cannot use ${v.inputType}`);
      }
      this.db.prepare(`INSERT INTO model_versions (name, version, input_type, labels, runtime, container_name, artifact_path, artifact_hash, batch_size, replicas, cpus, memory_mb, created_at)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`).run(v.name, v.version, v.inputType, JSON.stringify(v.labels), v.runtime, v.containerName,
        v.artifactPath, v.artifactHash, v.batchSize, v.replicas, v.cpus, v.memoryMb, v.createdAt);
      if (makeCurrent) this.setCurrentSync(v.name, v.version);
    })));
    return this.publish([{ kind: 'version-put', version: v }, ...(makeCurrent ? [{ kind: 'current-set' as const, model: v.name, version: v.version }] : [])]);
  }

  async deleteVersion(name: string, version: string, nextCurrent: string | undefined): Promise<number> {
    const wasCurrent = this.guard(`delete model ${name} version ${version}`, this.db.transaction(() => {
      const current = (this.db.prepare('SELECT version FROM current_versions WHERE model_name = ?').get(name) as { version: string } | undefined)?.version;
      this.db.prepare('DELETE FROM model_versions WHERE name = ? AND version = ?').run(name, version);
      if (current === version && nextCurrent) this.setCurrentSync(name, nextCurrent);
      else {
        this.db.prepare('DELETE FROM current_versions WHERE model_name = ? AND version = ?').run(name, version);
        const left = this.db.prepare('SELECT COUNT(*) AS n FROM model_versions WHERE name = ?').get(name) as { n: number };
        if (left.n === 0) {
          this.db.prepare('DELETE FROM links WHERE model_name = ?').run(name);
          this.db.prepare('DELETE FROM autoscaling WHERE model_name = ?').run(name);
        }
      }
      return current === version;
    }));
    return this.publish([{ kind: 'version-deleted', name, version }, ...(wasCurrent ? [{ kind: 'current-set' as const, model: name, version: nextCurrent }] : [])]);
  }

  async setCurrentVersion(name: string, version: string): Promise<number> {
    this.guard(`make version ${version} of model ${name} current`, () => this.setCurrentSync(name, version));
    return this.publish([{ kind: 'current-set', model: name, version }]);
  }

  /** The fencing token is for a shared store's leader; one frontend per data directory has no rival. */
  async setReplicas(name: string, version: string, replicas: number): Promise<number> {
    this.guard(`save the replica count of model ${name} version ${version}`, () => {
      this.db.prepare('UPDATE model_versions SET replicas = ? WHERE name = ? AND version = ?').run(replicas, name, version);
    });
    return this.publish([{ kind: 'version-changed', name, version, set: { replicas } }]);
  }

  async setResources(name: string, version: string, cpus: number, memoryMb: number): Promise<number> {
    this.guard(`save the resources of model ${name} version ${version}`, () => {
      this.db.prepare('UPDATE model_versions SET cpus = ?, memory_mb = ? WHERE name = ? AND version = ?').run(cpus, memoryMb, name, version);
    });
    return this.publish([{ kind: 'version-changed', name, version, set: { cpus, memoryMb } }]);
  }

  async setAutoscaling(model: string, settings: Record<string, unknown> | undefined, replicas?: { version: string; count: number }): Promise<number> {
    this.guard(`save the autoscaling settings of model ${model}`, this.db.transaction(() => {
      if (settings) {
        this.db.prepare('INSERT INTO autoscaling (model_name, settings) VALUES (?, ?) ON CONFLICT(model_name) DO UPDATE SET settings = excluded.settings').run(model, JSON.stringify(settings));
      } else this.db.prepare('DELETE FROM autoscaling WHERE model_name = ?').run(model);
      if (replicas) this.db.prepare('UPDATE model_versions SET replicas = ? WHERE name = ? AND version = ?').run(replicas.count, model, replicas.version);
    }));
    return this.publish([
      { kind: 'autoscaling-set', model, settings },
      ...(replicas ? [{ kind: 'version-changed' as const, name: model, version: replicas.version, set: { replicas: replicas.count } }] : []),
    ]);
  }

  async setLinks(appName: string, modelNames: string[]): Promise<number> {
    this.guard(`save the links of application ${appName}`, this.db.transaction(() => {
      this.db.prepare('DELETE FROM links WHERE app_name = ?').run(appName);
      const ins = this.db.prepare('INSERT INTO links (app_name, model_name) VALUES (?, ?)');
      for (const m of modelNames) ins.run(appName, m);
    }));
    return this.publish([{ kind: 'links-set', app: appName, models: [...modelNames] }]);
  }

  async updateAppPolicy(name: string, policy: string, params: Record<string, unknown>): Promise<number> {
    this.guard(`save the policy of application ${name}`, () => {
      this.db.prepare('UPDATE applications SET policy = ?, policy_params = ? WHERE name = ?').run(policy, JSON.stringify(params), name);
    });
    return this.publish([{ kind: 'app-policy', name, policy, policyParams: params }]);
  }

  async getState(key: string): Promise<string | undefined> {
    return this.guard('read policy state', () => (this.db.prepare('SELECT value FROM state WHERE key = ?').get(key) as { value: string } | undefined)?.value);
  }

  async deleteState(key: string): Promise<void> {
    this.guard('delete policy state', () => {
      this.db.prepare('DELETE FROM state WHERE key = ?').run(key);
    });
  }

  async putState(key: string, value: string): Promise<void> {
    this.guard('save policy state', () => {
      this.db.prepare('INSERT INTO state (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value').run(key, value);
    });
  }

  async close(): Promise<void> {
    this.watchers.clear();
    // Closing checkpoints the WAL; on a full or read-only disk that fails, and the WAL is replayed on the next open.
    if (this.db.open) this.guard('close the registry', () => this.db.close());
  }

  private guard<T>(what: string, fn: () => T): T {
    return guardStorage(what, this.file, fn);
  }

  private setCurrentSync(name: string, version: string): void {
    this.db.prepare('INSERT INTO current_versions (model_name, version) VALUES (?, ?) ON CONFLICT(model_name) DO UPDATE SET version = excluded.version').run(name, version);
  }
}

/** A primary-key violation as ALREADY_EXISTS: the same answer a shared store gives. */
function unique<T>(message: string, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    const code = storageCode(e);
    if (code === 'SQLITE_CONSTRAINT_PRIMARYKEY' || code === 'SQLITE_CONSTRAINT_UNIQUE') throw new ServingError('ALREADY_EXISTS', message);
    throw e;
  }
}
