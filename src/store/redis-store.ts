/**
 * The shared store: the registry, free-form state, autoscaling settings and artifact contents in
 * one Redis, under a key prefix (default `clipper:`) so that clusters can share a server.
 *
 * Writes are Lua scripts (redis-lua.ts): checks, data, revision and feed entry in one atomic step.
 * The feed is a stream (entry id = revision) read by a dedicated connection with XREAD BLOCK; a
 * watcher that finds a gap (the stream was trimmed past it) or a revision counter behind its own
 * (Redis lost its data) reloads a snapshot instead.
 *
 * Redis down: no command waits in a queue (enableOfflineQueue off, no retries per request, a
 * command timeout); a call waits at most `connectWaitMs` for a connection in progress, then fails
 * with STORAGE_UNAVAILABLE naming Redis and its address. ioredis keeps reconnecting on its own.
 */
import { Redis, type RedisOptions } from 'ioredis';
import { ServingError, type ErrorCode } from '../errors.ts';
import type { RegistryChange } from '../registry/registry-view.ts';
import { versionKey, type Application, type ModelVersion } from '../registry/types.ts';
import { REDIS_KEYS, SCRIPTS, type ScriptName } from './redis-lua.ts';
import { fencedError, type FeedEvent, type FeedSubscription, type FencingToken, type Store, type StoreSnapshot } from './store.ts';

export interface RedisStoreOptions {
  /** `redis://[user:password@]host:port/db` */
  url: string;
  prefix?: string;
  /** Longest a command may take before it fails (default 3 s; artifact transfers get 60 s). */
  commandTimeoutMs?: number;
  /** Longest a call waits for a connection that is being made (default 2 s). */
  connectWaitMs?: number;
  /** Feed entries kept (approximately); a frontend further behind reloads a snapshot. */
  feedMaxLen?: number;
  /** How long an uploaded artifact lasts before a version refers to it (default 1 h). */
  pendingArtifactMs?: number;
  log?: (msg: string) => void;
}

const FEED_BLOCK_MS = 1000;
const SERVING_CODES = new Set<ErrorCode>(['ALREADY_EXISTS', 'TYPE_MISMATCH', 'APP_NOT_FOUND', 'MODEL_NOT_FOUND', 'VERSION_NOT_FOUND', 'STORAGE_UNAVAILABLE']);

type Script = (...args: Array<string | number>) => Promise<unknown>;

export class RedisStore implements Store {
  readonly shared = true;
  readonly prefix: string;
  /** host:port, for messages. */
  readonly address: string;
  private readonly redis: Redis;
  private blobClient: Redis | undefined;
  private readonly readers = new Set<Redis>();
  private readonly keys: string[];
  private readonly feedMaxLen: number;
  private readonly connectWaitMs: number;
  private lastError = new WeakMap<Redis, string>();
  private closed = false;

  constructor(private readonly opts: RedisStoreOptions) {
    this.prefix = opts.prefix ?? 'clipper:';
    const u = new URL(opts.url);
    if (u.protocol !== 'redis:' && u.protocol !== 'rediss:') throw new ServingError('INVALID_INPUT', `the store URL must be redis://host:port/db, not ${JSON.stringify(opts.url)}`);
    this.address = `${u.hostname}:${u.port || 6379}`;
    this.keys = REDIS_KEYS.map((k) => this.prefix + k);
    this.feedMaxLen = opts.feedMaxLen ?? 5000;
    this.connectWaitMs = opts.connectWaitMs ?? 2000;
    this.redis = this.client(opts.commandTimeoutMs ?? 3000);
    for (const [name, lua] of Object.entries(SCRIPTS)) this.redis.defineCommand(name, { numberOfKeys: this.keys.length + 1, lua });
  }

  private client(commandTimeout: number | undefined): Redis {
    const options: RedisOptions = {
      enableOfflineQueue: false, maxRetriesPerRequest: 0, commandTimeout, connectTimeout: 2000,
      retryStrategy: (times) => Math.min(100 * times, 1000), enableReadyCheck: true,
    };
    const c = new Redis(this.opts.url, options);
    c.on('error', (e: Error & { code?: string }) => this.lastError.set(c, e.code ?? e.message));
    c.on('ready', () => this.lastError.delete(c));
    return c;
  }

  // ---------- reads ----------

  async load(): Promise<StoreSnapshot> {
    const r = await this.script('read the registry', 'clSnapshot', []) as [string, ...string[][]];
    const [rev, apps, policies, versions, replicas, resources, current, links, autoscaling] = r;
    const pairs = (flat: string[]) => { const m = new Map<string, string>(); for (let i = 0; i < flat.length; i += 2) m.set(flat[i]!, flat[i + 1]!); return m; };
    const policy = pairs(policies!);
    const reps = pairs(replicas!);
    const res = pairs(resources!);
    return {
      rev: Number(rev),
      apps: [...pairs(apps!)].map(([name, json]) => ({ ...JSON.parse(json), ...JSON.parse(policy.get(name) ?? '{}') }) as Application).sort((a, b) => cmp(a.name, b.name)),
      versions: [...pairs(versions!)].map(([k, json]) => ({ ...JSON.parse(json), replicas: Number(reps.get(k) ?? 0), ...JSON.parse(res.get(k) ?? '{}') }) as ModelVersion)
        .sort((a, b) => cmp(a.name, b.name) || a.createdAt - b.createdAt),
      currentVersions: Object.fromEntries(pairs(current!)),
      links: [...pairs(links!)].flatMap(([appName, json]) => (JSON.parse(json) as string[]).map((modelName) => ({ appName, modelName })))
        .sort((a, b) => cmp(a.appName, b.appName) || cmp(a.modelName, b.modelName)),
      autoscaling: Object.fromEntries([...pairs(autoscaling!)].map(([m, json]) => [m, JSON.parse(json) as Record<string, unknown>])),
    };
  }

  // ---------- registry writes ----------

  putApp(a: Application): Promise<number> {
    const { policy, policyParams, ...rest } = a;
    return this.write(`save application ${a.name}`, 'clPutApp', [a.name, JSON.stringify(rest), JSON.stringify({ policy, policyParams }), changes({ kind: 'app-put', app: a })]);
  }

  deleteApp(name: string): Promise<number> {
    return this.write(`delete application ${name}`, 'clDeleteApp', [name, changes({ kind: 'app-deleted', name })], undefined, this.appStateKey(name));
  }

  putVersion(v: ModelVersion, makeCurrent: boolean): Promise<number> {
    const batch: RegistryChange[] = [{ kind: 'version-put', version: v }];
    if (makeCurrent) batch.push({ kind: 'current-set', model: v.name, version: v.version });
    return this.write(`save model ${v.name} version ${v.version}`, 'clPutVersion', [
      versionKey(v.name, v.version), v.name, v.version, v.inputType, JSON.stringify(v), v.replicas,
      JSON.stringify({ cpus: v.cpus, memoryMb: v.memoryMb }), makeCurrent ? '1' : '0', v.artifactHash, changes(...batch),
    ]);
  }

  deleteVersion(name: string, version: string, nextCurrent: string | undefined): Promise<number> {
    const one = (c: RegistryChange) => JSON.stringify(c);
    return this.write(`delete model ${name} version ${version}`, 'clDeleteVersion', [
      versionKey(name, version), name, version, nextCurrent === undefined ? '' : versionKey(name, nextCurrent), nextCurrent ?? '',
      one({ kind: 'version-deleted', name, version }), one({ kind: 'current-set', model: name, version: nextCurrent }), one({ kind: 'current-set', model: name, version: undefined }),
    ]);
  }

  setCurrentVersion(name: string, version: string): Promise<number> {
    return this.write(`make version ${version} of model ${name} current`, 'clSetCurrent', [versionKey(name, version), name, version, changes({ kind: 'current-set', model: name, version })]);
  }

  setReplicas(name: string, version: string, replicas: number, fence?: FencingToken): Promise<number> {
    return this.write(`save the replica count of model ${name} version ${version}`, 'clSetReplicas',
      [versionKey(name, version), replicas, changes({ kind: 'version-changed', name, version, set: { replicas } })], fence);
  }

  setResources(name: string, version: string, cpus: number, memoryMb: number): Promise<number> {
    return this.write(`save the resources of model ${name} version ${version}`, 'clSetResources',
      [versionKey(name, version), JSON.stringify({ cpus, memoryMb }), changes({ kind: 'version-changed', name, version, set: { cpus, memoryMb } })]);
  }

  setAutoscaling(model: string, settings: Record<string, unknown> | undefined, replicas?: { version: string; count: number }, fence?: FencingToken): Promise<number> {
    const batch: RegistryChange[] = [{ kind: 'autoscaling-set', model, settings }];
    if (replicas) batch.push({ kind: 'version-changed', name: model, version: replicas.version, set: { replicas: replicas.count } });
    return this.write(`save the autoscaling settings of model ${model}`, 'clSetAutoscaling', [
      model, settings ? JSON.stringify(settings) : '', replicas ? versionKey(model, replicas.version) : '', replicas?.count ?? 0, changes(...batch),
    ], fence);
  }

  setLinks(appName: string, modelNames: string[]): Promise<number> {
    return this.write(`save the links of application ${appName}`, 'clSetLinks', [appName, JSON.stringify(modelNames), changes({ kind: 'links-set', app: appName, models: [...modelNames] })]);
  }

  updateAppPolicy(name: string, policy: string, params: Record<string, unknown>): Promise<number> {
    return this.write(`save the policy of application ${name}`, 'clSetPolicy',
      [name, JSON.stringify({ policy, policyParams: params }), changes({ kind: 'app-policy', name, policy, policyParams: params })]);
  }

  // ---------- state ----------

  async getState(key: string): Promise<string | undefined> {
    return (await this.run('read policy state', (r) => r.hget(this.stateKey(key), key))) ?? undefined;
  }

  async putState(key: string, value: string): Promise<void> {
    await this.run('save policy state', (r) => r.hset(this.stateKey(key), key, value));
  }

  async deleteState(key: string): Promise<void> {
    await this.run('delete policy state', (r) => r.hdel(this.stateKey(key), key));
  }

  // ---------- artifacts ----------

  async putArtifact(hash: string, content: Buffer): Promise<void> {
    const ms = this.opts.pendingArtifactMs ?? 3_600_000;
    // NX: an existing copy (same hash, same content) keeps its own lifetime; the version write persists it.
    await this.run(`upload artifact ${hash.slice(0, 16)}`, async (r) => {
      if ((await r.set(this.blobKey(hash), content, 'PX', ms, 'NX')) === null) await r.pexpire(this.blobKey(hash), ms, 'GT');
    }, this.blobs());
  }

  async getArtifact(hash: string): Promise<Buffer | undefined> {
    return (await this.run(`download artifact ${hash.slice(0, 16)}`, (r) => r.getBuffer(this.blobKey(hash)), this.blobs())) ?? undefined;
  }

  // ---------- feed ----------

  watch(fromRev: number, onEvent: (e: FeedEvent) => void, onError: (e: unknown) => void = () => {}): FeedSubscription {
    const reader = this.client(FEED_BLOCK_MS + 5000);
    this.readers.add(reader);
    let last = fromRev;
    let stopped = false;
    let checkCounter = true;
    const key = (k: (typeof REDIS_KEYS)[number]) => this.keys[REDIS_KEYS.indexOf(k)]!;
    reader.on('ready', () => { checkCounter = true; });
    const snapshot = async () => {
      const s = await this.load();
      last = s.rev;
      onEvent({ snapshot: s });
    };
    const loop = async () => {
      let failures = 0;
      while (!stopped && !this.closed) {
        try {
          await this.ready(reader);
          // At start and after each reconnect: did Redis lose our data (revisions restarted below ours), or
          // was the stream trimmed past us with nothing newer left in it to show the gap?
          if (checkCounter) {
            const rev = Number(await reader.get(key('rev')) ?? 0);
            const next = rev > last ? await reader.xrange(key('feed'), `${last + 1}-0`, `${last + 1}-0`) : [];
            checkCounter = false;
            if (rev < last || (rev > last && next.length === 0)) { await snapshot(); continue; }
          }
          const res = await reader.xread('COUNT', 1000, 'BLOCK', FEED_BLOCK_MS, 'STREAMS', key('feed'), `${last}-0`);
          failures = 0;
          for (const [, entries] of res ?? []) {
            for (const [id, fields] of entries) {
              const rev = Number(id.split('-')[0]);
              if (rev <= last) continue;
              if (rev !== last + 1) { await snapshot(); break; }
              last = rev;
              onEvent({ batch: { rev, changes: JSON.parse(fields[1]!) as RegistryChange[] } });
            }
          }
        } catch (e) {
          if (stopped || this.closed) break;
          checkCounter = true;
          onError(this.toError(e, 'read the change feed', reader));
          await new Promise((r) => setTimeout(r, Math.min(100 * ++failures, 1000)));
        }
      }
    };
    void loop();
    return {
      close: () => {
        stopped = true;
        this.readers.delete(reader);
        reader.disconnect();
      },
    };
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const r of this.readers) r.disconnect();
    this.readers.clear();
    this.blobClient?.disconnect();
    this.redis.disconnect();
  }

  // ---------- plumbing ----------

  private async write(what: string, name: ScriptName, args: Array<string | number>, fence?: FencingToken, extraKey?: string): Promise<number> {
    return Number(await this.script(what, name, args, fence, extraKey));
  }

  /** Runs a script with the common KEYS and ARGV (redis-lua.ts) before its own arguments. */
  private script(what: string, name: ScriptName, args: Array<string | number>, fence?: FencingToken, extraKey = `${this.prefix}app-state:`): Promise<unknown> {
    const argv = [this.feedMaxLen, fence === undefined ? '' : String(fence), this.blobKey(''), ...args];
    return this.run(what, (r) => (r as unknown as Record<ScriptName, Script>)[name](...this.keys, extraKey, ...argv), this.redis, fence);
  }

  private async run<T>(what: string, fn: (r: Redis) => Promise<T>, client = this.redis, fence?: FencingToken): Promise<T> {
    if (this.closed) throw new ServingError('STORAGE_UNAVAILABLE', `could not ${what}: the connection to Redis at ${this.address} is closed`);
    try {
      await this.ready(client);
      return await fn(client);
    } catch (e) {
      throw this.toError(e, what, client, fence);
    }
  }

  /** Waits (at most connectWaitMs) for a connection being made; fails at once when there is none. */
  private async ready(client: Redis): Promise<void> {
    if (client.status === 'ready') return;
    if (client.status === 'end' || client.status === 'close' && this.closed) throw new Error('connection closed');
    await new Promise<void>((resolve, reject) => {
      const done = (err?: Error) => { clearTimeout(timer); client.off('ready', ok); err ? reject(err) : resolve(); };
      const ok = () => done();
      const timer = setTimeout(() => done(new Error(this.lastError.get(client) ?? 'not connected')), this.connectWaitMs);
      client.once('ready', ok);
    });
  }

  private toError(e: unknown, what: string, client: Redis, fence?: FencingToken): unknown {
    if (e instanceof ServingError) return e;
    const err = e as Error & { code?: string };
    if (err.name === 'ReplyError') {
      const [code, ...rest] = err.message.split(' ');
      if (code === 'FENCED') return fencedError(fence ?? rest[2] ?? '?');
      if (SERVING_CODES.has(code as ErrorCode)) return new ServingError(code as ErrorCode, rest.join(' '));
      return new ServingError('STORAGE_UNAVAILABLE', `could not ${what}: Redis at ${this.address} refused: ${err.message}`);
    }
    const cause = this.lastError.get(client) ?? err.code ?? err.message;
    return new ServingError('STORAGE_UNAVAILABLE', `could not ${what}: Redis at ${this.address} is unreachable (${cause})`);
  }

  private blobs(): Redis {
    return (this.blobClient ??= this.client(60_000));
  }

  private blobKey(hash: string): string {
    return `${this.prefix}blob:${hash}`;
  }

  /** `app/<app>/…` (selection state) lives in the application's own hash, dropped with it. */
  private stateKey(key: string): string {
    const app = /^app\/([^/]+)\//.exec(key)?.[1];
    return app === undefined ? `${this.prefix}state` : this.appStateKey(app);
  }

  private appStateKey(app: string): string {
    return `${this.prefix}app-state:${app}`;
  }
}

function changes(...cs: RegistryChange[]): string {
  return JSON.stringify(cs);
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
