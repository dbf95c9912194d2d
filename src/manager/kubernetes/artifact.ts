/**
 * How a model's artifact reaches pods on a cluster with no shared disk: it is packed into
 * immutable ConfigMaps (binaryData, at most `PART_BYTES` each, so every object stays well under
 * the API server's 1 MiB object limit) named after the artifact's hash, and an initContainer
 * rebuilds the file or directory tree in an emptyDir from a projected volume of those ConfigMaps,
 * checking every file's sha256. A frontend that finds the ConfigMaps of a hash already in the
 * cluster does not need the artifact on its own disk.
 */
import { createHash } from 'node:crypto';
import { lstat, readdir, readFile, readlink } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { ServingError } from '../../errors.ts';

export const PART_BYTES = 768 * 1024;
export const PARTS_DIR = '/clipper/parts';
export const MODEL_DIR = '/model';
export const MANIFEST_KEY = 'manifest.json';

export interface ManifestFile { path: string; mode: number; sha256: string; parts: string[] }
export interface ArtifactManifest {
  /** The artifact's own name: it is rebuilt at /model/<root>. */
  root: string;
  isDir: boolean;
  dirs: string[];
  files: ManifestFile[];
  links: Array<{ path: string; target: string }>;
}

/** One ConfigMap's worth: `keys` → bytes. */
export interface ArtifactPart { data: Record<string, Buffer> }

/** What a pod spec needs of an artifact: its name and each ConfigMap's keys (from a packing or from the cluster). */
export interface ArtifactLayout { root: string; keys: string[][] }

export interface PackedArtifact { manifest: ArtifactManifest; parts: ArtifactPart[]; bytes: number }

/** Reads the artifact at `path` (file or directory) into parts of at most PART_BYTES. */
export async function packArtifact(path: string, maxBytes: number): Promise<PackedArtifact> {
  const root = basename(path);
  const top = await lstat(path);
  const manifest: ArtifactManifest = { root, isDir: top.isDirectory(), dirs: [], files: [], links: [] };
  const parts: ArtifactPart[] = [{ data: {} }];
  let used = 0;
  let total = 0;
  let key = 0;
  const add = (buf: Buffer): string[] => {
    const refs: string[] = [];
    for (let off = 0; off < buf.length || (off === 0 && buf.length === 0); ) {
      if (used >= PART_BYTES) { parts.push({ data: {} }); used = 0; }
      const n = Math.min(PART_BYTES - used, buf.length - off);
      const k = `c${key++}`;
      parts[parts.length - 1]!.data[k] = buf.subarray(off, off + n);
      refs.push(`${parts.length - 1}/${k}`);
      used += n;
      off += n;
      if (buf.length === 0) break;
    }
    return refs;
  };
  const visit = async (abs: string, rel: string): Promise<void> => {
    const st = await lstat(abs);
    if (st.isSymbolicLink()) { manifest.links.push({ path: rel, target: await readlink(abs) }); return; }
    if (st.isDirectory()) {
      if (rel) manifest.dirs.push(rel);
      for (const name of (await readdir(abs)).sort()) await visit(join(abs, name), rel ? `${rel}/${name}` : name);
      return;
    }
    if (!st.isFile()) return;
    total += st.size;
    if (total > maxBytes) {
      throw new ServingError('INVALID_INPUT', `the artifact ${path} is over ${maxBytes} bytes, the most the Kubernetes backend ships in ConfigMaps`);
    }
    const buf = await readFile(abs);
    manifest.files.push({ path: rel, mode: st.mode & 0o777, sha256: createHash('sha256').update(buf).digest('hex'), parts: add(buf) });
  };
  await visit(path, '');
  return { manifest, parts, bytes: total };
}

/**
 * The initContainer's program (`node -e`): rebuilds /model/<root> from the projected ConfigMaps.
 * Only node is needed, which the runtime image has (it has no coreutils).
 */
export const REBUILD_SCRIPT = `
const fs = require('fs'), path = require('path'), crypto = require('crypto');
const parts = ${JSON.stringify(PARTS_DIR)}, out = ${JSON.stringify(MODEL_DIR)};
const m = JSON.parse(fs.readFileSync(path.join(parts, ${JSON.stringify(MANIFEST_KEY)}), 'utf8'));
const at = (rel) => rel ? path.join(out, m.root, rel) : path.join(out, m.root);
if (m.isDir) fs.mkdirSync(at(''), { recursive: true });
for (const d of m.dirs) fs.mkdirSync(at(d), { recursive: true });
for (const f of m.files) {
  const buf = Buffer.concat(f.parts.map((p) => fs.readFileSync(path.join(parts, p))));
  const got = crypto.createHash('sha256').update(buf).digest('hex');
  if (got !== f.sha256) { console.error('artifact file ' + (f.path || m.root) + ': sha256 ' + got + ', expected ' + f.sha256); process.exit(1); }
  fs.writeFileSync(at(f.path), buf, { mode: f.mode });
}
for (const l of m.links) fs.symlinkSync(l.target, at(l.path));
console.log('artifact ' + m.root + ': ' + m.files.length + ' files rebuilt');
`.trim();
