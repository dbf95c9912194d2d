/**
 * What a registry change means: the one definition, used by every frontend for every store.
 *
 * A store turns each write into a revision-numbered batch of changes; a frontend's in-memory view
 * applies the batches in revision order and gets back the events to emit. A frontend that missed
 * batches reloads a snapshot: `diff` gives the changes from its view to the snapshot, applied the
 * same way, so the same events follow.
 *
 * Meaning of each change (applying one that changes nothing emits nothing):
 *   app-put          add or replace an application     → 'app-added' (new) or 'app-changed'
 *   app-policy       set an application's policy         → 'app-changed'
 *   app-deleted      remove it and its links             → 'app-deleted'
 *   version-put      add or replace a version            → 'version-added' (new) or 'version-changed'
 *   version-changed  set replicas / cpus / memoryMb      → 'version-changed'
 *   version-deleted  remove it; the model's last version
 *                    also takes its links and autoscaling
 *                    settings (silently, as the stores do) → 'version-deleted'
 *   current-set      set or clear the current version    → 'current-changed' (model, version, previous)
 *   links-set        an application's linked models      → 'links-changed'
 *   autoscaling-set  settings, or undefined for off      → 'autoscaling-changed'
 */
import { versionKey, type Application, type ModelVersion, type RegistrySnapshot } from './types.ts';

export type RegistryChange =
  | { kind: 'app-put'; app: Application }
  | { kind: 'app-policy'; name: string; policy: string; policyParams: Record<string, unknown> }
  | { kind: 'app-deleted'; name: string }
  | { kind: 'version-put'; version: ModelVersion }
  | { kind: 'version-changed'; name: string; version: string; set: { replicas?: number; cpus?: number; memoryMb?: number } }
  | { kind: 'version-deleted'; name: string; version: string }
  | { kind: 'current-set'; model: string; version: string | undefined }
  | { kind: 'links-set'; app: string; models: string[] }
  | { kind: 'autoscaling-set'; model: string; settings: Record<string, unknown> | undefined };

/** One store write: its revision (1, 2, ... per store) and what it changed, in order. */
export interface ChangeBatch { rev: number; changes: RegistryChange[] }

/** An event for the registry's listeners: its name and arguments. */
export interface RegistryEvent { name: string; args: unknown[] }

export class RegistryView {
  readonly apps = new Map<string, Application>();
  readonly versions = new Map<string, ModelVersion>();
  readonly current = new Map<string, string>();
  readonly links = new Map<string, string[]>();
  readonly autoscale = new Map<string, Record<string, unknown>>();
  /** The revision of the last batch applied (or of the snapshot loaded). */
  rev = 0;

  /** Replaces the whole view with a snapshot, emitting nothing (the first load). */
  reset(s: RegistrySnapshot, rev: number): void {
    this.apps.clear(); this.versions.clear(); this.current.clear(); this.links.clear(); this.autoscale.clear();
    for (const a of s.apps) this.apps.set(a.name, a);
    for (const v of s.versions) this.versions.set(versionKey(v.name, v.version), v);
    for (const [m, v] of Object.entries(s.currentVersions)) this.current.set(m, v);
    for (const l of s.links) this.links.set(l.appName, [...(this.links.get(l.appName) ?? []), l.modelName]);
    for (const [m, a] of Object.entries(s.autoscaling)) this.autoscale.set(m, a);
    this.rev = rev;
  }

  /** Applies one batch; returns the events it caused, in order. */
  apply(batch: ChangeBatch): RegistryEvent[] {
    const events: RegistryEvent[] = [];
    for (const c of batch.changes) this.applyOne(c, events);
    this.rev = batch.rev;
    return events;
  }

  /** The changes that turn this view into the snapshot (for a frontend that missed batches). */
  diff(s: RegistrySnapshot): RegistryChange[] {
    const out: RegistryChange[] = [];
    const apps = new Map(s.apps.map((a) => [a.name, a]));
    const versions = new Map(s.versions.map((v) => [versionKey(v.name, v.version), v]));
    for (const a of apps.values()) if (!same(this.apps.get(a.name), a)) out.push({ kind: 'app-put', app: a });
    for (const [k, v] of versions) if (!same(this.versions.get(k), v)) out.push({ kind: 'version-put', version: v });
    for (const [k, v] of this.versions) if (!versions.has(k)) out.push({ kind: 'version-deleted', name: v.name, version: v.version });
    const models = new Set([...this.current.keys(), ...Object.keys(s.currentVersions)]);
    for (const m of models) if (this.current.get(m) !== s.currentVersions[m]) out.push({ kind: 'current-set', model: m, version: s.currentVersions[m] });
    const links = new Map<string, string[]>();
    for (const l of s.links) links.set(l.appName, [...(links.get(l.appName) ?? []), l.modelName]);
    for (const [app, models] of links) if (!same(this.links.get(app) ?? [], models)) out.push({ kind: 'links-set', app, models });
    for (const [app, models] of this.links) if (!links.has(app) && apps.has(app) && models.length > 0) out.push({ kind: 'links-set', app, models: [] });
    const scaled = new Set([...this.autoscale.keys(), ...Object.keys(s.autoscaling)]);
    for (const m of scaled) if (!same(this.autoscale.get(m), s.autoscaling[m])) out.push({ kind: 'autoscaling-set', model: m, settings: s.autoscaling[m] });
    for (const name of this.apps.keys()) if (!apps.has(name)) out.push({ kind: 'app-deleted', name });
    return out;
  }

  private applyOne(c: RegistryChange, events: RegistryEvent[]): void {
    switch (c.kind) {
      case 'app-put': {
        const had = this.apps.has(c.app.name);
        this.apps.set(c.app.name, c.app);
        events.push({ name: had ? 'app-changed' : 'app-added', args: [c.app] });
        return;
      }
      case 'app-policy': {
        const a = this.apps.get(c.name);
        if (!a) return;
        const updated = { ...a, policy: c.policy, policyParams: c.policyParams };
        this.apps.set(c.name, updated);
        events.push({ name: 'app-changed', args: [updated] });
        return;
      }
      case 'app-deleted':
        if (!this.apps.delete(c.name)) return;
        this.links.delete(c.name);
        events.push({ name: 'app-deleted', args: [c.name] });
        return;
      case 'version-put': {
        const key = versionKey(c.version.name, c.version.version);
        const had = this.versions.has(key);
        this.versions.set(key, c.version);
        events.push({ name: had ? 'version-changed' : 'version-added', args: [c.version] });
        return;
      }
      case 'version-changed': {
        const key = versionKey(c.name, c.version);
        const v = this.versions.get(key);
        if (!v) return;
        const updated = { ...v, ...c.set };
        this.versions.set(key, updated);
        events.push({ name: 'version-changed', args: [updated] });
        return;
      }
      case 'version-deleted': {
        const key = versionKey(c.name, c.version);
        const v = this.versions.get(key);
        if (!v) return;
        this.versions.delete(key);
        if (![...this.versions.values()].some((o) => o.name === c.name)) {
          for (const [app, models] of this.links) if (models.includes(c.name)) this.links.set(app, models.filter((m) => m !== c.name));
          this.autoscale.delete(c.name);
        }
        events.push({ name: 'version-deleted', args: [v] });
        return;
      }
      case 'current-set': {
        const previous = this.current.get(c.model);
        if (previous === c.version) return;
        if (c.version === undefined) this.current.delete(c.model);
        else this.current.set(c.model, c.version);
        events.push({ name: 'current-changed', args: [c.model, c.version, previous] });
        return;
      }
      case 'links-set':
        this.links.set(c.app, [...c.models]);
        events.push({ name: 'links-changed', args: [c.app] });
        return;
      case 'autoscaling-set':
        if (c.settings) this.autoscale.set(c.model, c.settings);
        else if (!this.autoscale.delete(c.model)) return;
        events.push({ name: 'autoscaling-changed', args: [c.model] });
    }
  }
}

/** Equal as JSON, whatever the order of object keys (a snapshot's records may be built in another order). */
function same(a: unknown, b: unknown): boolean {
  return stable(a) === stable(b);
}

function stable(x: unknown): string {
  return JSON.stringify(x, (_k, v: unknown) => (v && typeof v === 'object' && !Array.isArray(v)
    ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
    : v));
}
