/**
 * The leader lease against a real redis-server: one leader at a time, takeover when the leader
 * dies or freezes (the old one steps down before the new one acquires, with a larger token),
 * prompt handover on close, and nobody leading while Redis is down.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { pathToFileURL } from 'node:url';
import { Redis } from 'ioredis';
import { LeaderLease, leaderKey, tokenKey } from '../../src/cluster/lease.ts';
import { startRedis, whyNoRedis, type TestRedis } from '../helpers/redis.ts';
import { tempDir, waitFor } from '../helpers/server.ts';

const TTL = 1500;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let redis: TestRedis | undefined;
const cleanup: Array<() => unknown> = [];
before(async () => { redis = await startRedis(); });
after(async () => {
  for (const c of cleanup.splice(0).reverse()) await c();
  await redis?.stop();
});

function client(): Redis {
  const r = new Redis(redis!.url, { maxRetriesPerRequest: 1, retryStrategy: () => 100, lazyConnect: false });
  r.on('error', () => {}); // connection errors are what some tests are about
  cleanup.push(() => r.disconnect());
  return r;
}

interface Contender { lease: LeaderLease; redis: Redis; events: Array<{ kind: 'acquired' | 'lost'; token?: number; reason?: string; otherLeads?: boolean }> }

function contender(id: string, prefix: string, others: () => Contender[] = () => []): Contender {
  const r = client();
  const lease = new LeaderLease(r, { id, prefix, ttlMs: TTL });
  const c: Contender = { lease, redis: r, events: [] };
  lease.on('acquired', (token: number) => c.events.push({ kind: 'acquired', token, otherLeads: others().some((o) => o !== c && o.lease.isLeader()) }));
  lease.on('lost', (reason: string) => c.events.push({ kind: 'lost', reason }));
  cleanup.push(() => lease.close());
  return c;
}

/** Samples both leases for `ms`: never two leaders at once. Returns how many samples had a leader. */
async function neverTwo(cs: Contender[], ms: number): Promise<number> {
  const end = Date.now() + ms;
  let led = 0;
  while (Date.now() < end) {
    const n = cs.filter((c) => c.lease.isLeader()).length;
    assert.ok(n <= 1, 'two leaders at once');
    led += n;
    await sleep(20);
  }
  return led;
}

const leaderOf = (cs: Contender[]) => cs.find((c) => c.lease.isLeader());
const until = async <T>(probe: () => T | undefined, ms: number, what: string): Promise<T> => (await waitFor(probe, ms, what))!;

describe('leader lease', () => {
  it('two contenders: exactly one leads and keeps leading while it renews', async (t) => {
    if (!redis) return t.skip(whyNoRedis());
    const cs: Contender[] = [];
    cs.push(contender('a', 'one:', () => cs), contender('b', 'one:', () => cs));
    cs.forEach((c) => c.lease.start());
    const first = await until(() => leaderOf(cs), 10_000, 'a leader');
    await neverTwo(cs, TTL * 3);
    assert.equal(leaderOf(cs), first, 'the leader kept its lease across several renewals');
    assert.deepEqual(first.events.map((e) => e.kind), ['acquired']);
    const r = client();
    assert.equal(await r.get(leaderKey('one:')), first.lease.id);
    assert.equal(Number(await r.get(tokenKey('one:'))), first.lease.token());
  });

  it('a leader that stops renewing (connection cut) steps down before the other acquires, with a larger token', async (t) => {
    if (!redis) return t.skip(whyNoRedis());
    const cs: Contender[] = [];
    cs.push(contender('a', 'two:', () => cs), contender('b', 'two:', () => cs));
    cs.forEach((c) => c.lease.start());
    const old = await until(() => leaderOf(cs), 10_000, 'a leader');
    const next = cs.find((c) => c !== old)!;
    const oldToken = old.lease.token()!;
    old.redis.disconnect(); // abrupt: no release, renewals fail from now on
    const taken = await until(() => next.events.find((e) => e.kind === 'acquired'), TTL + 10_000, 'the other to take over');
    assert.ok(taken.token! > oldToken, `new token ${taken.token} > old ${oldToken}`);
    assert.equal(taken.otherLeads, false, 'the old leader had stepped down when the new one acquired');
    assert.deepEqual(old.events.map((e) => e.kind), ['acquired', 'lost']);
    assert.match(old.events[1]!.reason!, /no renewal succeeded/);
    assert.equal(old.lease.isLeader(), false);
    assert.equal(old.lease.token(), undefined);
  });

  it('a leader killed with SIGKILL: its key expires and the other takes over', async (t) => {
    if (!redis) return t.skip(whyNoRedis());
    const dir = tempDir('clipper-lease-');
    const script = join(dir, 'hold.ts');
    writeFileSync(script, `
import { Redis } from ${JSON.stringify(import.meta.resolve('ioredis'))};
import { LeaderLease } from ${JSON.stringify(pathToFileURL(join(import.meta.dirname, '../../src/cluster/lease.ts')).href)};
const lease = new LeaderLease(new Redis(process.argv[2]), { id: 'child', prefix: 'three:', ttlMs: ${TTL} });
lease.on('acquired', (t) => console.log('LEADER ' + t));
lease.start();
`);
    const child = spawn(process.execPath, ['--import', 'tsx', script, redis.url], { stdio: ['ignore', 'pipe', 'inherit'] });
    cleanup.push(() => { if (child.exitCode === null) child.kill('SIGKILL'); });
    let out = '';
    child.stdout!.on('data', (d: Buffer) => { out += d.toString(); });
    await waitFor(() => /LEADER (\d+)/.test(out), 20_000, 'the child to lead');
    const childToken = Number(/LEADER (\d+)/.exec(out)![1]);
    const me = contender('parent', 'three:');
    me.lease.start();
    await sleep(TTL);
    assert.equal(me.lease.isLeader(), false, 'the child still holds the lease');
    child.kill('SIGKILL');
    const taken = await until(() => me.events.find((e) => e.kind === 'acquired'), TTL + 10_000, 'the takeover');
    assert.ok(taken.token! > childToken);
  });

  it('close() releases the key at once, and the other acquires', async (t) => {
    if (!redis) return t.skip(whyNoRedis());
    const cs: Contender[] = [];
    cs.push(contender('a', 'four:', () => cs), contender('b', 'four:', () => cs));
    cs.forEach((c) => c.lease.start());
    const old = await until(() => leaderOf(cs), 10_000, 'a leader');
    const next = cs.find((c) => c !== old)!;
    await old.lease.close();
    assert.deepEqual(old.events.map((e) => e.kind), ['acquired', 'lost']);
    assert.match(old.events[1]!.reason!, /released/);
    const r = client();
    const holder = await r.get(leaderKey('four:'));
    assert.notEqual(holder, old.lease.id, 'the old leader no longer holds the key');
    await waitFor(() => next.lease.isLeader(), 10_000, 'the other to lead');
    assert.equal(await r.get(leaderKey('four:')), next.lease.id);
  });

  it('Redis down: nobody leads while it is down; one leads after it returns', async (t) => {
    if (!redis) return t.skip(whyNoRedis());
    const cs: Contender[] = [];
    cs.push(contender('a', 'five:', () => cs), contender('b', 'five:', () => cs));
    cs.forEach((c) => c.lease.start());
    const old = await until(() => leaderOf(cs), 10_000, 'a leader');
    const oldToken = old.lease.token()!;
    await redis.kill();
    await waitFor(() => !leaderOf(cs), TTL + 10_000, 'the leader to step down');
    assert.equal(await neverTwo(cs, TTL * 2), 0, 'nobody leads while Redis is down');
    await redis.restart();
    const now = await until(() => leaderOf(cs), 20_000, 'a leader after Redis returned');
    assert.ok(now.lease.token()! > oldToken);
    await neverTwo(cs, TTL);
  });
});
