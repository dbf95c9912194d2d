/**
 * V2 model metadata of `onnx` versions: the model file's own input and output tensors
 * (runtimes/onnx/metadata.ts, which reads them without onnxruntime), read once per artifact.
 *
 * The cache is keyed by the artifact's content hash, so it is right for every version and every
 * service that shares that content, and a deleted and re-added version with other content is read
 * afresh. A file that cannot be read is remembered as such (answered with the generic metadata).
 * Metadata is answered synchronously: when this frontend has no local copy yet (a shared store),
 * the copy is fetched in the background and the generic metadata is answered until it is read.
 */
import { existsSync } from 'node:fs';
import type { ModelVersion } from '../registry/types.ts';
import { readOnnxMetadata, type OnnxMetadata } from '../runtimes/onnx/metadata.ts';

/** Where a version's artifact is on this machine (RegistryService.localArtifact). */
export interface ArtifactSource {
  localArtifact(v: ModelVersion): Promise<string>;
}

/** By artifact hash; null: the artifact is not a readable ONNX model. */
const known = new Map<string, OnnxMetadata | null>();
const fetching = new Set<string>();

function read(path: string): OnnxMetadata | null {
  try {
    return readOnnxMetadata(path);
  } catch {
    return null;
  }
}

/** The ONNX model's tensors for an `onnx` version, or undefined (another runtime, unreadable, or not local yet). */
export function onnxTensors(v: ModelVersion, source: ArtifactSource): OnnxMetadata | undefined {
  if (v.runtime !== 'onnx' || !v.artifactPath || !v.artifactHash) return undefined;
  const hit = known.get(v.artifactHash);
  if (hit !== undefined) return hit ?? undefined;
  if (existsSync(v.artifactPath)) {
    const m = read(v.artifactPath);
    known.set(v.artifactHash, m);
    return m ?? undefined;
  }
  if (!fetching.has(v.artifactHash)) {
    fetching.add(v.artifactHash);
    source.localArtifact(v)
      .then((path) => { if (path) known.set(v.artifactHash, read(path)); })
      .catch(() => {}) // not fetchable now: asked again on the next request
      .finally(() => fetching.delete(v.artifactHash));
  }
  return undefined;
}
