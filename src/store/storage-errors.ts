/**
 * What the data directory's disk can do to us, named once. SQLite result codes (better-sqlite3's
 * `SqliteError.code`) and Node's fs errno codes are sorted into two transport-free codes:
 *
 *   STORAGE_FULL         SQLITE_FULL, ENOSPC, EDQUOT, EFBIG      the disk (or quota) is full
 *   STORAGE_UNAVAILABLE  SQLITE_READONLY*, SQLITE_CANTOPEN*,     read-only, not permitted, gone,
 *                        SQLITE_IOERR*, SQLITE_PERM, SQLITE_BUSY, or held by another process
 *                        SQLITE_CORRUPT, SQLITE_NOTADB, EROFS,
 *                        EACCES, EPERM, EIO, ENOENT, ENOTDIR
 *
 * Anything else (a constraint, a bug) is passed through unchanged. The message says what was
 * being done, where, and why — the operator's first question — and never quotes file contents.
 */
import { accessSync, closeSync, constants, existsSync, openSync, rmSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { ServingError } from '../errors.ts';

const FULL = new Set(['SQLITE_FULL', 'ENOSPC', 'EDQUOT', 'EFBIG']);
const UNAVAILABLE_ERRNO = new Set(['EROFS', 'EACCES', 'EPERM', 'EIO', 'ENOENT', 'ENOTDIR']);
const UNAVAILABLE_SQLITE = ['SQLITE_READONLY', 'SQLITE_CANTOPEN', 'SQLITE_IOERR', 'SQLITE_PERM', 'SQLITE_BUSY', 'SQLITE_CORRUPT', 'SQLITE_NOTADB'];

/** The error's SQLite or errno code, if it has one. */
export function storageCode(e: unknown): string | undefined {
  const code = (e as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

/** True for an error the disk gave (full, read-only, not permitted...), as opposed to a bug or a constraint. */
export function isStorageFault(e: unknown): boolean {
  const code = storageCode(e);
  if (!code) return false;
  return FULL.has(code) || UNAVAILABLE_ERRNO.has(code) || UNAVAILABLE_SQLITE.some((p) => code === p || code.startsWith(`${p}_`));
}

/**
 * Maps a disk error to STORAGE_FULL or STORAGE_UNAVAILABLE; returns anything else unchanged.
 * `what` is the operation ("save application demo"), `path` the file or directory it touched.
 * SQLite's I/O codes do not carry the errno, so for those the path is asked whether it is writable:
 * a disk the kernel turned read-only shows as EROFS rather than as a vague SQLITE_IOERR_WRITE.
 */
export function toStorageError(e: unknown, what: string, path: string): unknown {
  if (e instanceof ServingError || !isStorageFault(e)) return e;
  const code = storageCode(e)!;
  if (FULL.has(code)) {
    return new ServingError('STORAGE_FULL', `could not ${what}: the disk holding ${path} is full (${code}); free space and retry`);
  }
  const errno = code.startsWith('SQLITE_') && code !== 'SQLITE_BUSY' ? writability(path) : undefined;
  const shown = errno ? `${code}, ${errno}` : code;
  return new ServingError('STORAGE_UNAVAILABLE', `could not ${what}: ${path} ${reason(errno ?? code)} (${shown})`);
}

/**
 * The errno that writing next to `path` gets (EROFS, EACCES), or undefined if it looks writable.
 * Tries a real write: access(2) can say writable on a disk the kernel has turned read-only (ext4's
 * emergency_ro after an I/O error). Only ever run on an error path.
 */
function writability(path: string): string | undefined {
  let p = path;
  while (!existsSync(p) && dirname(p) !== p) p = dirname(p);
  try {
    const dir = statSync(p).isDirectory() ? p : dirname(p);
    accessSync(dir, constants.W_OK);
    const probe = join(dir, `.clipper-write-probe-${process.pid}`);
    closeSync(openSync(probe, 'w'));
    rmSync(probe, { force: true });
    return undefined;
  } catch (e) {
    return storageCode(e);
  }
}

function reason(code: string): string {
  if (code === 'EROFS' || code.startsWith('SQLITE_READONLY')) return 'is read-only';
  if (code === 'EACCES' || code === 'EPERM' || code === 'SQLITE_PERM') return 'cannot be written by this server: permission denied';
  if (code === 'ENOENT' || code === 'ENOTDIR' || code.startsWith('SQLITE_CANTOPEN')) return 'cannot be opened';
  if (code === 'SQLITE_BUSY') return 'is locked by another process';
  if (code === 'SQLITE_CORRUPT' || code === 'SQLITE_NOTADB') return 'is damaged or not a registry database';
  return 'gave an I/O error';
}

/** Runs `fn`, turning a disk error into a ServingError (see toStorageError). */
export function guardStorage<T>(what: string, path: string, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    throw toStorageError(e, what, path);
  }
}
