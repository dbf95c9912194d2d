/**
 * The test API server's object store: objects by resource, namespace and name, one resourceVersion
 * counter for everything, and an event history that watches replay from. `compact()` forgets the
 * history (as etcd compaction does), so a watch from an older version gets 410 Gone.
 */
import { randomUUID } from 'node:crypto';
import type { ResourceType } from './resources.ts';

export type Obj = {
  apiVersion?: string; kind?: string;
  metadata: {
    name: string; namespace?: string; uid?: string; resourceVersion?: string; generation?: number; creationTimestamp?: string;
    deletionTimestamp?: string; deletionGracePeriodSeconds?: number; labels?: Record<string, string>; annotations?: Record<string, string>;
    ownerReferences?: Array<{ apiVersion: string; kind: string; name: string; uid: string; controller?: boolean }>;
    [k: string]: unknown;
  };
  spec?: any; // eslint-disable-line @typescript-eslint/no-explicit-any
  status?: any; // eslint-disable-line @typescript-eslint/no-explicit-any
  [k: string]: unknown;
};

export interface StoreEvent { rv: number; type: 'ADDED' | 'MODIFIED' | 'DELETED'; plural: string; namespace: string; object: Obj }

const MAX_HISTORY = 10_000;

export class Store {
  private readonly objects = new Map<string, Obj>();
  private readonly history: StoreEvent[] = [];
  rv = 1;
  /** Watches from below this version get 410 Gone. */
  oldest = 1;
  private readonly listeners = new Set<(e: StoreEvent) => void>();

  key(plural: string, ns: string, name: string): string {
    return `${plural}/${ns}/${name}`;
  }

  get(plural: string, ns: string, name: string): Obj | undefined {
    const o = this.objects.get(this.key(plural, ns, name));
    return o && structuredClone(o);
  }

  list(plural: string, ns: string | undefined, selector?: (o: Obj) => boolean): Obj[] {
    return [...this.objects]
      .filter(([k, o]) => k.startsWith(`${plural}/`) && (ns === undefined || (o.metadata.namespace ?? '') === ns) && (!selector || selector(o)))
      .map(([, o]) => structuredClone(o))
      .sort((a, b) => a.metadata.name.localeCompare(b.metadata.name));
  }

  create(r: ResourceType, ns: string, obj: Obj): Obj {
    const o = structuredClone(obj);
    o.metadata.namespace = r.namespaced ? ns : undefined;
    if (!r.namespaced) delete o.metadata.namespace;
    o.metadata.uid = randomUUID();
    o.metadata.creationTimestamp = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
    if (r.plural === 'deployments' || r.plural === 'statefulsets') o.metadata.generation = 1;
    return this.put(r.plural, 'ADDED', o);
  }

  /** Stores a new state of an existing object (a new resourceVersion). */
  update(plural: string, obj: Obj): Obj {
    return this.put(plural, 'MODIFIED', structuredClone(obj));
  }

  delete(plural: string, ns: string, name: string): Obj | undefined {
    const k = this.key(plural, ns, name);
    const o = this.objects.get(k);
    if (!o) return undefined;
    this.objects.delete(k);
    const gone = structuredClone(o);
    gone.metadata.resourceVersion = String(++this.rv);
    this.record({ rv: this.rv, type: 'DELETED', plural, namespace: ns, object: gone });
    return structuredClone(gone);
  }

  /** Events after `rv`, or undefined when they are no longer kept. */
  since(rv: number): StoreEvent[] | undefined {
    if (rv < this.oldest - 1) return undefined;
    return this.history.filter((e) => e.rv > rv);
  }

  /** Forgets the history: every version before now is expired. */
  compact(): void {
    this.history.length = 0;
    this.oldest = this.rv + 1;
  }

  subscribe(fn: (e: StoreEvent) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  private put(plural: string, type: 'ADDED' | 'MODIFIED', o: Obj): Obj {
    o.metadata.resourceVersion = String(++this.rv);
    this.objects.set(this.key(plural, o.metadata.namespace ?? '', o.metadata.name), o);
    this.record({ rv: this.rv, type, plural, namespace: o.metadata.namespace ?? '', object: structuredClone(o) });
    return structuredClone(o);
  }

  private record(e: StoreEvent): void {
    this.history.push(e);
    if (this.history.length > MAX_HISTORY) this.oldest = this.history.shift()!.rv + 1;
    for (const l of this.listeners) l(e);
  }
}

/** A labelSelector's test: `a=b`, `a==b`, `a!=b`, `a`, `!a`, `a in (x,y)`, `a notin (x)`, comma-joined. */
export function parseSelector(text: string | null): (o: Obj) => boolean {
  if (!text) return () => true;
  const terms: Array<(l: Record<string, string>) => boolean> = [];
  for (const raw of text.match(/[^,(]+(\([^)]*\))?/g) ?? []) {
    const t = raw.trim();
    let m: RegExpExecArray | null;
    if ((m = /^(\S+)\s+(in|notin)\s+\(([^)]*)\)$/.exec(t))) {
      const [, k, op, vals] = m;
      const set = new Set(vals!.split(',').map((x) => x.trim()));
      terms.push((l) => (op === 'in' ? l[k!] !== undefined && set.has(l[k!]!) : l[k!] === undefined || !set.has(l[k!]!)));
    } else if ((m = /^([^!=]+)!=(.*)$/.exec(t))) {
      const [, k, v] = m;
      terms.push((l) => l[k!.trim()] !== v!.trim());
    } else if ((m = /^([^=]+)==?(.*)$/.exec(t))) {
      const [, k, v] = m;
      terms.push((l) => l[k!.trim()] === v!.trim());
    } else if (t.startsWith('!')) {
      terms.push((l) => l[t.slice(1)] === undefined);
    } else if (t) {
      terms.push((l) => l[t] !== undefined);
    }
  }
  return (o) => terms.every((f) => f(o.metadata.labels ?? {}));
}
