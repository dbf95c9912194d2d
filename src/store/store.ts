/**
 * Persistence of the model registry. Two implementations share this interface: SQLite embedded
 * (one frontend per data directory) and Redis (shared by the frontends of a cluster).
 *
 * Every write is atomic, with its checks inside the atomic step (a failed call leaves nothing
 * half-written), and produces one revision-numbered batch of changes (registry-view.ts) on the
 * store's feed; it resolves with that revision. The feed is the only way changes reach a
 * frontend's view, its own writes included. State (getState/putState) is not on the feed.
 *
 * Errors: ALREADY_EXISTS (an app or version that exists), TYPE_MISMATCH (a version whose input type
 * differs from its model's other versions), FORBIDDEN with detail FENCED (a stale fencing token),
 * STORAGE_FULL / STORAGE_UNAVAILABLE (the disk or Redis), each a ServingError.
 */
import { ServingError } from '../errors.ts';
import type { ChangeBatch } from '../registry/registry-view.ts';
import type { Application, ModelVersion, RegistrySnapshot } from '../registry/types.ts';

/** The registry and the revision it is at, read together. */
export interface StoreSnapshot extends RegistrySnapshot { rev: number }

/** What a feed delivers: the next batch, or (after a gap it cannot fill) the whole registry. */
export type FeedEvent = { batch: ChangeBatch } | { snapshot: StoreSnapshot };

export interface FeedSubscription { close(): void }

/**
 * The resource manager leader's fencing token (the value of `<prefix>leader:token` when it took
 * the lease). A write given one is refused unless it is still the current token.
 */
export type FencingToken = string | number;

export interface Store {
  /** True when several frontends share this store (the artifacts must travel through it). */
  readonly shared: boolean;
  load(): Promise<StoreSnapshot>;
  /**
   * Delivers every batch after `fromRev`, in order, then each new one; when it cannot (the feed no
   * longer holds them, or the store was reset) a snapshot instead. `onError` hears feed trouble.
   */
  watch(fromRev: number, onEvent: (e: FeedEvent) => void, onError?: (e: unknown) => void): FeedSubscription;

  putApp(app: Application): Promise<number>;
  /** Deletes the app, its links and its policy state. */
  deleteApp(name: string): Promise<number>;
  /** Inserts the version (and makes it current), in one transaction. */
  putVersion(v: ModelVersion, makeCurrent: boolean): Promise<number>;
  /** Deletes a version; if it was current, `nextCurrent` becomes current (or none). */
  deleteVersion(name: string, version: string, nextCurrent: string | undefined): Promise<number>;
  setCurrentVersion(name: string, version: string): Promise<number>;
  setReplicas(name: string, version: string, replicas: number, fence?: FencingToken): Promise<number>;
  /** Cores and MiB per replica of a version (0 = no limit). */
  setResources(name: string, version: string, cpus: number, memoryMb: number): Promise<number>;
  /** A model's autoscaling settings (undefined turns autoscaling off), with an optional replica count for a version, in one write. */
  setAutoscaling(model: string, settings: Record<string, unknown> | undefined, replicas?: { version: string; count: number }, fence?: FencingToken): Promise<number>;
  setLinks(appName: string, modelNames: string[]): Promise<number>;
  updateAppPolicy(name: string, policy: string, params: Record<string, unknown>): Promise<number>;

  /** Free-form per-key state (selection policies, app keys); survives restarts. */
  getState(key: string): Promise<string | undefined>;
  putState(key: string, value: string): Promise<void>;
  deleteState(key: string): Promise<void>;

  /**
   * Artifact content by hash, for a shared store (`shared`): put before the version that uses it
   * (it lasts a while unreferenced), kept while a version uses it, removed with the last one.
   */
  putArtifact?(hash: string, content: Buffer): Promise<void>;
  getArtifact?(hash: string): Promise<Buffer | undefined>;

  /** Ends the feeds and the connection. */
  close(): Promise<void>;
}

export const FENCED = 'FENCED';

export function fencedError(token: FencingToken): ServingError {
  return new ServingError('FORBIDDEN', `fencing token ${token} is stale: another frontend now leads the resource manager`, FENCED);
}

/** True for a write refused because its fencing token is no longer the leader's. */
export function isFenced(e: unknown): boolean {
  return e instanceof ServingError && e.code === 'FORBIDDEN' && e.detail === FENCED;
}
