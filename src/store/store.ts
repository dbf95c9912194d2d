/**
 * Persistence of the model registry. Two implementations share this interface
 * (SQLite embedded by default; a shared store can implement the same). Every write is atomic:
 * a failed call leaves nothing half-written.
 */
import type { Application, ModelVersion, RegistrySnapshot } from '../registry/types.ts';

export interface Store {
  load(): Promise<RegistrySnapshot>;
  putApp(app: Application): Promise<void>;
  /** Deletes the app and its links. */
  deleteApp(name: string): Promise<void>;
  /** Inserts the version and makes it current, in one transaction. */
  putVersion(v: ModelVersion, makeCurrent: boolean): Promise<void>;
  /** Deletes a version; if it was current, `nextCurrent` becomes current (or none). */
  deleteVersion(name: string, version: string, nextCurrent: string | undefined): Promise<void>;
  setCurrentVersion(name: string, version: string): Promise<void>;
  setReplicas(name: string, version: string, replicas: number): Promise<void>;
  /** Cores and MiB per replica of a version (0 = no limit). */
  setResources(name: string, version: string, cpus: number, memoryMb: number): Promise<void>;
  /** A model's autoscaling settings (undefined turns autoscaling off), with an optional replica count for a version, in one write. */
  setAutoscaling(model: string, settings: Record<string, unknown> | undefined, replicas?: { version: string; count: number }): Promise<void>;
  setLinks(appName: string, modelNames: string[]): Promise<void>;
  updateAppPolicy(name: string, policy: string, params: Record<string, unknown>): Promise<void>;
  /** Free-form per-key state (selection policies); survives restarts. */
  getState(key: string): Promise<string | undefined>;
  putState(key: string, value: string): Promise<void>;
  deleteState(key: string): Promise<void>;
  close(): Promise<void>;
}
