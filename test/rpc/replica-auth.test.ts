/** RPC keys in the data directory, the replica environment they produce, and the SDK reading it. */
import assert from 'node:assert/strict';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { it } from 'node:test';
import { launchSpec, replicaEnv } from '../../src/manager/launch.ts';
import type { ModelVersion } from '../../src/registry/types.ts';
import { KEYS_FILE, loadRpcKeys, replicaSecret, rpcSecurity, verifyReplicaSecret } from '../../src/rpc/replica-auth.ts';
import { inputTypeFromEnv, optionsFromEnv } from '../../src/runtimes/sdk.ts';
import { tempDir } from '../helpers/server.ts';

const v: ModelVersion = {
  name: 'm', version: '1', inputType: 'doubles', labels: [], runtime: 'js', containerName: '', artifactPath: '/data/m',
  artifactHash: 'abc', batchSize: 0, replicas: 1, cpus: 0, memoryMb: 0, createdAt: 0,
};
const limits = { cpus: 0, memoryMb: 0 };

it('makes the keys once, private to the server user, and reads the same keys back', () => {
  const dir = tempDir();
  const a = loadRpcKeys(dir);
  assert.equal(statSync(join(dir, KEYS_FILE)).mode & 0o777, 0o600);
  assert.equal(a.replicaKey.length, 32);
  assert.equal(a.curve.publicKey.length, 40);
  const b = loadRpcKeys(dir);
  assert.deepEqual(b, a, 'a restarted frontend keeps its keys, so replicas it did not start (Docker adoption) still register');
  assert.notDeepEqual(loadRpcKeys(tempDir()).replicaKey, a.replicaKey);
});

it('refuses a damaged key file with a clear message', () => {
  const dir = tempDir();
  writeFileSync(join(dir, KEYS_FILE), '{"replica_key": "nope"}');
  assert.throws(() => loadRpcKeys(dir), /not a valid RPC key file/);
  assert.equal(readFileSync(join(dir, KEYS_FILE), 'utf8'), '{"replica_key": "nope"}', 'left as it was');
});

it('turns curve on off loopback (auto), or when asked', () => {
  const cfg = { dataDir: tempDir(), rpcAllowPlain: false, rpcMaxMessageBytes: 1024 };
  assert.equal(rpcSecurity({ ...cfg, host: '127.0.0.1', rpcCurve: 'auto' }).curve, undefined);
  assert.ok(rpcSecurity({ ...cfg, host: '0.0.0.0', rpcCurve: 'auto' }).curve);
  assert.ok(rpcSecurity({ ...cfg, host: '127.0.0.1', rpcCurve: 'on' }).curve);
  assert.equal(rpcSecurity({ ...cfg, host: '10.0.0.1', rpcCurve: 'off' }).curve, undefined);
  const s = rpcSecurity({ ...cfg, host: '127.0.0.1', rpcCurve: 'off' });
  assert.equal(s.allowPlain, false);
  assert.equal(s.maxMessageBytes, 1024);
});

it("gives each replica its own secret, the server's key when curve is on, and the input type's name", () => {
  const keys = loadRpcKeys(tempDir());
  const env = replicaEnv(v, { host: '127.0.0.1', port: 7000, auth: { replicaKey: keys.replicaKey, serverKey: keys.curve.publicKey } }, 'm:1#0', limits);
  assert.equal(env.CLIPPER_INPUT_TYPE, 'doubles', "Clipper's convention: the name, not the code");
  assert.equal(env.CLIPPER_RPC_SERVER_KEY, keys.curve.publicKey);
  assert.equal(env.CLIPPER_REPLICA_SECRET, replicaSecret(keys.replicaKey, 'm:1#0', 'm', '1'));
  assert.ok(verifyReplicaSecret(keys.replicaKey, 'm:1#0', 'm', '1', env.CLIPPER_REPLICA_SECRET!));
  const other = replicaEnv(v, { host: '127.0.0.1', port: 7000, auth: { replicaKey: keys.replicaKey, serverKey: undefined } }, 'm:1#1', limits);
  assert.notEqual(other.CLIPPER_REPLICA_SECRET, env.CLIPPER_REPLICA_SECRET);
  assert.equal(other.CLIPPER_RPC_SERVER_KEY, undefined, 'no curve: no server key');
  const plain = launchSpec(v, { host: '127.0.0.1', port: 7000 }, 'm:1#0', limits).env;
  assert.equal(plain.CLIPPER_REPLICA_SECRET, undefined, 'an endpoint without auth hands out no secret');
});

it('the SDK reads the type by name or by code, and its secret and server key', () => {
  for (const [text, type] of [['bytes', 'bytes'], ['ints', 'ints'], ['floats', 'floats'], ['doubles', 'doubles'], ['strings', 'strings'], ['3', 'doubles'], ['0', 'bytes'], [' 4 ', 'strings']] as const) {
    assert.equal(inputTypeFromEnv(text), type, text);
  }
  for (const bad of ['5', '-1', '1e300', '', 'tensors']) assert.throws(() => inputTypeFromEnv(bad), /input_type must be one of/, bad);
  const o = optionsFromEnv({
    CLIPPER_MODEL_NAME: 'm', CLIPPER_MODEL_VERSION: '1', CLIPPER_INPUT_TYPE: 'floats', CLIPPER_REPLICA_SECRET: 's', CLIPPER_RPC_SERVER_KEY: 'k',
  });
  assert.deepEqual([o.inputType, o.secret, o.serverKey], ['floats', 's', 'k']);
  assert.deepEqual([optionsFromEnv({ CLIPPER_MODEL_NAME: 'm', CLIPPER_MODEL_VERSION: '1', CLIPPER_INPUT_TYPE: '2' }).secret], [undefined]);
});
