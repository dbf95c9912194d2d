/**
 * Two frontends (RegistryService instances) sharing one real redis-server: changes reach the other
 * through the feed, concurrent registrations leave one consistent registry, a cut-off frontend
 * catches up, stale leaders are fenced, artifacts travel through the store, and a Redis that is
 * gone fails calls quickly.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { textLogger } from '../../src/observability/log.ts';
import { RegistryService, type NewVersion } from '../../src/registry/registry-service.ts';
import { RedisStore } from '../../src/store/redis-store.ts';
import { isFenced, type FeedEvent, type Store } from '../../src/store/store.ts';
import { freePort } from '../helpers/ports.ts';
import { startRedis, whyNoRedis, type TestRedis } from '../helpers/redis.ts';
import { ECHO_MODEL, tempDir, writeJsModel } from '../helpers/server.ts';

let redis: TestRedis | undefined;
let raw: Redis | undefined;
let cluster = 0;
const cleanup: Array<() => Promise<void> | void> = [];

before(async () => {
  redis = await startRedis();
  if (redis) raw = new Redis(redis.url, { maxRetriesPerRequest: 1 });
});
after(async () => {
  for (const c of cleanup.reverse()) await c();
  raw?.disconnect();
  await redis?.stop();
});

async function until<T>(probe: () => T | undefined | false, ms = 15_000, what = 'a condition'): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = probe();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** A frontend: its own store connection and artifact directory; `wrap` may stand between it and the store. */
async function frontend(prefix: string, wrap: (s: Store) => Store = (s) => s) {
  const store = new RedisStore({ url: redis!.url, prefix });
  const dir = tempDir('clipper-fe-');
  const logs: string[] = [];
  const r = new RegistryService(wrap(store), { artifactDir: join(dir, 'artifacts'), artifactRoot: tmpdir(), maxArtifactBytes: 1 << 20, allowCommandRuntime: false, logger: textLogger((m) => logs.push(m)) });
  await r.load();
  const events: Array<[string, ...unknown[]]> = [];
  for (const name of ['app-added', 'app-deleted', 'app-changed', 'links-changed', 'version-added', 'version-deleted', 'current-changed', 'version-changed', 'autoscaling-changed']) {
    r.on(name, (...args: unknown[]) => events.push([name, ...args]));
  }
  cleanup.push(() => { r.close(); return store.close(); });
  return { r, store, events, logs, artifactDir: join(dir, 'artifacts') };
}

const newApp = (name: string) => ({ name, inputType: 'strings' as const, defaultOutput: 'd', latencySloMicros: 100_000 });
const imageVersion = (name: string, version: string): NewVersion => ({
  name, version, inputType: 'strings', labels: [], runtime: 'image', containerName: 'example/model:1', modelDataPath: undefined, batchSize: 0, replicas: 1,
});
const viewOf = (r: RegistryService) => ({
  apps: r.listApps().sort((a, b) => a.name.localeCompare(b.name)),
  versions: r.listVersions().sort((a, b) => `${a.name}:${a.version}`.localeCompare(`${b.name}:${b.version}`)),
  current: Object.fromEntries(r.modelNames().sort().map((m) => [m, r.currentVersion(m)])),
  links: Object.fromEntries(r.listApps().map((a) => [a.name, r.linkedModels(a.name)])),
});

describe('registry on a shared Redis', () => {
  it('an app added through one frontend is known to the other, with its events', async (t) => {
    if (!redis) return t.skip(`no redis-server: ${whyNoRedis()}`);
    const prefix = `c${cluster++}:`;
    const a = await frontend(prefix);
    const b = await frontend(prefix);
    await a.r.addApp(newApp('shop'));
    assert.ok(a.r.getApp('shop'), 'read-your-writes on the writing frontend');
    await until(() => b.r.getApp('shop'), 15_000, 'B to learn of the app');
    await a.r.addVersion(imageVersion('m', '1'));
    await a.r.linkModels('shop', ['m']);
    await until(() => b.r.linkedModels('shop').length === 1, 15_000, 'B to learn of the link');
    await b.r.setReplicas('m', '1', 3);
    await until(() => a.r.getVersion('m', '1')?.replicas === 3, 15_000, 'A to learn of the replicas');
    assert.deepEqual(b.events.map((e) => e[0]), ['app-added', 'version-added', 'current-changed', 'links-changed', 'version-changed']);
    assert.deepEqual(b.events[2], ['current-changed', 'm', '1', undefined]);
    assert.deepEqual(viewOf(a.r), viewOf(b.r));
  });

  it('50 concurrent registrations over both frontends: one winner per name, one consistent registry', async (t) => {
    if (!redis) return t.skip(`no redis-server: ${whyNoRedis()}`);
    const prefix = `c${cluster++}:`;
    const fe = [await frontend(prefix), await frontend(prefix)];
    const ops: Array<{ key: string; run: () => Promise<unknown> }> = [];
    for (let i = 0; i < 50; i++) {
      const r = fe[(i >> 1) % 2]!.r; // each name is tried through both frontends
      if (i % 2 === 0) ops.push({ key: `app:${i % 7}`, run: () => r.addApp(newApp(`app-${i % 7}`)) });
      else ops.push({ key: `m:${i % 5}`, run: () => r.addVersion(imageVersion('m', String(i % 5))) });
    }
    const results = await Promise.allSettled(ops.map((o) => o.run()));
    const byKey = new Map<string, PromiseSettledResult<unknown>[]>();
    ops.forEach((o, i) => byKey.set(o.key, [...(byKey.get(o.key) ?? []), results[i]!]));
    for (const [key, rs] of byKey) {
      assert.equal(rs.filter((x) => x.status === 'fulfilled').length, 1, `one winner for ${key}`);
      for (const x of rs) if (x.status === 'rejected') assert.equal((x.reason as { code?: string }).code, 'ALREADY_EXISTS', `${key}: ${String(x.reason)}`);
    }
    const fresh = await frontend(prefix);
    await until(() => fe.every((f) => f.r.revision === fresh.r.revision), 15_000, 'both frontends to apply every change');
    assert.deepEqual(viewOf(fe[0]!.r), viewOf(fresh.r));
    assert.deepEqual(viewOf(fe[1]!.r), viewOf(fresh.r));
    assert.equal(fresh.r.listApps().length, 7);
    assert.equal(fresh.r.versionsOf('m').length, 5);
  });

  it('survives Redis being killed and restarted: nothing lost, both reconnect and apply later changes', async (t) => {
    if (!redis) return t.skip(`no redis-server: ${whyNoRedis()}`);
    const prefix = `c${cluster++}:`;
    const a = await frontend(prefix);
    const b = await frontend(prefix);
    await a.r.addApp(newApp('before'));
    await until(() => b.r.getApp('before'));
    await redis.kill();
    await assert.rejects(a.r.addApp(newApp('during')), (e: any) => {
      assert.equal(e.code, 'STORAGE_UNAVAILABLE');
      assert.match(e.message, new RegExp(`Redis at 127\\.0\\.0\\.1:${redis!.port}`));
      return true;
    });
    await redis.restart();
    // Each frontend's connection comes back on its own; a write may need a moment for it.
    const end = Date.now() + 15_000;
    for (;;) {
      try { await b.r.addApp(newApp('after')); break; } catch (e) { if (Date.now() > end) throw e; await new Promise((r) => setTimeout(r, 100)); }
    }
    await until(() => a.r.getApp('after'), 15_000, 'A to apply a change made after the restart');
    assert.ok(a.r.getApp('before') && b.r.getApp('before'), 'nothing lost');
    assert.equal(a.r.getApp('during'), undefined);
    assert.deepEqual(viewOf(a.r), viewOf(b.r));
  });

  it('a frontend whose last revision was trimmed from the stream reloads a snapshot and emits the differences', async (t) => {
    if (!redis) return t.skip(`no redis-server: ${whyNoRedis()}`);
    const prefix = `c${cluster++}:`;
    const a = await frontend(prefix);
    await a.r.addApp(newApp('gone'));
    await a.r.addVersion(imageVersion('m', '1'));
    // B loads now but starts following the feed only when released: meanwhile it is "cut off".
    let release!: () => void;
    const held = new Promise<void>((r) => { release = r; });
    const b = await frontend(prefix, (s) => Object.assign(Object.create(s) as Store, {
      watch: (from: number, on: (e: FeedEvent) => void, err?: (e: unknown) => void) => {
        let sub: { close(): void } | undefined;
        void held.then(() => { sub = s.watch(from, on, err); });
        return { close: () => sub?.close() };
      },
    }));
    await a.r.deleteApp('gone');
    await a.r.addApp(newApp('new'));
    await a.r.addVersion(imageVersion('m', '2'));
    await raw!.xtrim(`${prefix}feed`, 'MAXLEN', 0);
    release();
    await until(() => b.r.getApp('new') && b.r.getVersion('m', '2'), 15_000, 'B to reload');
    assert.deepEqual(viewOf(b.r), viewOf(a.r));
    const names = b.events.map((e) => e[0]).sort();
    assert.deepEqual(names, ['app-added', 'app-deleted', 'current-changed', 'version-added']);
    assert.deepEqual(b.events.find((e) => e[0] === 'current-changed'), ['current-changed', 'm', '2', '1']);
    assert.ok(b.logs.some((l) => /reloaded from the store/.test(l)));
  });

  it('fencing: a stale token is refused, the current one accepted', async (t) => {
    if (!redis) return t.skip(`no redis-server: ${whyNoRedis()}`);
    const prefix = `c${cluster++}:`;
    const a = await frontend(prefix);
    await a.r.addVersion(imageVersion('m', '1'));
    await raw!.set(`${prefix}leader:token`, '7');
    await assert.rejects(a.r.setReplicas('m', '1', 4, { byAutoscaler: true, fence: 6 }), (e) => isFenced(e));
    await assert.rejects(a.r.setAutoscaling('m', { min: 1 }, { fence: '6' }), (e) => isFenced(e));
    assert.equal(a.r.getVersion('m', '1')!.replicas, 1);
    assert.equal((await a.r.setReplicas('m', '1', 4, { byAutoscaler: true, fence: 7 })).replicas, 4);
    await a.r.setAutoscaling('m', { min: 1 }, { fence: 7 });
    assert.deepEqual(a.r.autoscaling('m'), { min: 1 });
    assert.equal((await a.r.setReplicas('m', '1', 2)).replicas, 2, 'writes without a token are not fenced');
  });

  it('an artifact registered through A is materialised by B with identical content, and leaves Redis with its last version', async (t) => {
    if (!redis) return t.skip(`no redis-server: ${whyNoRedis()}`);
    const prefix = `c${cluster++}:`;
    const a = await frontend(prefix);
    const b = await frontend(prefix);
    const src = writeJsModel(ECHO_MODEL('shared'));
    const v = await a.r.addVersion({ ...imageVersion('js', '1'), runtime: 'js', containerName: '', modelDataPath: src });
    const seen = await until(() => b.r.getVersion('js', '1'));
    const path = await b.r.localArtifact(seen);
    assert.ok(path.startsWith(b.artifactDir), `${path} is in B's artifact directory`);
    assert.equal(readFileSync(join(path, 'index.mjs'), 'utf8'), readFileSync(join(v.artifactPath, 'index.mjs'), 'utf8'));
    assert.equal(await b.r.localArtifact(seen), path, 'fetched once');
    assert.equal(await a.r.localArtifact(v), v.artifactPath, "A uses its own copy");
    assert.equal(await raw!.exists(`${prefix}blob:${v.artifactHash}`), 1);
    await a.r.deleteVersion('js', '1');
    await until(() => !b.r.getVersion('js', '1'));
    assert.equal(await raw!.exists(`${prefix}blob:${v.artifactHash}`), 0);
    await until(() => !existsSync(path) && !existsSync(v.artifactPath), 15_000, 'both local copies to go');
  });

  it('a Redis that is not there fails calls quickly with a clear error', async () => {
    const port = await freePort();
    const store = new RedisStore({ url: `redis://127.0.0.1:${port}/0`, prefix: 'x:' });
    try {
      const outcome = await Promise.race([
        store.putApp({ ...newApp('a'), overloadDefault: false, policy: 'single', policyParams: {}, createdAt: 1 }).then(() => 'saved', (e: any) => e),
        new Promise((r) => setTimeout(() => r('hung'), 20_000)),
      ]);
      assert.equal((outcome as any).code, 'STORAGE_UNAVAILABLE', String(outcome));
      assert.match((outcome as Error).message, new RegExp(`^could not save application a: Redis at 127\\.0\\.0\\.1:${port} is unreachable \\(ECONNREFUSED\\)`));
    } finally {
      await store.close();
    }
  });
});
