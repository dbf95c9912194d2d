/**
 * Copies a version's artifact (file or directory) into the data directory under its content hash,
 * so a registered version never changes under a running server.
 */
import { createHash } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync } from 'node:fs';
import { basename, join, relative } from 'node:path';
import { ServingError } from '../errors.ts';

export interface StoredArtifact { path: string; hash: string }

function listFiles(root: string): string[] {
  const out: string[] = [];
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      const p = join(dir, entry.name);
      if (entry.isDirectory()) walk(p);
      else if (entry.isFile()) out.push(p);
    }
  };
  walk(root);
  return out;
}

export function hashArtifact(src: string): string {
  const h = createHash('sha256');
  if (statSync(src).isDirectory()) {
    for (const f of listFiles(src)) {
      h.update(relative(src, f)).update('\0').update(readFileSync(f)).update('\0');
    }
  } else {
    h.update(readFileSync(src));
  }
  return h.digest('hex');
}

/** Copies `src` to `<root>/<model>/<version>-<hash>/<basename>`; returns the copy's path. */
export function storeArtifact(root: string, model: string, version: string, src: string): StoredArtifact {
  if (!existsSync(src)) throw new ServingError('ARTIFACT_INVALID', `model_data_path ${JSON.stringify(src)} does not exist`);
  const hash = hashArtifact(src);
  const dir = join(root, model, `${version}-${hash.slice(0, 16)}`);
  const dest = join(dir, basename(src));
  if (!existsSync(dest)) {
    const tmp = `${dir}.tmp-${process.pid}-${Date.now()}`;
    mkdirSync(tmp, { recursive: true });
    try {
      cpSync(src, join(tmp, basename(src)), { recursive: true });
      rmSync(dir, { recursive: true, force: true });
      renameSync(tmp, dir);
    } catch (e) {
      rmSync(tmp, { recursive: true, force: true });
      throw new ServingError('ARTIFACT_INVALID', `could not copy ${src}: ${(e as Error).message}`);
    }
  }
  return { path: dest, hash };
}

export function removeArtifact(path: string): void {
  if (!path) return;
  rmSync(join(path, '..'), { recursive: true, force: true });
}
