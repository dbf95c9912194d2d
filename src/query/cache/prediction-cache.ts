/**
 * Prediction cache: per model version, keyed by the full input — a SHA-1 of the version and the
 * bytes to find the entry, then a comparison of the input itself, so a hash collision can never
 * return another input's answer. Bounded in bytes, least-recently-used entries evicted first.
 * Only successful predictions are stored. Identical inputs in flight at once share one model call
 * (the query processor's flights).
 *
 * What it counts is what it holds. An entry keeps the input as a one-byte string (its bytes as
 * Latin-1) and the output as the text the model returned, decoded again on each hit: a parsed
 * JSON value costs several times its text in objects and numbers, and the text is what gets
 * counted. An entry costs the key, the input, the output text (twice its length unless it is
 * ASCII: V8 may keep other text as UTF-16), and ENTRY_OVERHEAD for the map slot, entry object and
 * string headers. Strings rather than Buffers: a Buffer adds ~300 bytes of objects and native
 * bookkeeping, and a small one pins the 8 KiB pool slab it was cut from.
 */
import { createHash } from 'node:crypto';
import { decodeOutputText } from '../output.ts';

interface Entry {
  version: string;
  input: string;
  output: string;
  bytes: number;
  /** Another input whose key collides (SHA-1 of different inputs): practically never. */
  next: Entry | undefined;
}

/**
 * Heap per entry beyond its key, input and output text: measured 180–210 bytes (the map slot and
 * its share of the table, the entry object, three string headers); test/query/cache-memory.test.ts.
 */
export const ENTRY_OVERHEAD = 208;
const KEY_LENGTH = 28; // SHA-1 in base64

export class PredictionCache {
  /** Insertion order is recency order: a hit moves its key to the end. */
  private readonly entries = new Map<string, Entry>();
  private bytes = 0;
  hits = 0;
  misses = 0;

  constructor(private readonly maxBytes: number) {}

  get enabled(): boolean { return this.maxBytes > 0; }
  get sizeBytes(): number { return this.bytes; }
  get count(): number { return this.entries.size; }

  static key(version: string, input: Buffer): string {
    return createHash('sha1').update(version).update('\0').update(input).digest('base64');
  }

  /** The cached output, decoded afresh (so no two answers share one mutable value). */
  get(key: string, version: string, input: Buffer): { value: unknown } | undefined {
    const e = this.find(key, version, input);
    if (!e) {
      this.misses++;
      return undefined;
    }
    this.hits++;
    const head = this.entries.get(key)!;
    this.entries.delete(key);
    this.entries.set(key, head);
    return { value: decodeOutputText(e.output) };
  }

  /** `output`: the model's output text, as the replica returned it. */
  put(key: string, version: string, input: Buffer, output: string): void {
    const bytes = KEY_LENGTH + input.length + stringBytes(output) + ENTRY_OVERHEAD;
    if (!this.enabled || bytes > this.maxBytes || this.find(key, version, input)) return;
    const entry: Entry = { version, input: input.toString('latin1'), output, bytes, next: this.entries.get(key) };
    this.entries.delete(key);
    this.entries.set(key, entry);
    this.bytes += bytes;
    this.evict();
  }

  /** A version was deleted or re-registered: forget everything it answered. */
  dropVersion(version: string): void {
    for (const [key, head] of this.entries) {
      let keep: Entry | undefined;
      let dropped = false;
      for (let e: Entry | undefined = head; e; e = e.next) {
        if (e.version === version) {
          this.bytes -= e.bytes;
          dropped = true;
        } else {
          keep = { ...e, next: keep };
        }
      }
      if (!dropped) continue;
      if (keep) this.entries.set(key, keep);
      else this.entries.delete(key);
    }
  }

  private find(key: string, version: string, input: Buffer): Entry | undefined {
    let e = this.entries.get(key);
    if (!e) return undefined;
    const text = input.toString('latin1');
    while (e && !(e.version === version && e.input === text)) e = e.next;
    return e;
  }

  private evict(): void {
    for (const [key, head] of this.entries) {
      if (this.bytes <= this.maxBytes) return;
      for (let e: Entry | undefined = head; e; e = e.next) this.bytes -= e.bytes;
      this.entries.delete(key);
    }
  }
}

/** What V8 keeps for a string: one byte per character for ASCII, else (counted safely) two. */
function stringBytes(s: string): number {
  // eslint-disable-next-line no-control-regex
  return /[^\x00-\x7f]/.test(s) ? 2 * s.length : s.length;
}
