/**
 * Names and labels of the Kubernetes objects the backend makes. Model names and versions are free
 * text; object names must be DNS-1123 labels and label values at most 63 characters of
 * [A-Za-z0-9._-]. Where sanitising loses anything, a short hash of the original keeps two
 * different versions from landing on one name. The exact model and version are kept in
 * annotations, which have no such limits.
 */
import { createHash } from 'node:crypto';

export const MANAGED_BY = 'clipper';

export const LABEL = {
  name: 'app.kubernetes.io/name',
  instance: 'app.kubernetes.io/instance',
  component: 'app.kubernetes.io/component',
  managedBy: 'app.kubernetes.io/managed-by',
  model: 'clipper.io/model',
  version: 'clipper.io/version',
} as const;

export const ANNOTATION = {
  model: 'clipper.io/model',
  version: 'clipper.io/version',
  specHash: 'clipper.io/spec-hash',
  cpus: 'clipper.io/cpus',
  memoryMb: 'clipper.io/memory-mb',
  artifactHash: 'clipper.io/artifact-hash',
  /** Honoured by the ReplicaSet controller (Kubernetes ≥ 1.22): lower cost is removed first on scale down. */
  deletionCost: 'controller.kubernetes.io/pod-deletion-cost',
} as const;

/** What every replica object is selected by: ours, in this namespace. */
export const MANAGED_SELECTOR = `${LABEL.managedBy}=${MANAGED_BY},${LABEL.name}=clipper-replica`;

/** Longest Deployment name whose pods' names (name-<10>-<5>) still fit in 63 characters. */
const MAX_DEPLOYMENT_NAME = 46;

export function shortHash(text: string, len = 6): string {
  return createHash('sha256').update(text).digest('hex').slice(0, len);
}

/** `clipper-<model>-<version>`, a DNS-1123 (and DNS-1035) label; a hash suffix when sanitising lost anything. */
export function deploymentName(model: string, version: string): string {
  const plain = `clipper-${model}-${version}`;
  const clean = plain.toLowerCase().replace(/[^a-z0-9-]+/g, '-').replace(/-+/g, '-').replace(/^-+|-+$/g, '');
  if (clean === plain && clean.length <= MAX_DEPLOYMENT_NAME) return clean;
  const suffix = shortHash(JSON.stringify([model, version]));
  return `${clean.slice(0, MAX_DEPLOYMENT_NAME - suffix.length - 1).replace(/-+$/, '')}-${suffix}`;
}

/** A label value: ≤ 63 of [A-Za-z0-9._-], alphanumeric at both ends; a hash suffix when lossy. */
export function labelValue(text: string): string {
  const clean = text.replace(/[^A-Za-z0-9._-]+/g, '_').replace(/^[^A-Za-z0-9]+|[^A-Za-z0-9]+$/g, '');
  if (clean === text && clean.length <= 63) return clean;
  const suffix = shortHash(text);
  const head = clean.slice(0, 63 - suffix.length - 1).replace(/[^A-Za-z0-9]+$/, '');
  return head ? `${head}-${suffix}` : suffix;
}

export function versionLabels(model: string, version: string): Record<string, string> {
  return {
    [LABEL.name]: 'clipper-replica',
    [LABEL.instance]: deploymentName(model, version),
    [LABEL.component]: 'model-replica',
    [LABEL.managedBy]: MANAGED_BY,
    [LABEL.model]: labelValue(model),
    [LABEL.version]: labelValue(version),
  };
}

/** The pods of one version (the Deployment's selector). */
export function versionSelector(model: string, version: string): Record<string, string> {
  return { [LABEL.managedBy]: MANAGED_BY, [LABEL.instance]: deploymentName(model, version) };
}

export function selectorString(labels: Record<string, string>): string {
  return Object.entries(labels).map(([k, v]) => `${k}=${v}`).join(',');
}

/** Replica ids of pods: `pod/<name>`, the form CLIPPER_REPLICA_ID takes from the downward API. */
export const podReplicaId = (podName: string): string => `pod/${podName}`;
export const podNameOf = (replicaId: string): string | undefined => (replicaId.startsWith('pod/') ? replicaId.slice(4) : undefined);
