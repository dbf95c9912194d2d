/**
 * Prediction cache: per model version, keyed by the full input — a SHA-1 of the bytes to find
 * the bucket, then a byte-for-byte comparison, so a hash collision can never return another
 * input's answer. Bounded in bytes, least-recently-used entries evicted first. Only successful
 * predictions are stored. Identical inputs in flight at once share one model call (see Flights).
 */
import { hash } from 'node:crypto';

interface Entry { version: string; input: Buffer; value: unknown; bytes: number }

/** Rough per-entry overhead of the maps and objects, so many tiny entries still count. */
const ENTRY_OVERHEAD = 96;

export class PredictionCache {
  /** Insertion order is recency order: a hit moves its key to the end. */
  private readonly entries = new Map<string, Entry[]>();
  private bytes = 0;
  hits = 0;
  misses = 0;

  constructor(private readonly maxBytes: number) {}

  get enabled(): boolean { return this.maxBytes > 0; }
  get sizeBytes(): number { return this.bytes; }

  static key(version: string, input: Buffer): string {
    return `${version}\0${hash('sha1', input, 'base64')}`;
  }

  get(key: string, version: string, input: Buffer): { value: unknown } | undefined {
    const bucket = this.entries.get(key);
    const e = bucket?.find((x) => x.version === version && x.input.equals(input));
    if (!e) {
      this.misses++;
      return undefined;
    }
    this.hits++;
    this.entries.delete(key);
    this.entries.set(key, bucket!);
    return { value: e.value };
  }

  put(key: string, version: string, input: Buffer, value: unknown, outputBytes: number): void {
    const bytes = input.length + outputBytes + ENTRY_OVERHEAD;
    if (!this.enabled || bytes > this.maxBytes) return;
    const bucket = this.entries.get(key) ?? [];
    if (bucket.some((x) => x.version === version && x.input.equals(input))) return;
    // Copy: the input may be a view into a larger request buffer we must not keep alive.
    bucket.push({ version, input: Buffer.from(input), value, bytes });
    this.entries.delete(key);
    this.entries.set(key, bucket);
    this.bytes += bytes;
    this.evict();
  }

  /** A version was deleted or re-registered: forget everything it answered. */
  dropVersion(version: string): void {
    for (const [key, bucket] of this.entries) {
      const keep = bucket.filter((e) => e.version !== version);
      if (keep.length === bucket.length) continue;
      for (const e of bucket) if (e.version === version) this.bytes -= e.bytes;
      if (keep.length) this.entries.set(key, keep);
      else this.entries.delete(key);
    }
  }

  private evict(): void {
    for (const [key, bucket] of this.entries) {
      if (this.bytes <= this.maxBytes) return;
      for (const e of bucket) this.bytes -= e.bytes;
      this.entries.delete(key);
    }
  }
}
