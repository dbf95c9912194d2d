/** Registration under concurrency and the command-runtime gate, against a real SQLite store and a slow fake artifact check. */
import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { textLogger } from '../../src/observability/log.ts';
import { RegistryService, type ArtifactCheck, type NewVersion, type RegistryOptions } from '../../src/registry/registry-service.ts';
import { SqliteStore } from '../../src/store/sqlite-store.ts';
import type { Store } from '../../src/store/store.ts';
import { ECHO_MODEL, tempDir, writeJsModel } from '../helpers/server.ts';

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

async function registry(opts: Partial<RegistryOptions> = {}, check: ArtifactCheck = async () => sleep(20), wrap = (s: Store) => s) {
  const dir = tempDir('clipper-reg-');
  const logs: string[] = [];
  const r = new RegistryService(wrap(new SqliteStore(join(dir, 'registry.sqlite'))), {
    artifactDir: join(dir, 'artifacts'), artifactRoot: tmpdir(), maxArtifactBytes: 1 << 20,
    allowCommandRuntime: false, logger: textLogger((m) => logs.push(m)), ...opts,
  }, check);
  await r.load();
  return { r, logs, artifactDir: join(dir, 'artifacts') };
}

const version = (over: Partial<NewVersion> = {}): NewVersion => ({
  name: 'm', version: '1', inputType: 'strings', labels: [], runtime: 'js', containerName: '', modelDataPath: writeJsModel(ECHO_MODEL('m')),
  batchSize: 0, replicas: 0, ...over,
});

describe('RegistryService.addVersion', () => {
  it('of 20 concurrent registrations of one version, one wins and 19 get ALREADY_EXISTS; its copy stays', async () => {
    const { r, artifactDir } = await registry();
    const n = version();
    const results = await Promise.allSettled(Array.from({ length: 20 }, () => r.addVersion(n)));
    const won = results.filter((x) => x.status === 'fulfilled');
    const lost = results.filter((x): x is PromiseRejectedResult => x.status === 'rejected');
    assert.equal(won.length, 1);
    assert.ok(lost.every((x) => x.reason.code === 'ALREADY_EXISTS'), lost.map((x) => x.reason.message).join('; '));
    assert.ok(existsSync(r.requireVersion('m', '1').artifactPath));
    assert.deepEqual(readdirSync(join(artifactDir, 'm')).length, 1, 'losers copied nothing');
  });

  it('a registration whose check fails removes its own copy only', async () => {
    let fail = false;
    const { r, artifactDir } = await registry({}, async () => { await sleep(20); if (fail) throw new Error('bad artifact'); });
    await r.addVersion(version());
    fail = true;
    await assert.rejects(r.addVersion(version({ version: '2' })), /bad artifact/);
    assert.deepEqual(readdirSync(join(artifactDir, 'm')).map((d) => d.split('-')[0]), ['1']);
    assert.ok(existsSync(r.requireVersion('m', '1').artifactPath));
  });

  it('refuses a second input type among versions still being registered', async () => {
    const { r } = await registry();
    const [a, b] = await Promise.allSettled([r.addVersion(version()), r.addVersion(version({ version: '2', inputType: 'doubles' }))]);
    assert.equal(a.status, 'fulfilled');
    assert.equal(b.status === 'rejected' && b.reason.code, 'TYPE_MISMATCH');
  });

  it("maps the store's uniqueness violation (a race it did not see) to ALREADY_EXISTS", async () => {
    const unique = Object.assign(new Error('UNIQUE constraint failed: model_versions.name, model_versions.version'), { code: 'SQLITE_CONSTRAINT_PRIMARYKEY' });
    const { r, artifactDir } = await registry({}, undefined, (s) => Object.assign(Object.create(s), { putVersion: async () => { throw unique; } }));
    await assert.rejects(r.addVersion(version()), (e: any) => e.code === 'ALREADY_EXISTS');
    assert.deepEqual(readdirSync(join(artifactDir, 'm')), [], 'the copy was removed');
  });

  it('refuses runtime command unless allowed, and logs each one it registers', async () => {
    const cmd = version({ runtime: 'command', containerName: 'sh -c true', modelDataPath: undefined, requestedBy: 'tester' });
    const off = await registry();
    await assert.rejects(off.r.addVersion(cmd), (e: any) => e.code === 'FORBIDDEN' && /--allow-command-runtime/.test(e.message));
    assert.equal(off.r.hasModel('m'), false);
    const on = await registry({ allowCommandRuntime: true });
    await on.r.addVersion(cmd);
    const commandLines = on.logs.filter((l) => l.startsWith('runtime command'));
    assert.equal(commandLines.length, 1, on.logs.join('\n'));
    assert.match(commandLines[0]!, /^runtime command: registered m:1, which runs "sh -c true" \(requested by tester\) /);
  });
});
