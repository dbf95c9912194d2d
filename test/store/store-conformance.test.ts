/**
 * One suite of Store behaviour, run against SQLite (a temp file) and Redis (a private
 * redis-server): atomic writes with their checks, the feed's batches and revisions, state.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { ChangeBatch } from '../../src/registry/registry-view.ts';
import type { Application, ModelVersion } from '../../src/registry/types.ts';
import { RedisStore } from '../../src/store/redis-store.ts';
import { SqliteStore } from '../../src/store/sqlite-store.ts';
import type { FeedEvent, Store } from '../../src/store/store.ts';
import { startRedis, whyNoRedis, type TestRedis } from '../helpers/redis.ts';
import { tempDir } from '../helpers/server.ts';

const app = (name: string): Application => ({ name, inputType: 'doubles', defaultOutput: '0', latencySloMicros: 1000, overloadDefault: false, policy: 'single', policyParams: {}, createdAt: 1 });
const version = (v: string, over: Partial<ModelVersion> = {}): ModelVersion => ({
  name: 'm', version: v, inputType: 'doubles', labels: [], runtime: 'js', containerName: '', artifactPath: '',
  artifactHash: '', batchSize: 0, replicas: 1, cpus: 0, memoryMb: 0, createdAt: Number(v), ...over,
});

async function until(cond: () => boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('timed out waiting for a condition');
    await new Promise((r) => setTimeout(r, 10));
  }
}

function conformance(kind: string, open: () => Promise<Store>, skip?: () => string | false) {
  describe(`Store conformance: ${kind}`, () => {
    it('writes, reads back, and refuses duplicates and a second input type atomically', async (t) => {
      const why = skip?.();
      if (why) return t.skip(why);
      const s = await open();
      try {
        await s.putApp(app('a'));
        await assert.rejects(s.putApp(app('a')), (e: any) => e.code === 'ALREADY_EXISTS');
        await s.putVersion(version('1', { labels: [] }), true);
        await s.putVersion(version('2', { labels: ['x'] }), true);
        await assert.rejects(s.putVersion(version('2'), true), (e: any) => e.code === 'ALREADY_EXISTS');
        await assert.rejects(s.putVersion(version('3', { inputType: 'strings' }), true), (e: any) => e.code === 'TYPE_MISMATCH');
        await s.setLinks('a', ['m']);
        await s.setReplicas('m', '1', 3);
        await s.setResources('m', '2', 0.5, 256);
        await s.setAutoscaling('m', { min: 1, max: 4 });
        await s.updateAppPolicy('a', 'exp3', { eta: 0.1, arms: [] });
        const snap = await s.load();
        assert.deepEqual(snap.apps.map((x) => [x.name, x.policy, x.policyParams]), [['a', 'exp3', { eta: 0.1, arms: [] }]]);
        assert.deepEqual(snap.versions.map((x) => [x.version, x.replicas, x.cpus, x.memoryMb, x.labels]), [['1', 3, 0, 0, []], ['2', 1, 0.5, 256, ['x']]]);
        assert.deepEqual(snap.currentVersions, { m: '2' }, 'the refused writes left current alone');
        assert.deepEqual(snap.links, [{ appName: 'a', modelName: 'm' }]);
        assert.deepEqual(snap.autoscaling, { m: { min: 1, max: 4 } });

        await s.setAutoscaling('m', undefined, { version: '1', count: 5 });
        await s.deleteVersion('m', '2', '1');
        let after = await s.load();
        assert.deepEqual(after.currentVersions, { m: '1' });
        assert.deepEqual(after.versions.map((x) => [x.version, x.replicas]), [['1', 5]]);
        assert.deepEqual(after.autoscaling, {});
        await s.deleteVersion('m', '1', undefined);
        after = await s.load();
        assert.deepEqual([after.versions, after.currentVersions, after.links], [[], {}, []], 'the last version takes its links with it');
        await s.putVersion(version('9', { inputType: 'strings' }), true); // a model with no versions left takes any type again
      } finally {
        await s.close();
      }
    });

    it('every write is one numbered batch on the feed, in order', async (t) => {
      const why = skip?.();
      if (why) return t.skip(why);
      const s = await open();
      const batches: ChangeBatch[] = [];
      const start = (await s.load()).rev;
      const sub = s.watch(start, (e: FeedEvent) => { if ('batch' in e) batches.push(e.batch); });
      try {
        const revs = [await s.putApp(app('b')), await s.putVersion(version('1'), true), await s.setLinks('b', ['m']), await s.deleteVersion('m', '1', undefined)];
        assert.deepEqual(revs, [start + 1, start + 2, start + 3, start + 4]);
        await until(() => batches.length >= 4);
        assert.deepEqual(batches.map((b) => b.rev), revs);
        assert.deepEqual(batches.map((b) => b.changes.map((c) => c.kind)), [['app-put'], ['version-put', 'current-set'], ['links-set'], ['version-deleted', 'current-set']]);
        assert.equal((await s.load()).rev, start + 4);
      } finally {
        sub.close();
        await s.close();
      }
    });

    it('keeps state, and drops an application\'s policy state with it', async (t) => {
      const why = skip?.();
      if (why) return t.skip(why);
      const s = await open();
      try {
        await s.putApp(app('c'));
        await s.putState('app/c/exp3', '{"w":1}');
        await s.putState('app-keys/c', '["k"]');
        assert.equal(await s.getState('app/c/exp3'), '{"w":1}');
        await s.deleteState('app-keys/c');
        assert.equal(await s.getState('app-keys/c'), undefined);
        await s.deleteApp('c');
        assert.equal(await s.getState('app/c/exp3'), undefined);
      } finally {
        await s.close();
      }
    });
  });
}

conformance('sqlite', async () => new SqliteStore(join(tempDir('clipper-conf-'), 'registry.sqlite')));

let redis: TestRedis | undefined;
let n = 0;
before(async () => { redis = await startRedis(); });
after(async () => { await redis?.stop(); });
conformance('redis', async () => new RedisStore({ url: redis!.url, prefix: `conf${n++}:` }), () => (redis ? false : `no redis-server: ${whyNoRedis()}`));
