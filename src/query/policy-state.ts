/**
 * Selection-policy state per application, and per (application, uid) for contextual selection:
 * kept in memory for the hot path, written through to the store so it survives restarts and is
 * shared by frontends that share a store.
 *
 * With a shared store other frontends write the same keys, so a state held in memory is read
 * again once it is older than `refreshMs` (default 1 s when the store says it is shared, never
 * otherwise): one store read per key per second at most, and another frontend's update is seen
 * within about that. Concurrent updates are last-writer-wins, as they were within one frontend.
 *
 * Per-uid states are bounded: at most `maxUidsPerApp` per application, the least recently used
 * evicted first, from memory and (when the store can delete) from the store. An evicted user
 * starts again from the application's state, as a new user does.
 */

/** The part of the registry store this needs. */
export interface StateStore {
  /** True when other frontends write the same keys. */
  readonly shared?: boolean;
  getState(key: string): Promise<string | undefined>;
  putState(key: string, value: string): Promise<void>;
  deleteState(key: string): Promise<void>;
}

/** Whose state: an application's (under one policy), or one of its users'. */
export interface StateRef { app: string; policy: string; uid?: string }

interface Held { state: unknown; readAt: number }

export class PolicyStateStore {
  private readonly shared = new Map<string, Held>();
  /** Per application: key → state, in recency order (a use moves the key to the end). */
  private readonly users = new Map<string, Map<string, Held>>();
  private readonly refreshMs: number;
  private readonly now: () => number;

  constructor(private readonly store: StateStore, private readonly maxUidsPerApp = 10_000, opts: { refreshMs?: number; now?: () => number } = {}) {
    this.refreshMs = opts.refreshMs ?? (store.shared ? 1000 : Infinity);
    this.now = opts.now ?? Date.now;
  }

  static key(ref: StateRef): string {
    const base = `app/${ref.app}/${ref.policy}`;
    return ref.uid === undefined ? base : `${base}/uid/${encodeURIComponent(ref.uid)}`;
  }

  async get<S>(ref: StateRef, init: () => S): Promise<S> {
    const key = PolicyStateStore.key(ref);
    const held = this.memoryOf(ref).get(key);
    if (held && this.now() - held.readAt < this.refreshMs) {
      if (ref.uid !== undefined) this.remember(ref, key, held.state, held.readAt);
      return held.state as S;
    }
    const text = await this.store.getState(key);
    const state = text === undefined ? init() : (JSON.parse(text) as S);
    this.remember(ref, key, state);
    return state;
  }

  async put(ref: StateRef, state: unknown): Promise<void> {
    const key = PolicyStateStore.key(ref);
    this.remember(ref, key, state);
    await this.store.putState(key, JSON.stringify(state));
  }

  /** Per-uid states held in memory for an application. */
  uidCount(app: string): number {
    return this.users.get(app)?.size ?? 0;
  }

  /** Forget an application's cached states (its policy changed, or it was deleted). */
  forgetApp(app: string): void {
    this.users.delete(app);
    for (const k of this.shared.keys()) if (k.startsWith(`app/${app}/`)) this.shared.delete(k);
  }

  private memoryOf(ref: StateRef): Map<string, Held> {
    if (ref.uid === undefined) return this.shared;
    let m = this.users.get(ref.app);
    if (!m) this.users.set(ref.app, (m = new Map()));
    return m;
  }

  /** `readAt`: when the state was last known to match the store (now, unless it was only used). */
  private remember(ref: StateRef, key: string, state: unknown, readAt = this.now()): void {
    const mem = this.memoryOf(ref);
    if (ref.uid === undefined) {
      mem.set(key, { state, readAt });
      return;
    }
    mem.delete(key);
    mem.set(key, { state, readAt });
    for (const old of mem.keys()) {
      if (mem.size <= this.maxUidsPerApp) break;
      mem.delete(old);
      this.store.deleteState(old).catch(() => {});
    }
  }
}
