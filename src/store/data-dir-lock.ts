/**
 * One server per data directory. Two servers on one directory diverge and delete each other's
 * artifacts, so the first thing a server does is take this lock, and a second one fails at once,
 * before it creates or changes anything, naming the directory and the pid that holds it.
 *
 * The lock is an exclusive SQLite lock on `<data>/lock.sqlite` (`locking_mode = EXCLUSIVE` plus a
 * write, held until the connection closes). SQLite takes it with fcntl(2) record locks, which the
 * kernel drops when the holding process dies, however it dies: a lock left by a SIGKILLed server
 * cannot go stale, and there is no pid-liveness guess to get wrong (a pid file alone goes stale,
 * and a reused pid looks alive). Node has no flock(2) of its own; better-sqlite3 is already here.
 * SQLite also keeps the lock between two connections of one process, so two servers in one test
 * process exclude each other too.
 *
 * Because an exclusive lock also stops others reading the lock file, the holder's pid, host and
 * start time go into `<data>/server.pid`, written after the lock is taken and removed before it is
 * released; it is only ever read to explain a refusal, never to decide one. The lock file itself is
 * never deleted: unlinking a lock file lets two processes lock two different inodes.
 */
import Database from 'better-sqlite3';
import { accessSync, constants, existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { dirname, join } from 'node:path';
import { ServingError } from '../errors.ts';
import { storageCode, toStorageError } from './storage-errors.ts';

interface Holder { pid: number; host: string; startedAt: string }

export class DataDirLock {
  private released = false;

  private constructor(
    readonly dir: string,
    private readonly db: Database.Database,
    /** The outermost directory acquire() created, if any: removed again when startup fails. */
    readonly createdDir: string | undefined,
    /** The pid named by a lock left by a server that is gone (SIGKILL, crash, power loss). */
    readonly takenOverFrom: number | undefined,
  ) {}

  /** Takes the lock, creating the directory if it is missing; throws a ServingError saying who holds it. */
  static acquire(dir: string): DataDirLock {
    let createdDir: string | undefined;
    let db: Database.Database | undefined;
    try {
      createdDir = makeDir(dir);
      // Says EROFS for a read-only mount, where SQLite would only say it cannot open (or silently open read-only).
      accessSync(dir, constants.W_OK);
      db = new Database(join(dir, 'lock.sqlite'), { timeout: 0 });
      db.pragma('locking_mode = EXCLUSIVE');
      db.exec('BEGIN EXCLUSIVE');
      db.exec('CREATE TABLE IF NOT EXISTS holder (pid INTEGER NOT NULL, host TEXT NOT NULL, started_at TEXT NOT NULL)');
      db.exec('DELETE FROM holder');
      db.prepare('INSERT INTO holder VALUES (?, ?, ?)').run(process.pid, hostname(), new Date().toISOString());
      db.exec('COMMIT');
    } catch (e) {
      db?.close();
      if (createdDir) rmSync(createdDir, { recursive: true, force: true });
      if (storageCode(e) === 'SQLITE_BUSY') throw inUse(dir);
      throw toStorageError(e, 'lock the data directory', dir);
    }
    const previous = readHolder(dir);
    const lock = new DataDirLock(dir, db, createdDir, previous && previous.pid !== process.pid ? previous.pid : undefined);
    try {
      const tmp = join(dir, `server.pid.${process.pid}.tmp`);
      writeFileSync(tmp, `${JSON.stringify({ pid: process.pid, host: hostname(), startedAt: new Date().toISOString() } satisfies Holder)}\n`);
      renameSync(tmp, join(dir, 'server.pid'));
    } catch (e) {
      lock.release({ removeCreated: true });
      throw toStorageError(e, 'write the server.pid file', dir);
    }
    return lock;
  }

  /** Lets the next server in. `removeCreated` also deletes the directory acquire() created (a failed start). */
  release(opts: { removeCreated?: boolean } = {}): void {
    if (this.released) return;
    this.released = true;
    // The pid file goes first, while the lock is still held, so it never names a server that is gone.
    // Neither removal may keep the lock from being released (a disk gone read-only refuses both).
    const quietly = (fn: () => void) => { try { fn(); } catch { /* left behind; the next server takes over */ } };
    quietly(() => rmSync(join(this.dir, 'server.pid'), { force: true }));
    if (this.db.open) quietly(() => this.db.close());
    if (opts.removeCreated && this.createdDir) quietly(() => rmSync(this.createdDir!, { recursive: true, force: true }));
  }
}

/** mkdir -p, returning the outermost directory it created; a refusal names its real cause (EROFS, EACCES). */
function makeDir(dir: string): string | undefined {
  try {
    return mkdirSync(dir, { recursive: true });
  } catch (e) {
    // Node's recursive mkdir can report ENOENT for a parent on a read-only mount: ask the nearest existing one.
    for (let p = dirname(dir); p !== dirname(p); p = dirname(p)) {
      if (existsSync(p)) {
        accessSync(p, constants.W_OK);
        break;
      }
    }
    throw e;
  }
}

function inUse(dir: string): ServingError {
  const h = readHolder(dir);
  const who = h ? `pid ${h.pid}${h.host === hostname() ? '' : ` on ${h.host}`}, started ${h.startedAt}` : 'a process that has not written server.pid yet';
  return new ServingError('STORAGE_UNAVAILABLE', `data directory ${dir} is in use by another clipper server (${who})`);
}

function readHolder(dir: string): Holder | undefined {
  try {
    const h = JSON.parse(readFileSync(join(dir, 'server.pid'), 'utf8')) as Partial<Holder>;
    return typeof h.pid === 'number' ? { pid: h.pid, host: String(h.host ?? ''), startedAt: String(h.startedAt ?? '') } : undefined;
  } catch {
    return undefined;
  }
}
