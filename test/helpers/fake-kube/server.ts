/**
 * An in-process Kubernetes API server for tests (node:http), enough of the real protocol for
 * @kubernetes/client-node and kubectl: discovery, CRUD of the kinds in resources.ts, list with
 * labelSelector, watch from a resourceVersion (410 Gone as an ERROR event once the history is
 * compacted), optimistic concurrency (409 on a stale resourceVersion), metav1 Status errors,
 * merge and strategic-merge PATCH, the deployments/scale subresource, pod logs, and Table output
 * for `kubectl get`. Every object received is checked with kubernetes-models (422 when invalid)
 * and recorded. cluster.ts plays the deployment controller and the kubelet.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { objectProblems } from '../../../src/manager/kubernetes/validate.ts';
import { FakeCluster, isReady } from './cluster.ts';
import { apiGroupList, apiResourceList, apiVersionOf, apiVersions, findResource, type ResourceType } from './resources.ts';
import { parseSelector, Store, type Obj } from './store.ts';

export interface RecordedRequest { method: string; path: string; query: Record<string, string>; contentType: string; accept: string; body: unknown; status: number }

class HttpStatus extends Error {
  constructor(readonly code: number, readonly reason: string, message: string, readonly details?: unknown) { super(message); }
}

const NS_RESOURCE = findResource('', 'v1', 'namespaces')!;

export class FakeKubeApi {
  readonly store = new Store();
  readonly cluster = new FakeCluster(this.store);
  readonly requests: RecordedRequest[] = [];
  /** Every object a client sent in a create, replace or patch (after the patch), valid or not. */
  readonly received: Array<{ method: string; path: string; object: Obj; problems: string[] }> = [];
  url = '';
  private server: Server | undefined;
  private readonly watches = new Set<ServerResponse>();
  private timer: NodeJS.Timeout | undefined;

  static async start(opts: { tickMs?: number } = {}): Promise<FakeKubeApi> {
    const f = new FakeKubeApi();
    f.store.create(NS_RESOURCE, '', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'default' } });
    f.server = createServer((req, res) => void f.handle(req, res));
    await new Promise<void>((r) => f.server!.listen(0, '127.0.0.1', r));
    f.url = `http://127.0.0.1:${(f.server.address() as AddressInfo).port}`;
    const tick = () => {
      f.cluster.tick();
      f.timer = setTimeout(tick, opts.tickMs ?? 20);
    };
    f.timer = setTimeout(tick, opts.tickMs ?? 20);
    return f;
  }

  async close(): Promise<void> {
    clearTimeout(this.timer);
    for (const w of this.watches) w.destroy();
    this.server?.closeAllConnections();
    await new Promise<void>((r) => this.server!.close(() => r()));
  }

  /** Forgets the event history and ends every open watch: clients re-watching from their version get 410 Gone. */
  expireWatches(): void {
    this.store.rv++; // writes elsewhere in the cluster moved on past every client's version
    this.store.compact();
    for (const w of this.watches) w.end();
    this.watches.clear();
  }

  createNamespace(name: string): void {
    if (!this.store.get('namespaces', '', name)) this.store.create(NS_RESOURCE, '', { apiVersion: 'v1', kind: 'Namespace', metadata: { name } });
  }

  /** A kubeconfig for kubectl pointing here, with no credentials. */
  writeKubeconfig(dir: string): string {
    const file = join(dir, 'kubeconfig');
    writeFileSync(file, JSON.stringify({
      apiVersion: 'v1', kind: 'Config',
      clusters: [{ name: 'fake', cluster: { server: this.url, 'insecure-skip-tls-verify': true } }],
      users: [{ name: 'nobody', user: {} }],
      contexts: [{ name: 'fake', context: { cluster: 'fake', user: 'nobody' } }],
      'current-context': 'fake',
    }));
    return file;
  }

  scaleRequests(): RecordedRequest[] {
    return this.requests.filter((r) => r.path.endsWith('/scale') && (r.method === 'PATCH' || r.method === 'PUT'));
  }

  // ---------- HTTP ----------

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://x');
    const query = Object.fromEntries(url.searchParams);
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const raw = Buffer.concat(chunks).toString('utf8');
    const rec: RecordedRequest = {
      method: req.method ?? 'GET', path: url.pathname, query, contentType: req.headers['content-type'] ?? '', accept: req.headers.accept ?? '', body: undefined, status: 200,
    };
    this.requests.push(rec);
    try {
      if (raw) {
        try {
          rec.body = JSON.parse(raw);
        } catch {
          throw new HttpStatus(400, 'BadRequest', 'the request body is not JSON (this server reads JSON only)');
        }
      }
      const out = this.route(req, res, url, rec);
      if (out === undefined) return; // streaming
      rec.status = out.status;
      if (typeof out.body === 'string') {
        res.writeHead(out.status, { 'Content-Type': 'text/plain' }).end(out.body);
      } else {
        res.writeHead(out.status, { 'Content-Type': 'application/json' }).end(JSON.stringify(out.body));
      }
    } catch (e) {
      const s = e instanceof HttpStatus ? e : new HttpStatus(500, 'InternalError', String(e));
      rec.status = s.code;
      res.writeHead(s.code, { 'Content-Type': 'application/json' }).end(JSON.stringify(status(s)));
    }
  }

  private route(req: IncomingMessage, res: ServerResponse, url: URL, rec: RecordedRequest): { status: number; body: unknown } | undefined {
    const p = url.pathname.replace(/\/+$/, '');
    const ok = (body: unknown, code = 200) => ({ status: code, body });
    if (p === '/version') return ok({ major: '1', minor: '30', gitVersion: 'v1.30.0-fake', platform: 'linux/amd64', goVersion: 'go1.22', compiler: 'gc', buildDate: '2024-01-01T00:00:00Z', gitCommit: '', gitTreeState: 'clean' });
    if (p === '/api') return ok(apiVersions());
    if (p === '/apis') return ok(apiGroupList());
    if (p.startsWith('/openapi')) throw new HttpStatus(404, 'NotFound', 'this test server has no OpenAPI documents');
    const seg = p.split('/').filter(Boolean).map(decodeURIComponent);
    let group: string;
    let version: string;
    let rest: string[];
    if (seg[0] === 'api' && seg.length >= 2) [group, version, rest] = ['', seg[1]!, seg.slice(2)];
    else if (seg[0] === 'apis' && seg.length >= 3) [group, version, rest] = [seg[1]!, seg[2]!, seg.slice(3)];
    else throw new HttpStatus(404, 'NotFound', `the server could not find the requested resource (${p})`);
    if (!rest.length) {
      const list = apiResourceList(group, version);
      if (!list) throw new HttpStatus(404, 'NotFound', `no API group version ${group}/${version}`);
      return ok(list);
    }
    let ns: string | undefined;
    if (rest[0] === 'namespaces' && rest.length >= 3) {
      ns = rest[1];
      rest = rest.slice(2);
    }
    const r = findResource(group, version, rest[0]!);
    if (!r) throw new HttpStatus(404, 'NotFound', `the server could not find the requested resource (${p})`);
    const name = rest[1];
    const sub = rest[2];
    if (r.namespaced && ns !== undefined && !this.store.get('namespaces', '', ns) && req.method !== 'GET') {
      throw new HttpStatus(404, 'NotFound', `namespaces "${ns}" not found`, { name: ns, kind: 'namespaces' });
    }
    const nsKey = r.namespaced ? ns ?? '' : '';
    const method = req.method ?? 'GET';
    const table = (req.headers.accept ?? '').includes('as=Table');
    if (name === undefined) {
      if (method === 'GET') {
        if (url.searchParams.get('watch') === '1' || url.searchParams.get('watch') === 'true') {
          this.watch(r, r.namespaced ? ns : undefined, url, req, res);
          return undefined;
        }
        const items = this.store.list(r.plural, r.namespaced ? ns : undefined, parseSelector(url.searchParams.get('labelSelector'))).map((o) => withKind(r, o));
        return ok(table ? toTable(r, items, this.store.rv) : { kind: `${r.kind}List`, apiVersion: apiVersionOf(r), metadata: { resourceVersion: String(this.store.rv) }, items });
      }
      if (method === 'POST') return ok(this.create(r, nsKey, rec), 201);
      throw new HttpStatus(405, 'MethodNotAllowed', `${method} is not supported on ${p}`);
    }
    if (sub === 'scale' && r.plural === 'deployments') return ok(this.scale(method, nsKey, name, rec, url));
    if (sub === 'log' && r.plural === 'pods') {
      const pod = this.mustGet(r, nsKey, name);
      const lines = this.cluster.logs.get(pod.metadata.name) ?? [];
      const tail = Number(url.searchParams.get('tailLines') ?? lines.length);
      return ok(lines.slice(-tail).map((l) => `${l}\n`).join(''));
    }
    if (sub === 'status' && method === 'GET') return ok(withKind(r, this.mustGet(r, nsKey, name)));
    if (sub !== undefined) throw new HttpStatus(404, 'NotFound', `no subresource ${sub} of ${r.plural}`);
    switch (method) {
      case 'GET': {
        const o = withKind(r, this.mustGet(r, nsKey, name));
        return ok(table ? toTable(r, [o], this.store.rv) : o);
      }
      case 'PUT': return ok(this.replace(r, nsKey, name, rec));
      case 'PATCH': return ok(this.patch(r, nsKey, name, rec));
      case 'DELETE': {
        const o = this.mustGet(r, nsKey, name);
        if (r.plural === 'pods') {
          const grace = url.searchParams.get('gracePeriodSeconds') ?? (rec.body as { gracePeriodSeconds?: number } | undefined)?.gracePeriodSeconds;
          return ok(withKind(r, this.cluster.terminate(o, grace === undefined ? 30 : Number(grace))));
        }
        return ok(withKind(r, this.store.delete(r.plural, nsKey, name)!));
      }
    }
    throw new HttpStatus(405, 'MethodNotAllowed', `${method} is not supported on ${p}`);
  }

  private mustGet(r: ResourceType, ns: string, name: string): Obj {
    const o = this.store.get(r.plural, ns, name);
    if (!o) throw new HttpStatus(404, 'NotFound', `${r.plural}${r.group ? `.${r.group}` : ''} "${name}" not found`, { name, group: r.group, kind: r.plural });
    return o;
  }

  /** Checks what a client sent; records it; 422 with every problem when invalid. */
  private check(r: ResourceType, obj: Obj, method: string, path: string): void {
    const problems = obj.kind !== r.kind || obj.apiVersion !== apiVersionOf(r)
      ? [`kind/apiVersion ${obj.apiVersion}/${obj.kind} does not match ${apiVersionOf(r)}/${r.kind}`]
      : objectProblems(obj);
    this.received.push({ method, path, object: structuredClone(obj), problems });
    if (problems.length) {
      throw new HttpStatus(422, 'Invalid', `${r.kind} "${obj.metadata?.name}" is invalid: ${problems.join('; ')}`, { name: obj.metadata?.name, group: r.group, kind: r.kind, causes: problems.map((m) => ({ reason: 'FieldValueInvalid', message: m })) });
    }
  }

  private create(r: ResourceType, ns: string, rec: RecordedRequest): Obj {
    const obj = rec.body as Obj;
    if (!obj || typeof obj !== 'object' || !obj.metadata?.name) throw new HttpStatus(422, 'Invalid', 'metadata.name: Required value');
    if (obj.metadata.namespace !== undefined && r.namespaced && obj.metadata.namespace !== ns) {
      throw new HttpStatus(400, 'BadRequest', 'the namespace of the provided object does not match the namespace sent on the request');
    }
    delete obj.metadata.resourceVersion;
    if (r.plural === 'deployments') {
      obj.spec.replicas ??= 1;
      obj.status = {};
    }
    this.check(r, obj, 'POST', rec.path);
    if (this.store.get(r.plural, ns, obj.metadata.name)) {
      throw new HttpStatus(409, 'AlreadyExists', `${r.plural} "${obj.metadata.name}" already exists`, { name: obj.metadata.name, group: r.group, kind: r.plural });
    }
    if (rec.query.dryRun) return withKind(r, obj);
    return withKind(r, this.store.create(r, ns, obj));
  }

  private replace(r: ResourceType, ns: string, name: string, rec: RecordedRequest): Obj {
    const cur = this.mustGet(r, ns, name);
    const obj = rec.body as Obj;
    if (obj.metadata?.name !== name) throw new HttpStatus(400, 'BadRequest', 'the name of the object does not match the name on the URL');
    const rv = obj.metadata.resourceVersion;
    if (rv && rv !== cur.metadata.resourceVersion) {
      throw new HttpStatus(409, 'Conflict', `Operation cannot be fulfilled on ${r.plural} "${name}": the object has been modified; please apply your changes to the latest version and try again`, { name, group: r.group, kind: r.plural });
    }
    this.check(r, obj, 'PUT', rec.path);
    return withKind(r, this.commit(r, cur, obj));
  }

  private patch(r: ResourceType, ns: string, name: string, rec: RecordedRequest): Obj {
    const cur = this.mustGet(r, ns, name);
    const patched = applyPatch(cur, rec.body, rec.contentType);
    const rv = (rec.body as Obj | undefined)?.metadata?.resourceVersion;
    if (rv && rv !== cur.metadata.resourceVersion) throw new HttpStatus(409, 'Conflict', `Operation cannot be fulfilled on ${r.plural} "${name}": the object has been modified`);
    this.check(r, withKind(r, patched), 'PATCH', rec.path);
    return withKind(r, this.commit(r, cur, patched));
  }

  /** Stores a new state from a PUT or PATCH: identity and status kept, generation bumped on a spec change. */
  private commit(r: ResourceType, cur: Obj, next: Obj): Obj {
    const o = structuredClone(next);
    o.metadata = { ...o.metadata, uid: cur.metadata.uid, creationTimestamp: cur.metadata.creationTimestamp, namespace: cur.metadata.namespace, resourceVersion: cur.metadata.resourceVersion };
    if (cur.metadata.deletionTimestamp) o.metadata.deletionTimestamp = cur.metadata.deletionTimestamp;
    if (cur.metadata.ownerReferences && !o.metadata.ownerReferences) o.metadata.ownerReferences = cur.metadata.ownerReferences;
    if (r.plural === 'deployments' || r.plural === 'statefulsets' || r.plural === 'pods') o.status = cur.status;
    if (cur.metadata.generation !== undefined) {
      o.metadata.generation = cur.metadata.generation + (JSON.stringify(o.spec) !== JSON.stringify(cur.spec) ? 1 : 0);
    }
    return this.store.update(r.plural, o);
  }

  private scale(method: string, ns: string, name: string, rec: RecordedRequest, url: URL): Obj {
    const r = findResource('apps', 'v1', 'deployments')!;
    const d = this.mustGet(r, ns, name);
    const asScale = (x: Obj): Obj => ({
      apiVersion: 'autoscaling/v1', kind: 'Scale',
      metadata: { name: x.metadata.name, namespace: x.metadata.namespace, uid: x.metadata.uid, resourceVersion: x.metadata.resourceVersion, creationTimestamp: x.metadata.creationTimestamp },
      spec: { replicas: x.spec.replicas ?? 1 },
      status: { replicas: x.status?.replicas ?? 0, selector: Object.entries(x.spec.selector?.matchLabels ?? {}).map(([k, v]) => `${k}=${v}`).join(',') },
    });
    if (method === 'GET') return asScale(d);
    let next: Obj;
    if (method === 'PUT') next = rec.body as Obj;
    else if (method === 'PATCH') next = applyPatch(asScale(d), rec.body, rec.contentType);
    else throw new HttpStatus(405, 'MethodNotAllowed', `${method} is not supported on deployments/scale`);
    const rv = next.metadata?.resourceVersion;
    if (method === 'PUT' && rv && rv !== d.metadata.resourceVersion) throw new HttpStatus(409, 'Conflict', `Operation cannot be fulfilled on deployments.apps "${name}": the object has been modified`);
    const problems = objectProblems({ ...next, metadata: { ...next.metadata, name } });
    this.received.push({ method, path: url.pathname, object: structuredClone(next), problems });
    if (problems.length) throw new HttpStatus(422, 'Invalid', `Scale "${name}" is invalid: ${problems.join('; ')}`);
    const replicas = next.spec?.replicas;
    if (typeof replicas !== 'number' || replicas < 0) throw new HttpStatus(422, 'Invalid', 'spec.replicas: must be greater than or equal to 0');
    d.spec.replicas = replicas;
    return asScale(this.commit(r, d, d));
  }

  private watch(r: ResourceType, ns: string | undefined, url: URL, req: IncomingMessage, res: ServerResponse): void {
    const match = parseSelector(url.searchParams.get('labelSelector'));
    const from = url.searchParams.get('resourceVersion');
    res.writeHead(200, { 'Content-Type': 'application/json', 'Transfer-Encoding': 'chunked' });
    const send = (type: string, object: unknown) => res.write(`${JSON.stringify({ type, object })}\n`);
    const fits = (plural: string, o: Obj) => plural === r.plural && (ns === undefined || (o.metadata.namespace ?? '') === ns) && match(o);
    if (from && from !== '0') {
      const events = this.store.since(Number(from));
      if (!events) {
        send('ERROR', { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message: `too old resource version: ${from} (${this.store.oldest})`, reason: 'Expired', code: 410 });
        res.end();
        return;
      }
      for (const e of events) if (fits(e.plural, e.object)) send(e.type, withKind(r, e.object));
    } else {
      for (const o of this.store.list(r.plural, ns, match)) send('ADDED', withKind(r, o));
    }
    this.watches.add(res);
    const off = this.store.subscribe((e) => { if (fits(e.plural, e.object)) send(e.type, withKind(r, e.object)); });
    const timeout = Number(url.searchParams.get('timeoutSeconds') ?? 0);
    const timer = timeout > 0 ? setTimeout(() => res.end(), timeout * 1000) : undefined;
    const stop = () => {
      off();
      clearTimeout(timer);
      this.watches.delete(res);
    };
    res.on('close', stop);
    req.on('close', stop);
  }
}

function withKind(r: ResourceType, o: Obj): Obj {
  return { apiVersion: apiVersionOf(r), kind: r.kind, ...o };
}

function status(s: HttpStatus): unknown {
  return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message: s.message, reason: s.reason, ...(s.details ? { details: s.details } : {}), code: s.code };
}

/** RFC 7386 merge patch; strategic merge patch is served the same way (lists replaced whole). */
function mergePatch(target: unknown, patch: unknown): unknown {
  if (patch === null || typeof patch !== 'object' || Array.isArray(patch)) return patch;
  const out: Record<string, unknown> = target && typeof target === 'object' && !Array.isArray(target) ? { ...(target as Record<string, unknown>) } : {};
  for (const [k, v] of Object.entries(patch as Record<string, unknown>)) {
    if (k.startsWith('$')) continue; // strategic-merge directives
    if (v === null) delete out[k];
    else out[k] = mergePatch(out[k], v);
  }
  return out;
}

function applyPatch(cur: Obj, patch: unknown, contentType: string): Obj {
  const type = contentType.split(';')[0]!.trim();
  if (type === 'application/merge-patch+json' || type === 'application/strategic-merge-patch+json') return mergePatch(cur, patch) as Obj;
  throw new HttpStatus(415, 'UnsupportedMediaType', `the body of the request was in an unsupported format: ${contentType} (this server takes merge and strategic merge patches)`);
}

function age(o: Obj): string {
  const s = Math.max(0, Math.round((Date.now() - new Date(o.metadata.creationTimestamp ?? Date.now()).getTime()) / 1000));
  return s < 120 ? `${s}s` : `${Math.round(s / 60)}m`;
}

/** The Table `kubectl get` asks for (Accept: application/json;as=Table;g=meta.k8s.io;v=v1). */
function toTable(r: ResourceType, items: Obj[], rv: number): unknown {
  const col = (name: string, type = 'string') => ({ name, type, format: name === 'Name' ? 'name' : '', description: name, priority: 0 });
  let columns = [col('Name'), col('Age')];
  let cells = (o: Obj): unknown[] => [o.metadata.name, age(o)];
  if (r.kind === 'Deployment') {
    columns = [col('Name'), col('Ready'), col('Up-to-date', 'integer'), col('Available', 'integer'), col('Age')];
    cells = (o) => [o.metadata.name, `${o.status?.readyReplicas ?? 0}/${o.spec?.replicas ?? 0}`, o.status?.updatedReplicas ?? 0, o.status?.availableReplicas ?? 0, age(o)];
  } else if (r.kind === 'Pod') {
    columns = [col('Name'), col('Ready'), col('Status'), col('Restarts', 'integer'), col('Age'), col('Node')];
    cells = (o) => [
      o.metadata.name, `${isReady(o) ? 1 : 0}/${o.spec?.containers?.length ?? 1}`, o.metadata.deletionTimestamp ? 'Terminating' : o.status?.phase ?? 'Pending',
      (o.status?.containerStatuses ?? []).reduce((n: number, c: { restartCount?: number }) => n + (c.restartCount ?? 0), 0), age(o), o.spec?.nodeName ?? '<none>',
    ];
  }
  return {
    kind: 'Table', apiVersion: 'meta.k8s.io/v1', metadata: { resourceVersion: String(rv) }, columnDefinitions: columns,
    rows: items.map((o) => ({ cells: cells(o), object: { kind: 'PartialObjectMetadata', apiVersion: 'meta.k8s.io/v1', metadata: o.metadata } })),
  };
}
