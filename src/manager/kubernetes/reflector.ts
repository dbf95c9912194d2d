/**
 * A list-then-watch cache of one kind of object (pods or deployments with our labels), as
 * client-go's reflector does: list (which gives a resourceVersion), then watch from it; when the
 * watch ends, watch again from the last version seen; when the server says that version is gone
 * (410 Gone, as an HTTP status or as an ERROR event), list again and report what changed in
 * between. Every change reaches `onChange(type, object, previous)`.
 */
import type { KubeApi, WatchEvent } from './kube-api.ts';

interface Obj { metadata?: { name?: string; resourceVersion?: string } }

export type ChangeType = 'ADDED' | 'MODIFIED' | 'DELETED';

export interface ReflectorOptions<T extends Obj> {
  api: KubeApi;
  /** The collection's path, e.g. /apis/apps/v1/namespaces/<ns>/deployments */
  path: string;
  labelSelector: string;
  list: () => Promise<{ items: T[]; resourceVersion: string }>;
  onChange: (type: ChangeType, obj: T, previous: T | undefined) => void;
  log: (msg: string) => void;
}

export class Reflector<T extends Obj> {
  readonly items = new Map<string, T>();
  /** Times the collection was listed (1 + re-lists after 410 Gone or a failed watch). */
  lists = 0;
  private resourceVersion = '';
  private abort: AbortController | undefined;
  private closed = false;
  private retryTimer: NodeJS.Timeout | undefined;
  private failures = 0;

  constructor(private readonly o: ReflectorOptions<T>) {}

  /** Resolves after the first list. */
  async start(): Promise<void> {
    await this.relist();
    void this.watch();
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.retryTimer);
    this.abort?.abort();
  }

  private async relist(): Promise<void> {
    const { items, resourceVersion } = await this.o.list();
    this.lists++;
    const seen = new Set<string>();
    for (const obj of items) {
      const name = obj.metadata?.name ?? '';
      seen.add(name);
      const prev = this.items.get(name);
      this.items.set(name, obj);
      if (!prev) this.o.onChange('ADDED', obj, undefined);
      else if (prev.metadata?.resourceVersion !== obj.metadata?.resourceVersion) this.o.onChange('MODIFIED', obj, prev);
    }
    for (const [name, prev] of [...this.items]) {
      if (seen.has(name)) continue;
      this.items.delete(name);
      this.o.onChange('DELETED', prev, prev);
    }
    this.resourceVersion = resourceVersion;
  }

  private async watch(): Promise<void> {
    if (this.closed) return;
    let gone = false;
    const ended = new Promise<unknown>((resolve) => {
      this.o.api.watch<T | { kind?: string; code?: number; message?: string }>(
        this.o.path, { labelSelector: this.o.labelSelector, resourceVersion: this.resourceVersion },
        (e) => {
          if (e.type === 'ERROR') {
            const st = e.object as { code?: number; message?: string };
            if (st.code === 410) gone = true;
            else this.o.log(`watch ${this.o.path}: ${st.message ?? JSON.stringify(st)}`);
            return;
          }
          this.apply(e as WatchEvent<T>);
        },
        resolve,
      ).then((a) => {
        this.abort = a;
        if (this.closed) a.abort();
      }, resolve);
    });
    const err = await ended;
    if (this.closed) return;
    if ((err as { statusCode?: number } | null)?.statusCode === 410) gone = true;
    if (err && !gone) {
      this.failures++;
      this.o.log(`watch ${this.o.path} failed (${(err as Error).message ?? String(err)}); again in a moment`);
    } else if (!err) {
      this.failures = 0;
    }
    const delay = this.failures ? Math.min(5000, 100 * 2 ** Math.min(this.failures, 6)) : 0;
    this.retryTimer = setTimeout(() => {
      void (async () => {
        if (this.closed) return;
        try {
          if (gone || this.failures > 3) {
            if (gone) this.o.log(`watch ${this.o.path}: resourceVersion ${this.resourceVersion} expired (410 Gone); listing again`);
            await this.relist();
            this.failures = 0;
          }
        } catch (e) {
          this.failures++;
          this.o.log(`list ${this.o.path} failed: ${(e as Error).message}`);
        }
        void this.watch();
      })();
    }, delay);
  }

  private apply(e: WatchEvent<T>): void {
    const obj = e.object;
    const name = obj.metadata?.name ?? '';
    if (obj.metadata?.resourceVersion) this.resourceVersion = obj.metadata.resourceVersion;
    if (e.type === 'BOOKMARK') return;
    const prev = this.items.get(name);
    if (e.type === 'DELETED') {
      this.items.delete(name);
      this.o.onChange('DELETED', obj, prev);
      return;
    }
    this.items.set(name, obj);
    this.o.onChange(prev ? 'MODIFIED' : 'ADDED', obj, prev);
  }
}
