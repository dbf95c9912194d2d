/**
 * Schema checks of Kubernetes objects with `kubernetes-models` (the OpenAPI schemas of the API
 * server, compiled). The backend checks every object before it sends it, the manifest renderer
 * every object it renders, and the test API server every object it receives.
 */
import { Deployment } from 'kubernetes-models/apps/v1/Deployment';
import { StatefulSet } from 'kubernetes-models/apps/v1/StatefulSet';
import { Scale } from 'kubernetes-models/autoscaling/v1/Scale';
import { ConfigMap } from 'kubernetes-models/v1/ConfigMap';
import { Namespace } from 'kubernetes-models/v1/Namespace';
import { Pod } from 'kubernetes-models/v1/Pod';
import { Secret } from 'kubernetes-models/v1/Secret';
import { Service } from 'kubernetes-models/v1/Service';
import { ServiceAccount } from 'kubernetes-models/v1/ServiceAccount';
import { Role } from 'kubernetes-models/rbac.authorization.k8s.io/v1/Role';
import { RoleBinding } from 'kubernetes-models/rbac.authorization.k8s.io/v1/RoleBinding';

interface Validatable { validate(): void }
type ModelClass = new (data: never) => Validatable;

const MODELS: Record<string, ModelClass> = {
  'apps/v1/Deployment': Deployment as unknown as ModelClass,
  'apps/v1/StatefulSet': StatefulSet as unknown as ModelClass,
  'autoscaling/v1/Scale': Scale as unknown as ModelClass,
  'v1/ConfigMap': ConfigMap as unknown as ModelClass,
  'v1/Namespace': Namespace as unknown as ModelClass,
  'v1/Pod': Pod as unknown as ModelClass,
  'v1/Secret': Secret as unknown as ModelClass,
  'v1/Service': Service as unknown as ModelClass,
  'v1/ServiceAccount': ServiceAccount as unknown as ModelClass,
  'rbac.authorization.k8s.io/v1/Role': Role as unknown as ModelClass,
  'rbac.authorization.k8s.io/v1/RoleBinding': RoleBinding as unknown as ModelClass,
};

export const VALIDATED_KINDS = Object.keys(MODELS);

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const DNS_SUBDOMAIN = /^(?=.{1,253}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9])?$/;

/** Kinds whose names must be DNS-1123 labels (the rest: subdomains). */
const LABEL_NAMED = new Set(['Service', 'Namespace']);

/**
 * The problems of one object, empty when it is valid: the schema (types, required fields) and what
 * the schema cannot say (name syntax, label values), as the API server's validation does.
 */
export function objectProblems(obj: unknown): string[] {
  const o = obj as { apiVersion?: string; kind?: string; metadata?: { name?: string; labels?: Record<string, string> } } | null;
  if (!o || typeof o !== 'object') return ['not an object'];
  const key = `${o.apiVersion}/${o.kind}`;
  const Model = MODELS[key];
  if (!Model) return [`no schema known for ${key}`];
  const problems: string[] = [];
  try {
    new Model(o as never).validate();
  } catch (e) {
    problems.push(e instanceof Error ? e.message : String(e));
  }
  const name = o.metadata?.name;
  if (name !== undefined && !(LABEL_NAMED.has(o.kind!) ? DNS_LABEL : DNS_SUBDOMAIN).test(name)) {
    problems.push(`metadata.name ${JSON.stringify(name)} is not a valid DNS-1123 ${LABEL_NAMED.has(o.kind!) ? 'label' : 'subdomain'}`);
  }
  for (const [k, v] of Object.entries(o.metadata?.labels ?? {})) {
    if (!LABEL_VALUE.test(v)) problems.push(`label ${k}=${JSON.stringify(v)}: not a valid label value`);
  }
  return problems;
}

/** Throws with every problem when `obj` is not a valid object of its kind. */
export function validateObject(obj: unknown): void {
  const problems = objectProblems(obj);
  if (problems.length) {
    const o = obj as { kind?: string; metadata?: { name?: string } };
    throw new Error(`invalid ${o?.kind ?? 'object'} ${o?.metadata?.name ?? ''}: ${problems.join('; ')}`);
  }
}
