import assert from 'node:assert/strict';
import { join } from 'node:path';
import { it } from 'node:test';
import { ServingError } from '../../src/errors.ts';
import { SqliteStore } from '../../src/store/sqlite-store.ts';
import { isStorageFault, toStorageError } from '../../src/store/storage-errors.ts';
import { mountTmpfs, needsDisk } from '../helpers/scratch-disk.ts';
import { tempDir } from '../helpers/server.ts';

const err = (code: string) => Object.assign(new Error(`boom ${code}`), { code });

it('sorts SQLite and errno codes into STORAGE_FULL, STORAGE_UNAVAILABLE or leaves them alone', () => {
  const dir = tempDir();
  const cases: Array<[string, string | undefined, RegExp?]> = [
    ['SQLITE_FULL', 'STORAGE_FULL', /the disk holding .* is full \(SQLITE_FULL\); free space and retry$/],
    ['ENOSPC', 'STORAGE_FULL', /is full \(ENOSPC\)/],
    ['EDQUOT', 'STORAGE_FULL'],
    ['EROFS', 'STORAGE_UNAVAILABLE', /is read-only \(EROFS\)$/],
    ['EACCES', 'STORAGE_UNAVAILABLE', /permission denied \(EACCES\)$/],
    ['SQLITE_READONLY', 'STORAGE_UNAVAILABLE', /is read-only \(SQLITE_READONLY\)$/],
    ['SQLITE_READONLY_DBMOVED', 'STORAGE_UNAVAILABLE'],
    ['SQLITE_CANTOPEN', 'STORAGE_UNAVAILABLE', /cannot be opened/],
    ['SQLITE_IOERR_WRITE', 'STORAGE_UNAVAILABLE', /gave an I\/O error \(SQLITE_IOERR_WRITE\)$/],
    ['SQLITE_BUSY', 'STORAGE_UNAVAILABLE', /locked by another process/],
    ['SQLITE_CORRUPT', 'STORAGE_UNAVAILABLE', /damaged/],
    ['SQLITE_CONSTRAINT_PRIMARYKEY', undefined],
    ['SQLITE_FULLISH', undefined],
    ['ECONNRESET', undefined],
  ];
  for (const [code, want, message] of cases) {
    const e = err(code);
    const mapped = toStorageError(e, 'save application a', join(dir, 'registry.sqlite'));
    assert.equal(isStorageFault(e), want !== undefined, code);
    if (want === undefined) {
      assert.equal(mapped, e, `${code} passes through`);
      continue;
    }
    assert.ok(mapped instanceof ServingError, code);
    assert.equal(mapped.code, want, code);
    assert.match(mapped.message, /^could not save application a: /);
    if (message) assert.match(mapped.message, message, code);
  }
  assert.equal(toStorageError(new Error('no code'), 'x', dir) instanceof ServingError, false);
  const already = new ServingError('STORAGE_FULL', 'kept');
  assert.equal(toStorageError(already, 'x', dir), already);
});

it('the SQLite store reports a full disk as STORAGE_FULL and a duplicate as ALREADY_EXISTS', needsDisk('tmpfs'), async () => {
  const disk = mountTmpfs('1m')!;
  const store = new SqliteStore(join(disk.dir, 'registry.sqlite'));
  try {
    const app = (name: string) => ({ name, inputType: 'strings' as const, defaultOutput: 'd', latencySloMicros: 1000, overloadDefault: false, policy: 'single', policyParams: {}, createdAt: 1 });
    await store.putApp(app('a'));
    await assert.rejects(store.putApp(app('a')), (e: ServingError) => e.code === 'ALREADY_EXISTS');
    disk.fill();
    await assert.rejects(store.putApp({ ...app('b'), defaultOutput: 'x'.repeat(64 * 1024) }), (e: ServingError) => {
      assert.equal(e.code, 'STORAGE_FULL');
      assert.match(e.message, /^could not save application b: the disk holding .*registry\.sqlite is full \(SQLITE_FULL\)/);
      return true;
    });
    disk.unfill();
    await store.putApp(app('b'));
    assert.deepEqual((await store.load()).apps.map((a) => a.name), ['a', 'b']);
  } finally {
    await store.close().catch(() => {});
    disk.unmount();
  }
});
