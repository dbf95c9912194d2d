/**
 * The data directory's own copies of artifacts, so a registered version never changes under a
 * running server.
 *
 * Each registration copies its plan (artifact-source.ts) into a fresh directory under `.partial/`,
 * hashing as it goes, then renames it into place as `<model>/<version>-<hash16>-<unique>`. No two
 * registrations ever share a directory, so removing one (a failed or deleted registration) can
 * never take away files another registration's replicas use.
 *
 * Reading is fs/promises in chunks (the event loop only ever hashes one chunk at a time). Each file
 * is opened with O_NOFOLLOW | O_NONBLOCK and must be the very regular file the walk vetted (same
 * device and inode), so a file swapped for a FIFO or a link after the walk is refused, not waited
 * on; bytes are counted as they are read, so a file that grows or misreports its size cannot take
 * the copy past the limit.
 */
import { createHash, randomBytes, type Hash } from 'node:crypto';
import { constants } from 'node:fs';
import { mkdir, open, rename, rm, symlink, type FileHandle } from 'node:fs/promises';
import { dirname, join, resolve, sep } from 'node:path';
import { ServingError } from '../errors.ts';
import { toStorageError } from '../store/storage-errors.ts';
import { isUnder, tooBig, unreadable, type ArtifactPlan, type PlanEntry } from './artifact-source.ts';

export interface StoredArtifact { path: string; hash: string }

const CHUNK = 256 * 1024;
const PARTIAL = '.partial';
const READ_FLAGS = constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK;

/** Copies a vetted plan into `<storeDir>/<model>/…`; returns the copy's path and the content hash. */
export async function storeArtifact(storeDir: string, model: string, version: string, plan: ArtifactPlan, maxBytes: number): Promise<StoredArtifact> {
  const unique = randomBytes(6).toString('hex');
  const tmp = join(storeDir, PARTIAL, `${model}-${version}-${unique}`);
  const dest = (e: unknown) => toStorageError(e, `copy the artifact of ${model}:${version}`, storeDir);
  await ensureDir(tmp).catch((e) => { throw dest(e); });
  try {
    const hash = createHash('sha256');
    const budget = { left: maxBytes, max: maxBytes };
    const into = (rel: string) => (plan.isDir ? join(tmp, plan.name, rel) : join(tmp, plan.name));
    if (plan.isDir) await mkdir(into(''), { mode: 0o755 }).catch((e) => { throw dest(e); });
    for (const entry of plan.entries) await copyEntry(plan, entry, into(entry.rel), hash, budget, dest);
    const digest = hash.digest('hex');
    const dir = join(storeDir, model, `${version}-${digest.slice(0, 16)}-${unique}`);
    await ensureDir(dirname(dir)).then(() => rename(tmp, dir)).catch((e) => { throw dest(e); });
    return { path: join(dir, plan.name), hash: digest };
  } catch (e) {
    await rm(tmp, { recursive: true, force: true }).catch(() => {});
    throw e;
  }
}

/**
 * `mkdir -p` that reports the real cause: Node's recursive mkdir answers ENOENT where the parent
 * is on a read-only disk (it stats the missing path after EROFS), so each level is made in turn.
 */
async function ensureDir(path: string): Promise<void> {
  try {
    await mkdir(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') return;
    if (code !== 'ENOENT' || dirname(path) === path) throw e;
    await ensureDir(dirname(path));
    await mkdir(path).catch((again: NodeJS.ErrnoException) => { if (again.code !== 'EEXIST') throw again; });
  }
}

async function copyEntry(plan: ArtifactPlan, entry: PlanEntry, to: string, hash: Hash, budget: Budget, dest: (e: unknown) => unknown): Promise<void> {
  switch (entry.kind) {
    case 'dir':
      await mkdir(to, { mode: 0o755 }).catch((e) => { throw dest(e); });
      return;
    case 'link':
      hash.update(entry.rel).update('\0->').update(entry.target).update('\0');
      await symlink(entry.target, to).catch((e) => { throw dest(e); });
      return;
    case 'file':
      if (plan.isDir) hash.update(entry.rel).update('\0');
      await copyFile(plan, entry, to, hash, budget, dest);
      if (plan.isDir) hash.update('\0');
  }
}

interface Budget { left: number; max: number }

async function copyFile(plan: ArtifactPlan, entry: Extract<PlanEntry, { kind: 'file' }>, to: string, hash: Hash, budget: Budget, dest: (e: unknown) => unknown): Promise<void> {
  const from = plan.isDir ? join(plan.source, entry.rel) : plan.source;
  const changed = () => new ServingError('ARTIFACT_INVALID', `model_data_path ${JSON.stringify(plan.given)}${entry.rel ? `: ${entry.rel}` : ''} changed while it was being copied; deploy it again once it is complete`);
  const src = await open(from, READ_FLAGS).catch((e: NodeJS.ErrnoException) => {
    throw e.code === 'ELOOP' ? changed() : unreadable(plan.given, e, entry.rel);
  });
  let out: FileHandle | undefined;
  try {
    const st = await src.stat();
    if (!st.isFile() || st.dev !== entry.dev || st.ino !== entry.ino) throw changed();
    out = await open(to, 'wx', entry.mode | 0o600).catch((e) => { throw dest(e); });
    const buf = Buffer.allocUnsafe(CHUNK);
    for (;;) {
      const { bytesRead } = await src.read(buf, 0, CHUNK, null).catch((e: NodeJS.ErrnoException) => { throw unreadable(plan.given, e, entry.rel); });
      if (bytesRead === 0) break;
      budget.left -= bytesRead;
      if (budget.left < 0) throw tooBig(plan.given, budget.max);
      const chunk = buf.subarray(0, bytesRead);
      hash.update(chunk);
      await out.write(chunk).catch((e) => { throw dest(e); });
    }
  } finally {
    await src.close().catch(() => {});
    await out?.close().catch(() => {});
  }
}

/**
 * Removes one registration's copy (the directory `storeArtifact` made for it). Refuses anything
 * that is not such a directory, so a damaged registry row can never remove more.
 */
export async function removeArtifact(storeDir: string, artifactPath: string): Promise<void> {
  if (!artifactPath) return;
  const dir = dirname(resolve(artifactPath));
  const rel = dir.slice(resolve(storeDir).length + 1).split(sep);
  if (!isUnder(dir, resolve(storeDir)) || rel.length !== 2 || rel[0] === PARTIAL) return;
  await rm(dir, { recursive: true, force: true });
}

/** Removes copies that were never finished (the server stopped mid-copy). Run at start, before any deploy. */
export async function sweepPartialArtifacts(storeDir: string): Promise<void> {
  await rm(join(storeDir, PARTIAL), { recursive: true, force: true }).catch(() => {});
}
