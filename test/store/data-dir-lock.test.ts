import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { it } from 'node:test';
import type { ServingError } from '../../src/errors.ts';
import { DataDirLock } from '../../src/store/data-dir-lock.ts';
import { mountTmpfs, needsDisk } from '../helpers/scratch-disk.ts';
import { tempDir } from '../helpers/server.ts';

it('one holder at a time: a second acquire fails naming the directory and the holder, release lets the next in', () => {
  const dir = join(tempDir(), 'data');
  const first = DataDirLock.acquire(dir);
  assert.equal(first.createdDir, dir);
  assert.equal(first.takenOverFrom, undefined);
  assert.equal(JSON.parse(readFileSync(join(dir, 'server.pid'), 'utf8')).pid, process.pid);

  assert.throws(() => DataDirLock.acquire(dir), (e: ServingError) => {
    assert.equal(e.code, 'STORAGE_UNAVAILABLE');
    assert.match(e.message, new RegExp(`^data directory ${dir} is in use by another clipper server \\(pid ${process.pid}, started \\d{4}-`));
    return true;
  });
  assert.ok(existsSync(dir), 'the refused acquire removed nothing');

  first.release();
  assert.ok(!existsSync(join(dir, 'server.pid')));
  const second = DataDirLock.acquire(dir);
  assert.equal(second.createdDir, undefined, 'the directory already existed');
  assert.equal(second.takenOverFrom, undefined, 'released cleanly: nothing to take over');
  second.release({ removeCreated: true });
  assert.ok(existsSync(dir), 'a directory it did not create is kept');
});

it('a failed start removes exactly the directories the lock created', () => {
  const root = tempDir();
  const lock = DataDirLock.acquire(join(root, 'a', 'b', 'data'));
  assert.equal(lock.createdDir, join(root, 'a'));
  lock.release({ removeCreated: true });
  assert.deepEqual(readdirSync(root), []);
});

it('the lock of a process that was SIGKILLed is taken over (the kernel dropped it), naming the dead pid', async () => {
  const dir = tempDir();
  const holder = spawn(process.execPath, ['--import', 'tsx', '-e', `
    const { DataDirLock } = await import(${JSON.stringify(new URL('../../src/store/data-dir-lock.ts', import.meta.url).href)});
    DataDirLock.acquire(${JSON.stringify(dir)});
    console.log('locked');
    setInterval(() => {}, 1000);
  `], { stdio: ['ignore', 'pipe', 'inherit'] });
  await once(holder.stdout!, 'data');
  assert.throws(() => DataDirLock.acquire(dir), new RegExp(`in use by another clipper server \\(pid ${holder.pid},`));

  holder.kill('SIGKILL');
  await once(holder, 'exit');
  assert.ok(existsSync(join(dir, 'server.pid')), 'the dead server left its pid file');
  const lock = DataDirLock.acquire(dir);
  assert.equal(lock.takenOverFrom, holder.pid);
  assert.equal(JSON.parse(readFileSync(join(dir, 'server.pid'), 'utf8')).pid, process.pid);
  lock.release();
});

it('a read-only data directory is refused saying so, before anything is created', needsDisk('tmpfs'), () => {
  const disk = mountTmpfs('1m')!;
  try {
    disk.readOnly();
    assert.throws(() => DataDirLock.acquire(join(disk.dir, 'data')), (e: ServingError) => {
      assert.equal(e.code, 'STORAGE_UNAVAILABLE');
      assert.match(e.message, /^could not lock the data directory: .*data is read-only \(EROFS\)$/);
      return true;
    });
    assert.throws(() => DataDirLock.acquire(disk.dir), /clipper-disk-\w+ is read-only \(EROFS\)$/);
  } finally {
    disk.unmount();
  }
});
