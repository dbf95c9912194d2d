/** Selection-policy state shared by two frontends through one Redis: a held state is read again once it is older than refreshMs. */
import assert from 'node:assert/strict';
import { after, before, it } from 'node:test';
import { PolicyStateStore } from '../../src/query/policy-state.ts';
import { RedisStore } from '../../src/store/redis-store.ts';
import { startRedis, whyNoRedis, type TestRedis } from '../helpers/redis.ts';

let redis: TestRedis | undefined;
before(async () => { redis = await startRedis(); });
after(async () => { await redis?.stop(); });

it("a frontend sees another's policy state once its copy is older than refreshMs, and not before", async (t) => {
  if (!redis) return t.skip(`no redis-server: ${whyNoRedis()}`);
  const [sa, sb] = [new RedisStore({ url: redis.url, prefix: 'ps:' }), new RedisStore({ url: redis.url, prefix: 'ps:' })];
  try {
    let now = 0;
    const a = new PolicyStateStore(sa, 100, { now: () => now });
    const b = new PolicyStateStore(sb, 100, { now: () => now });
    const app = { app: 'x', policy: 'exp3' };
    const user = { ...app, uid: 'u1' };
    assert.deepEqual(await b.get(app, () => ({ w: 0 })), { w: 0 });
    assert.deepEqual(await b.get(user, () => ({ w: 0 })), { w: 0 });
    await a.put(app, { w: 1 });
    await a.put(user, { w: 2 });
    now = 500;
    assert.deepEqual(await b.get(app, () => ({ w: 0 })), { w: 0 }, 'within refreshMs the held copy serves');
    now = 1500;
    assert.deepEqual(await b.get(app, () => ({ w: 0 })), { w: 1 });
    assert.deepEqual(await b.get(user, () => ({ w: 0 })), { w: 2 });
  } finally {
    await sa.close();
    await sb.close();
  }
});
