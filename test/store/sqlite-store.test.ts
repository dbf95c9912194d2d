import assert from 'node:assert/strict';
import { join } from 'node:path';
import { it } from 'node:test';
import type { ModelVersion } from '../../src/registry/types.ts';
import { SqliteStore } from '../../src/store/sqlite-store.ts';
import { tempDir } from '../helpers/server.ts';

const version = (v: string): ModelVersion => ({
  name: 'm', version: v, inputType: 'doubles', labels: ['a'], runtime: 'js', containerName: '', artifactPath: '/x',
  artifactHash: 'h', batchSize: 0, replicas: 1, cpus: 0, memoryMb: 0, createdAt: Number(v),
});

it('persists to a file and keeps writes atomic', async () => {
  const file = join(tempDir(), 'r.sqlite');
  const a = new SqliteStore(file);
  await a.putApp({ name: 'app', inputType: 'doubles', defaultOutput: '0', latencySloMicros: 1000, overloadDefault: false, policy: 'single', policyParams: {}, createdAt: 1 });
  await a.putVersion(version('1'), true);
  await a.putVersion(version('2'), true);
  await a.setLinks('app', ['m']);
  await assert.rejects(a.putVersion(version('2'), true), (e: any) => e.code === 'ALREADY_EXISTS');
  await a.putState('app/app/x', '{"w":1}');
  await a.close();

  const b = new SqliteStore(file);
  const snap = await b.load();
  assert.deepEqual(snap.apps.map((x) => x.name), ['app']);
  assert.deepEqual(snap.versions.map((x) => x.version), ['1', '2']);
  assert.deepEqual(snap.currentVersions, { m: '2' }, 'the failed duplicate left current untouched');
  assert.deepEqual(snap.links, [{ appName: 'app', modelName: 'm' }]);
  assert.equal(await b.getState('app/app/x'), '{"w":1}');

  await b.deleteVersion('m', '2', '1');
  assert.deepEqual((await b.load()).currentVersions, { m: '1' });
  await b.deleteVersion('m', '1', undefined);
  const empty = await b.load();
  assert.deepEqual(empty.currentVersions, {});
  assert.deepEqual(empty.links, [], 'links to a model with no versions left are removed');
  await b.deleteApp('app');
  assert.equal(await b.getState('app/app/x'), undefined);
  await b.close();
});
