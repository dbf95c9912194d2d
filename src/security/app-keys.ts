/**
 * Per-application keys for the query API. An application with no keys is open (Clipper's
 * behaviour); one with keys answers `/{app}/predict` and `/{app}/update` only to a caller that
 * presents one of them. Several keys at once let an operator rotate without downtime.
 *
 * Keys are kept as SHA-256 digests, in memory and in the store (state key `app-keys/<app>`), so
 * neither the admin API nor a copy of the registry file reveals them. A presented key is hashed
 * and compared against every digest in constant time.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { ServingError } from '../errors.ts';
import type { Store } from '../store/store.ts';

/** Keys an application may have at once (old and new during a rotation, a few per client). */
export const MAX_KEYS_PER_APP = 32;
const MIN_KEY_LENGTH = 8;
const MAX_KEY_LENGTH = 512;
/** Visible ASCII: a key travels in an HTTP header, after `Bearer `. */
const KEY_PATTERN = /^[\x21-\x7e]+$/;

export type KeyCheck = 'open' | 'ok' | 'missing' | 'wrong';

export class AppKeys {
  private readonly digests = new Map<string, Buffer[]>();

  constructor(private readonly store: Pick<Store, 'getState' | 'putState'>) {}

  /**
   * Reads the keys of the given applications (the ones in the registry) from the store. Called
   * again every second when the store is shared, so keys set through another frontend are
   * enforced here within about a second.
   */
  async load(appNames: Iterable<string>): Promise<void> {
    const names = new Set(appNames);
    for (const app of names) {
      const text = await this.store.getState(stateKey(app));
      const list = text === undefined ? [] : parseDigests(text);
      if (list.length > 0) this.digests.set(app, list.map((hex) => Buffer.from(hex, 'hex')));
      else this.digests.delete(app);
    }
    for (const app of this.digests.keys()) if (!names.has(app)) this.digests.delete(app);
  }

  isProtected(app: string): boolean {
    return (this.digests.get(app)?.length ?? 0) > 0;
  }

  /** Replaces an application's keys; an empty list opens it. Returns how many keys it now has. */
  async set(app: string, keys: unknown): Promise<number> {
    const list = checkKeys(keys);
    const digests = [...new Set(list.map(digestHex))];
    await this.store.putState(stateKey(app), JSON.stringify(digests));
    if (digests.length === 0) this.digests.delete(app);
    else this.digests.set(app, digests.map((hex) => Buffer.from(hex, 'hex')));
    return digests.length;
  }

  /** Forgets an application's keys (it was deleted), so a new application of that name starts open. */
  async drop(app: string): Promise<void> {
    const had = this.digests.delete(app);
    if (had) await this.store.putState(stateKey(app), '[]');
  }

  check(app: string, presented: string | undefined): KeyCheck {
    const digests = this.digests.get(app);
    if (!digests || digests.length === 0) return 'open';
    if (presented === undefined || presented === '') return 'missing';
    const given = createHash('sha256').update(presented).digest();
    let match = false;
    // Every digest is compared, so the time taken does not tell which one (or whether one) matched.
    for (const d of digests) match = timingSafeEqual(d, given) || match;
    return match ? 'ok' : 'wrong';
  }
}

function stateKey(app: string): string {
  return `app-keys/${app}`;
}

function digestHex(key: string): string {
  return createHash('sha256').update(key).digest('hex');
}

function parseDigests(text: string): string[] {
  try {
    const v: unknown = JSON.parse(text);
    return Array.isArray(v) ? v.filter((d): d is string => typeof d === 'string' && /^[0-9a-f]{64}$/.test(d)) : [];
  } catch {
    return [];
  }
}

function checkKeys(keys: unknown): string[] {
  if (!Array.isArray(keys)) throw new ServingError('INVALID_INPUT', 'keys must be a list of strings (an empty list removes every key)');
  if (keys.length > MAX_KEYS_PER_APP) throw new ServingError('INVALID_INPUT', `keys: at most ${MAX_KEYS_PER_APP} keys per application`);
  return keys.map((k, i) => {
    if (typeof k !== 'string') throw new ServingError('INVALID_INPUT', `keys[${i}] must be a string`);
    // The message names the rule, never the key.
    if (k.length < MIN_KEY_LENGTH || k.length > MAX_KEY_LENGTH) {
      throw new ServingError('INVALID_INPUT', `keys[${i}] must be ${MIN_KEY_LENGTH} to ${MAX_KEY_LENGTH} characters long`);
    }
    if (!KEY_PATTERN.test(k)) throw new ServingError('INVALID_INPUT', `keys[${i}] may hold only visible ASCII characters (no spaces)`);
    return k;
  });
}
