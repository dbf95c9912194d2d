/** The environment a replica is started with, wherever it runs. */
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { launchSpec, replicaEnv } from '../../src/manager/launch.ts';
import type { ModelVersion } from '../../src/registry/types.ts';

const v: ModelVersion = {
  name: 'm', version: '1', inputType: 'doubles', labels: [], runtime: 'onnx', containerName: '', artifactPath: '/data/artifacts/m/1-abc/model.onnx',
  artifactHash: 'abc', batchSize: 0, replicas: 1, cpus: 0, memoryMb: 0, createdAt: 0,
};
const rpc = { host: '0.0.0.0', port: 7000 };

it('onnx replicas take their intra-op threads from cpus (whole cores, at least one)', () => {
  const threads = (cpus: number) => replicaEnv(v, rpc, 'm:1#0', { cpus, memoryMb: 0 }).CLIPPER_ONNX_INTRA_OP_THREADS;
  assert.equal(threads(0), undefined, 'no limit: the runtime default');
  assert.equal(threads(0.5), '1');
  assert.equal(threads(2.5), '2');
  assert.equal(threads(4), '4');
});

it('every replica learns its model, where the frontend is, and its replica id', () => {
  const env = replicaEnv(v, rpc, 'm:1#0', { cpus: 0, memoryMb: 0 }, '/model/model.onnx');
  assert.equal(env.CLIPPER_MODEL_NAME, 'm');
  assert.equal(env.CLIPPER_MODEL_VERSION, '1');
  assert.equal(env.CLIPPER_IP, '127.0.0.1', 'a wildcard bind is reached on loopback');
  assert.equal(env.CLIPPER_PORT, '7000');
  assert.equal(env.CLIPPER_MODEL_PATH, '/model/model.onnx');
  assert.equal(env.CLIPPER_REPLICA_ID, 'm:1#0');
  assert.equal(launchSpec(v, rpc, 'm:1#0', { cpus: 0, memoryMb: 0 }).env.CLIPPER_PARENT_PID, String(process.pid), 'local replicas exit with their frontend');
});

it('an image model cannot be launched as a local process', () => {
  assert.throws(() => launchSpec({ ...v, runtime: 'image', containerName: 'my/model:1' }, rpc, 'm:1#0', { cpus: 0, memoryMb: 0 }), /needs the Docker backend/);
});
