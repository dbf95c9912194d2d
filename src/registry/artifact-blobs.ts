/**
 * Artifacts travelling through a shared store: a registered copy (artifacts.ts) packed into one
 * buffer, and a buffer materialised into this frontend's artifact directory.
 *
 * The archive is ours and simple: `CLA1`, a 4-byte big-endian header length, a JSON header
 * (`name`, `isDir`, entries in the plan's order: dir / file with size and mode / link with
 * target), then the files' bytes in entry order. No compression: model files rarely shrink.
 *
 * Materialising unpacks into a scratch directory, then hands it to `inspectArtifact` and
 * `storeArtifact` exactly as a deploy would: the same vetting (no paths out of the tree, no links
 * out of it, the byte limit), the same hash, and the same atomic temp-dir-and-rename into place.
 * The hash must equal the version's, or nothing is kept.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, open, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { basename, join, normalize, sep } from 'node:path';
import { ServingError } from '../errors.ts';
import { toStorageError } from '../store/storage-errors.ts';
import { inspectArtifact } from './artifact-source.ts';
import { removeArtifact, storeArtifact } from './artifacts.ts';
import type { ModelVersion } from './types.ts';

const MAGIC = Buffer.from('CLA1');

type Entry = { kind: 'dir'; rel: string } | { kind: 'file'; rel: string; size: number; mode: number } | { kind: 'link'; rel: string; target: string };
interface Header { name: string; isDir: boolean; entries: Entry[] }

/** Packs a registered copy (a path this registry made, under `artifactDir`). */
export async function packArtifact(artifactPath: string, artifactDir: string, maxBytes: number): Promise<Buffer> {
  const plan = await inspectArtifact(artifactPath, { root: artifactDir, maxBytes });
  const entries: Entry[] = [];
  const bodies: Buffer[] = [];
  for (const e of plan.entries) {
    if (e.kind === 'file') {
      const body = await readFile(plan.isDir ? join(plan.source, e.rel) : plan.source);
      entries.push({ kind: 'file', rel: e.rel, size: body.length, mode: e.mode & 0o777 });
      bodies.push(body);
    } else entries.push(e.kind === 'dir' ? { kind: 'dir', rel: e.rel } : { kind: 'link', rel: e.rel, target: e.target });
  }
  const header = Buffer.from(JSON.stringify({ name: plan.name, isDir: plan.isDir, entries } satisfies Header));
  const len = Buffer.alloc(4);
  len.writeUInt32BE(header.length);
  return Buffer.concat([MAGIC, len, header, ...bodies]);
}

/**
 * Unpacks `blob` for version `v` into `<artifactDir>/<model>/<version>-<hash16>-<unique>/…`;
 * returns the artifact's path. Throws ARTIFACT_INVALID when the content is not what `v` registered.
 */
export async function materializeArtifact(blob: Buffer, v: ModelVersion, artifactDir: string, maxBytes: number): Promise<string> {
  const header = readHeader(blob, v);
  const scratch = join(artifactDir, '.partial', `fetch-${v.name}-${v.version}-${randomBytes(6).toString('hex')}`);
  const dest = (e: unknown) => toStorageError(e, `unpack the artifact of ${v.name}:${v.version}`, artifactDir);
  try {
    await mkdir(scratch, { recursive: true }).catch((e) => { throw dest(e); });
    const top = join(scratch, header.name);
    let offset = 8 + blob.readUInt32BE(4);
    if (header.isDir) await mkdir(top).catch((e) => { throw dest(e); });
    for (const e of header.entries) {
      const to = header.isDir ? inside(top, e.rel, v) : top;
      if (e.kind === 'dir') await mkdir(to).catch((err) => { throw dest(err); });
      else if (e.kind === 'link') await symlink(e.target, to).catch((err) => { throw dest(err); });
      else {
        if (offset + e.size > blob.length) throw damaged(v, 'it is shorter than its header says');
        await writeFile(to, blob.subarray(offset, offset + e.size), { mode: e.mode | 0o600, flag: 'wx' }).catch((err) => { throw dest(err); });
        offset += e.size;
      }
    }
    if (offset !== blob.length) throw damaged(v, 'it is longer than its header says');
    const stored = await storeArtifact(artifactDir, v.name, v.version, await inspectArtifact(top, { root: scratch, maxBytes }), maxBytes);
    if (stored.hash !== v.artifactHash) {
      await removeArtifact(artifactDir, stored.path).catch(() => {});
      throw damaged(v, `its content hashes to ${stored.hash.slice(0, 16)}…, not ${v.artifactHash.slice(0, 16)}…`);
    }
    return stored.path;
  } finally {
    await rm(scratch, { recursive: true, force: true }).catch(() => {});
  }
}

/** True when a path exists (a quick check before using a recorded local copy). */
export async function exists(path: string): Promise<boolean> {
  const h = await open(path, 'r').catch(() => undefined);
  await h?.close();
  return h !== undefined;
}

function readHeader(blob: Buffer, v: ModelVersion): Header {
  if (blob.length < 8 || !blob.subarray(0, 4).equals(MAGIC)) throw damaged(v, 'it is not an artifact archive');
  const len = blob.readUInt32BE(4);
  if (8 + len > blob.length) throw damaged(v, 'its header is cut short');
  let h: Header;
  try {
    h = JSON.parse(blob.subarray(8, 8 + len).toString('utf8')) as Header;
  } catch {
    throw damaged(v, 'its header is not JSON');
  }
  if (typeof h.name !== 'string' || h.name !== basename(h.name) || h.name === '' || h.name === '.' || h.name === '..' || !Array.isArray(h.entries)) {
    throw damaged(v, 'its header is malformed');
  }
  return h;
}

/** `rel` joined under `top`, refusing anything that would land outside it. */
function inside(top: string, rel: string, v: ModelVersion): string {
  const n = normalize(rel);
  if (typeof rel !== 'string' || rel === '' || n.startsWith('..') || n.startsWith(sep) || n.split(sep).includes('..')) throw damaged(v, `it names a path outside the artifact (${JSON.stringify(rel)})`);
  return join(top, n);
}

function damaged(v: ModelVersion, why: string): ServingError {
  return new ServingError('ARTIFACT_INVALID', `the shared copy of the artifact of ${v.name}:${v.version} is damaged: ${why}`);
}
