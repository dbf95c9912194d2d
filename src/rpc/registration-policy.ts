/**
 * Whether the RPC server accepts a container's registration: a pure decision, tested from a table.
 *
 * In order, a registration is refused when
 *   1. its input type is not one of the codes 0..4;
 *   2. the registry does not know its model name and version (no queue or metric series is ever
 *      made for a name nobody deployed);
 *   3. its input type differs from the registered version's;
 *   4. it carries a secret that is not the one the resource manager gave that replica id
 *      (a wrong secret is refused even when plain registrations are allowed); a `pod/<name>` id
 *      may also carry its version's version-wide secret (replica-auth.ts, versionSecret);
 *   5. it carries no secret and plain v3 registrations are off.
 * A replica id that arrives without a secret is not trusted (when the server has a replica key):
 * the replica is accepted as plain (when allowed) but cannot claim a managed replica's identity.
 */
import { verifyReplicaSecret } from './replica-auth.ts';

export interface RegistrationClaim {
  modelName: string;
  modelVersion: string;
  inputTypeCode: number;
  replicaId?: string | undefined;
  secret?: string | undefined;
}

export interface RegistrationRules {
  /** Accept registrations without a secret (Clipper's own containers). */
  allowPlain: boolean;
  /** Key the replica secrets are derived from; without it no secret can be valid. */
  replicaKey: Buffer | undefined;
  /** The registered version's input type code, or undefined when the registry does not know it. */
  lookupVersion: ((name: string, version: string) => { inputTypeCode: number } | undefined) | undefined;
}

export type RegistrationVerdict =
  | { accept: true; authenticated: boolean; replicaId: string | undefined }
  | { accept: false; reason: string };

export const INPUT_TYPE_CODES = 5;

export function judgeRegistration(claim: RegistrationClaim, rules: RegistrationRules): RegistrationVerdict {
  const { modelName, modelVersion, inputTypeCode: code } = claim;
  if (!Number.isInteger(code) || code < 0 || code >= INPUT_TYPE_CODES) {
    return refuse(Number.isNaN(code) ? 'its input type is not a decimal number' : `its input type ${code} is not one of 0..${INPUT_TYPE_CODES - 1}`);
  }
  if (rules.lookupVersion) {
    const known = rules.lookupVersion(modelName, modelVersion);
    if (!known) return refuse(`no model ${JSON.stringify(modelName)} version ${JSON.stringify(modelVersion)} is registered`);
    if (known.inputTypeCode !== code) return refuse(`its input type ${code} differs from the registered version's ${known.inputTypeCode}`);
  }
  if (claim.secret !== undefined) {
    const ok = claim.replicaId !== undefined && rules.replicaKey !== undefined
      && verifyReplicaSecret(rules.replicaKey, claim.replicaId, modelName, modelVersion, claim.secret);
    if (!ok) return refuse(claim.replicaId === undefined ? 'it sent a secret without a replica id' : `the secret for replica ${JSON.stringify(claim.replicaId)} is wrong`);
    return { accept: true, authenticated: true, replicaId: claim.replicaId };
  }
  if (!rules.allowPlain) return refuse('it sent no replica secret, and plain v3 registrations are off (the RPC port is not on loopback, or --rpc-allow-plain is false)');
  // Where secrets are in force, an id is only as good as its secret; a server without a key has no other way to learn ids.
  return { accept: true, authenticated: false, replicaId: rules.replicaKey ? undefined : claim.replicaId };
}

function refuse(reason: string): RegistrationVerdict {
  return { accept: false, reason };
}
