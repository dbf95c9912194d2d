/**
 * Deterministic randomness helpers: a seeded PRNG (for tests and reproducible simulations),
 * a string hash mapped to (0, 1) (for sticky per-uid routing), and sampling from a distribution.
 */

/** Mulberry32: small, fast, seeded; uniform in [0, 1). */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * 32-bit FNV-1a over the string's UTF-16 code units (one byte for ASCII, low then high byte
 * otherwise), finished with MurmurHash3's fmix32 avalanche so that strings differing only in their
 * last characters ("user-1", "user-2") land far apart.
 */
export function hash32(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    h = Math.imul(h ^ (c & 0xff), 0x01000193);
    if (c > 0xff) h = Math.imul(h ^ (c >>> 8), 0x01000193);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** Hash mapped to the open interval (0, 1): never 0, so `Math.log` of it is finite. */
export function hash01(s: string): number {
  return (hash32(s) + 0.5) / 4294967296;
}

/**
 * Index drawn from non-negative weights (need not sum to 1) with a uniform `r` in [0, 1).
 * Falls back to the last positive weight for rounding at the top end; -1 when all are zero.
 */
export function sampleIndex(weights: readonly number[], r: number): number {
  let total = 0;
  for (const w of weights) total += w > 0 ? w : 0;
  if (!(total > 0)) return -1;
  let x = r * total;
  let last = -1;
  for (let i = 0; i < weights.length; i++) {
    const w = weights[i]!;
    if (!(w > 0)) continue;
    last = i;
    if (x < w) return i;
    x -= w;
  }
  return last;
}
