/** Spark's Murmur3_x86_32 (org.apache.spark.unsafe.hash) as used by HashingTF / FeatureHasher, seed 42. */

const C1 = 0xcc9e2d51;
const C2 = 0x1b873593;
export const SPARK_HASH_SEED = 42;

function mixK1(k1: number): number {
  k1 = Math.imul(k1, C1);
  k1 = (k1 << 15) | (k1 >>> 17);
  return Math.imul(k1, C2);
}

function mixH1(h1: number, k1: number): number {
  h1 ^= k1;
  h1 = (h1 << 13) | (h1 >>> 19);
  return (Math.imul(h1, 5) + 0xe6546b64) | 0;
}

function fmix(h1: number, length: number): number {
  h1 ^= length;
  h1 ^= h1 >>> 16;
  h1 = Math.imul(h1, 0x85ebca6b);
  h1 ^= h1 >>> 13;
  h1 = Math.imul(h1, 0xc2b2ae35);
  h1 ^= h1 >>> 16;
  return h1 | 0;
}

export function hashInt(input: number, seed = SPARK_HASH_SEED): number {
  return fmix(mixH1(seed, mixK1(input | 0)), 4);
}

export function hashLong(input: bigint, seed = SPARK_HASH_SEED): number {
  const low = Number(BigInt.asIntN(32, input));
  const high = Number(BigInt.asIntN(32, input >> 32n));
  let h1 = mixH1(seed, mixK1(low));
  h1 = mixH1(h1, mixK1(high));
  return fmix(h1, 8);
}

function blocks(bytes: Uint8Array, seed: number): number {
  let h1 = seed;
  const aligned = bytes.length - (bytes.length % 4);
  for (let i = 0; i < aligned; i += 4) {
    const word = bytes[i] | (bytes[i + 1] << 8) | (bytes[i + 2] << 16) | (bytes[i + 3] << 24);
    h1 = mixH1(h1, mixK1(word));
  }
  return h1;
}

/** hashUnsafeBytes2: standard murmur3 tail handling (Spark 3+ HashingTF, FeatureHasher). */
export function hashBytes(bytes: Uint8Array, seed = SPARK_HASH_SEED): number {
  const aligned = bytes.length - (bytes.length % 4);
  let h1 = blocks(bytes, seed);
  let k1 = 0;
  for (let i = aligned, shift = 0; i < bytes.length; i++, shift += 8) k1 ^= bytes[i] << shift;
  h1 ^= mixK1(k1);
  return fmix(h1, bytes.length);
}

/** hashUnsafeBytes: Spark's legacy variant mixing each tail byte (sign-extended) as a block (Spark < 3 HashingTF). */
export function hashBytesLegacy(bytes: Uint8Array, seed = SPARK_HASH_SEED): number {
  const aligned = bytes.length - (bytes.length % 4);
  let h1 = blocks(bytes, seed);
  for (let i = aligned; i < bytes.length; i++) h1 = mixH1(h1, mixK1((bytes[i] << 24) >> 24));
  return fmix(h1, bytes.length);
}

const encoder = new TextEncoder();
const f64 = new Float64Array(1);
const i64 = new BigInt64Array(f64.buffer);

/** FeatureHasher.murmur3Hash / mllib HashingTF.murmur3Hash of one term. */
export function hashTerm(term: unknown, legacy: boolean): number {
  if (term === null || term === undefined) return SPARK_HASH_SEED;
  if (typeof term === 'boolean') return hashInt(term ? 1 : 0);
  if (typeof term === 'number') {
    if (Number.isInteger(term) && term >= -2147483648 && term <= 2147483647) return hashInt(term);
    if (Number.isInteger(term) && Number.isSafeInteger(term)) return hashLong(BigInt(term));
    f64[0] = term;
    return hashLong(i64[0]);
  }
  const bytes = encoder.encode(String(term));
  return legacy ? hashBytesLegacy(bytes) : hashBytes(bytes);
}

export function nonNegativeMod(x: number, mod: number): number {
  const r = x % mod;
  return r < 0 ? r + mod : r;
}
