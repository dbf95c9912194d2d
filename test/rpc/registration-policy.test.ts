/** Which registrations the RPC server accepts: a table of claims against rules. */
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { judgeRegistration, type RegistrationClaim, type RegistrationRules } from '../../src/rpc/registration-policy.ts';
import { replicaSecret, versionSecret } from '../../src/rpc/replica-auth.ts';

const key = Buffer.alloc(32, 7);
const known = new Map([['m:1', 3]]);
const lookup: RegistrationRules['lookupVersion'] = (n, v) => {
  const code = known.get(`${n}:${v}`);
  return code === undefined ? undefined : { inputTypeCode: code };
};
const good = replicaSecret(key, 'm:1#0', 'm', '1');
const podSecret = versionSecret(key, 'm', '1');
const claim = (c: Partial<RegistrationClaim>): RegistrationClaim => ({ modelName: 'm', modelVersion: '1', inputTypeCode: 3, ...c });
const plainOn: RegistrationRules = { allowPlain: true, replicaKey: key, lookupVersion: lookup };
const plainOff: RegistrationRules = { ...plainOn, allowPlain: false };

const cases: Array<[string, RegistrationClaim, RegistrationRules, string | { authenticated: boolean; replicaId?: string }]> = [
  ['input type -1', claim({ inputTypeCode: -1 }), plainOn, 'is not one of 0..4'],
  ['input type 1e300 (not decimal text)', claim({ inputTypeCode: NaN }), plainOn, 'not a decimal number'],
  ['input type 5', claim({ inputTypeCode: 5 }), plainOn, 'is not one of 0..4'],
  ['input type 1e20', claim({ inputTypeCode: 1e20 }), plainOn, 'is not one of 0..4'],
  ['unknown model', claim({ modelName: 'nobody' }), plainOn, 'no model "nobody" version "1" is registered'],
  ['unknown version', claim({ modelVersion: '2' }), plainOn, 'version "2" is registered'],
  ['type differs from the registered one', claim({ inputTypeCode: 4 }), plainOn, 'differs from the registered'],
  ['plain, plain allowed', claim({}), plainOn, { authenticated: false }],
  ['plain, plain off', claim({}), plainOff, 'plain v3 registrations are off'],
  ['replica id without secret is not trusted', claim({ replicaId: 'm:1#0' }), plainOn, { authenticated: false }],
  ['replica id without secret, plain off', claim({ replicaId: 'm:1#0' }), plainOff, 'plain v3 registrations are off'],
  ['valid secret, plain off', claim({ replicaId: 'm:1#0', secret: good }), plainOff, { authenticated: true, replicaId: 'm:1#0' }],
  ['valid secret, plain on', claim({ replicaId: 'm:1#0', secret: good }), plainOn, { authenticated: true, replicaId: 'm:1#0' }],
  ['wrong secret, plain on', claim({ replicaId: 'm:1#0', secret: 'x'.repeat(64) }), plainOn, 'is wrong'],
  ['empty secret, plain on', claim({ replicaId: 'm:1#0', secret: '' }), plainOn, 'is wrong'],
  ["another replica's secret", claim({ replicaId: 'm:1#1', secret: good }), plainOn, 'is wrong'],
  ['secret without replica id', claim({ secret: good }), plainOn, 'without a replica id'],
  ['secret but the server has no key', claim({ replicaId: 'm:1#0', secret: good }), { ...plainOn, replicaKey: undefined }, 'is wrong'],
  ['no registry check: any name', claim({ modelName: 'any' }), { ...plainOn, lookupVersion: undefined }, { authenticated: false }],
  ['pod replica with the version-wide secret', claim({ replicaId: 'pod/m-1-x7k2p', secret: podSecret }), plainOff, { authenticated: true, replicaId: 'pod/m-1-x7k2p' }],
  ['pod replica with its own secret', claim({ replicaId: 'pod/a', secret: replicaSecret(key, 'pod/a', 'm', '1') }), plainOff, { authenticated: true, replicaId: 'pod/a' }],
  ['version-wide secret for a non-pod id', claim({ replicaId: 'm:1#0', secret: podSecret }), plainOn, 'is wrong'],
  ['version-wide secret, bare "pod/"', claim({ replicaId: 'pod/', secret: podSecret }), plainOn, 'is wrong'],
  ["version-wide secret of another version", claim({ replicaId: 'pod/a', secret: versionSecret(key, 'm', '2') }), plainOn, 'is wrong'],
  ['no key at all: the claimed replica id is kept', claim({ replicaId: 'm:1#0' }), { ...plainOn, replicaKey: undefined }, { authenticated: false, replicaId: 'm:1#0' }],
];

for (const [what, c, rules, want] of cases) {
  it(what, () => {
    const v = judgeRegistration(c, rules);
    if (typeof want === 'string') {
      assert.equal(v.accept, false, `expected a refusal, got ${JSON.stringify(v)}`);
      if (!v.accept) assert.ok(v.reason.includes(want), `reason ${JSON.stringify(v.reason)} should say ${JSON.stringify(want)}`);
    } else {
      assert.deepEqual(v, { accept: true, authenticated: want.authenticated, replicaId: want.replicaId });
    }
  });
}

it("a secret is bound to the model and version it was made for", () => {
  const forOther = replicaSecret(key, 'm:1#0', 'other', '1');
  const v = judgeRegistration(claim({ replicaId: 'm:1#0', secret: forOther }), plainOn);
  assert.equal(v.accept, false);
});
