/**
 * Selection-policy state per application, and per (application, uid) for contextual selection:
 * kept in memory for the hot path, written through to the store so it survives restarts and is
 * shared by frontends that share a store.
 */
import type { Store } from '../store/store.ts';

export class PolicyStateStore {
  private readonly cache = new Map<string, unknown>();

  constructor(private readonly store: Store) {}

  static key(app: string, policy: string, uid?: string): string {
    return uid === undefined ? `app/${app}/${policy}` : `app/${app}/${policy}/uid/${encodeURIComponent(uid)}`;
  }

  async get<S>(key: string, init: () => S): Promise<S> {
    if (this.cache.has(key)) return this.cache.get(key) as S;
    const text = await this.store.getState(key);
    const state = text === undefined ? init() : (JSON.parse(text) as S);
    this.cache.set(key, state);
    return state;
  }

  async put(key: string, state: unknown): Promise<void> {
    this.cache.set(key, state);
    await this.store.putState(key, JSON.stringify(state));
  }

  /** Forget an application's cached states (its policy changed, or it was deleted). */
  forgetApp(app: string): void {
    for (const k of this.cache.keys()) if (k.startsWith(`app/${app}/`)) this.cache.delete(k);
  }
}
