/** Frontend membership against a real redis-server: join, list, leave, and a dead member expiring. */
import assert from 'node:assert/strict';
import { after, before, it } from 'node:test';
import { Redis } from 'ioredis';
import { Members, membersSetKey, type Member } from '../../src/cluster/members.ts';
import { startRedis, whyNoRedis, type TestRedis } from '../helpers/redis.ts';
import { waitFor } from '../helpers/server.ts';

let redis: TestRedis | undefined;
const cleanup: Array<() => unknown> = [];
before(async () => { redis = await startRedis(); });
after(async () => {
  for (const c of cleanup.splice(0).reverse()) await c();
  await redis?.stop();
});

function client(): Redis {
  const r = new Redis(redis!.url, { maxRetriesPerRequest: 1 });
  r.on('error', () => {});
  cleanup.push(() => r.disconnect());
  return r;
}

const info = (id: string, port: number): Member => ({
  id, rpc: { host: '10.0.0.1', port }, queryUrl: `http://10.0.0.1:${port + 1}`, adminUrl: `http://10.0.0.1:${port + 2}`, startedAt: 1_700_000_000_000,
});

function member(id: string, port: number, prefix = 'mem:'): Members & { seen: string[][] } {
  const m = Object.assign(new Members(client(), { self: info(id, port), prefix, ttlMs: 1500, pollMs: 200 }), { seen: [] as string[][] });
  m.on('changed', (list: Member[]) => m.seen.push(list.map((x) => x.id)));
  cleanup.push(() => m.close());
  return m;
}

const ids = (m: Members) => m.list().map((x) => x.id).join(',');

it('members join, see each other, leave and expire', async (t) => {
  if (!redis) return t.skip(whyNoRedis());
  const a = member('a', 7000);
  await a.start();
  assert.equal(ids(a), 'a', 'a frontend sees itself once started');
  assert.deepEqual(a.list()[0], info('a', 7000), 'what it announced, as announced');

  const b = member('b', 7100);
  await b.start();
  assert.equal(ids(b), 'a,b');
  await waitFor(() => ids(a) === 'a,b', 10_000, 'a to see b join');
  assert.deepEqual(a.seen.at(-1), ['a', 'b'], "'changed' carried the new list");

  await b.close();
  await waitFor(() => ids(a) === 'a', 10_000, 'a to see b leave');

  // A member whose process dies (no close): its connection goes, its key expires.
  const deadRedis = client();
  const c = new Members(deadRedis, { self: info('c', 7200), prefix: 'mem:', ttlMs: 1500, pollMs: 200 });
  await c.start();
  await waitFor(() => ids(a) === 'a,c', 10_000, 'a to see c join');
  deadRedis.disconnect(); // its announcements fail from now on, as if it had died
  await waitFor(() => ids(a) === 'a', 15_000, 'c to expire');
  const r = client();
  assert.deepEqual(await r.smembers(membersSetKey('mem:')), ['a'], 'the expired id was removed from the set');
  await c.close();
});

it('keeps the last list while Redis is unreachable, and recovers', async (t) => {
  if (!redis) return t.skip(whyNoRedis());
  const a = member('x', 8000, 'down:');
  await a.start();
  const b = member('y', 8100, 'down:');
  await b.start();
  await waitFor(() => ids(a) === 'x,y', 10_000, 'both');
  await redis.kill();
  const before = a.seen.length;
  await new Promise((r) => setTimeout(r, 1500));
  assert.equal(ids(a), 'x,y', 'an unreachable registry does not empty the list');
  assert.equal(a.seen.length, before);
  await redis.restart();
  await b.close();
  await waitFor(() => ids(a) === 'x', 20_000, 'the list to follow Redis again');
});
