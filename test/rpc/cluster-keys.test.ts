/** The cluster's shared RPC keys in Redis, and the SDK's cluster settings from its environment. */
import assert from 'node:assert/strict';
import { after, before, it } from 'node:test';
import { Redis } from 'ioredis';
import { clusterKeysKey, loadClusterRpcKeys, securityFromKeys } from '../../src/rpc/replica-auth.ts';
import { frontendsFromEnv, optionsFromEnv } from '../../src/runtimes/sdk.ts';
import { startRedis, whyNoRedis, type TestRedis } from '../helpers/redis.ts';

let redis: TestRedis | undefined;
const clients: Redis[] = [];
before(async () => { redis = await startRedis(); });
after(async () => {
  for (const c of clients) c.disconnect();
  await redis?.stop();
});
const client = () => {
  const r = new Redis(redis!.url);
  clients.push(r);
  return r;
};

it('frontends starting at once get the same keys, made once; a damaged record is an error', async (t) => {
  if (!redis) return t.skip(whyNoRedis());
  const all = await Promise.all([1, 2, 3, 4].map(() => loadClusterRpcKeys(client(), 'k:')));
  for (const k of all) assert.deepEqual(k, all[0]);
  assert.equal(all[0]!.replicaKey.length, 32);
  assert.equal(all[0]!.curve.publicKey.length, 40);
  assert.deepEqual(await loadClusterRpcKeys(client(), 'k:'), all[0], 'a later frontend reads the same keys');
  assert.notDeepEqual((await loadClusterRpcKeys(client(), 'other:')).replicaKey, all[0]!.replicaKey, 'another prefix, another cluster');
  const sec = securityFromKeys(all[0]!, { host: '0.0.0.0', rpcCurve: 'auto', rpcAllowPlain: false, rpcMaxMessageBytes: 10 });
  assert.equal(sec.curve?.publicKey, all[0]!.curve.publicKey);
  assert.deepEqual(sec.replicaKey, all[0]!.replicaKey);

  await client().set(clusterKeysKey('bad:'), '{"replica_key": 1}');
  await assert.rejects(loadClusterRpcKeys(client(), 'bad:'), /not a valid RPC key record/);
});

it('the SDK reads CLIPPER_FRONTENDS and CLIPPER_READY_FILE', () => {
  const base = { CLIPPER_MODEL_NAME: 'm', CLIPPER_MODEL_VERSION: '1', CLIPPER_INPUT_TYPE: 'strings' };
  assert.deepEqual(optionsFromEnv(base).frontends, []);
  assert.equal(optionsFromEnv(base).readyFile, undefined);
  const o = optionsFromEnv({ ...base, CLIPPER_FRONTENDS: 'a:7000, b.svc:7001,,[fd00::2]:7002', CLIPPER_READY_FILE: '/tmp/ready' });
  assert.deepEqual(o.frontends, [{ host: 'a', port: 7000 }, { host: 'b.svc', port: 7001 }, { host: 'fd00::2', port: 7002 }]);
  assert.equal(o.readyFile, '/tmp/ready');
  assert.throws(() => frontendsFromEnv('a:7000,b'), /CLIPPER_FRONTENDS: "b" is not host:port/);
});
