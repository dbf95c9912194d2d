/**
 * Prediction cache: per model version, keyed by the full input. A small input is its own key (the
 * version and the input's bytes as a one-byte string: no hashing at all); a larger one is found by
 * a SHA-1 of the version and the bytes, then compared with the input itself, so a hash collision
 * can never return another input's answer. Bounded in bytes, least-recently-used entries evicted first.
 * Only successful predictions are stored. Identical inputs in flight at once share one model call
 * (the query processor's flights).
 *
 * Every operation is O(1), however full the cache is: recency is a doubly linked list through the
 * entries (a hit moves its entry to the front, eviction takes from the back). A Map kept in
 * recency order by delete-and-set instead leaves holes that eviction's scan from the oldest end
 * must walk past, which made a full cache slow down the whole server.
 *
 * What it counts is what it holds. An entry keeps the input as a one-byte string (its bytes as
 * Latin-1) and the output as the text the model returned with its kind (JSON or string) — never
 * a parsed value, which costs several times its text — or a tensor's bytes as a one-byte string.
 * An entry costs the key, the input, the output (twice its length unless it is ASCII: V8 may keep
 * other text as UTF-16), and ENTRY_OVERHEAD for the map slot, entry object and string headers.
 * Strings rather than Buffers: a Buffer adds ~300 bytes of objects and native bookkeeping, and a
 * small one pins the 8 KiB pool slab it was cut from.
 */
import { createHash } from 'node:crypto';
import { ModelOutput, type TensorOutput } from '../output.ts';

interface Entry {
  key: string;
  version: string;
  /** The input's bytes as Latin-1, for a hashed key ('' for a direct key: the key holds the input). */
  input: string;
  /** The output text, or a tensor's bytes as Latin-1. */
  output: string;
  isJson: boolean;
  tensor: Omit<TensorOutput, 'data'> | undefined;
  bytes: number;
  /** Another input whose key collides (SHA-1 of different inputs): practically never. */
  next: Entry | undefined;
  /** Recency list: toward the most recently used, toward the least. */
  newer: Entry | undefined;
  older: Entry | undefined;
}

/**
 * Heap per entry beyond its key, input and output text: measured 180–230 bytes (the map slot and
 * its share of the table, the entry object, three string headers); test/query/cache-memory.test.ts.
 */
export const ENTRY_OVERHEAD = 232;
/** Inputs up to this many bytes are their own key. */
const DIRECT_KEY_BYTES = 256;

export class PredictionCache {
  private readonly entries = new Map<string, Entry>();
  private newest: Entry | undefined;
  private oldest: Entry | undefined;
  private bytes = 0;
  private entryCount = 0;
  hits = 0;
  misses = 0;

  constructor(private readonly maxBytes: number) {}

  get enabled(): boolean { return this.maxBytes > 0; }
  get sizeBytes(): number { return this.bytes; }
  get count(): number { return this.entryCount; }

  static key(version: string, input: Buffer): string {
    if (input.length <= DIRECT_KEY_BYTES) return `d${version}\0${input.toString('latin1')}`;
    return `h${createHash('sha1').update(version).update('\0').update(input).digest('base64')}`;
  }

  /** The cached output (a fresh object: no two answers share one mutable value). */
  get(key: string, version: string, input: Buffer): ModelOutput | undefined {
    const e = this.find(key, version, input);
    if (!e) {
      this.misses++;
      return undefined;
    }
    this.hits++;
    this.unlink(e);
    this.pushNewest(e);
    return e.tensor ? ModelOutput.fromTensor({ ...e.tensor, data: Buffer.from(e.output, 'latin1') }) : ModelOutput.known(e.output, e.isJson);
  }

  put(key: string, version: string, input: Buffer, output: ModelOutput): void {
    if (!this.enabled) return;
    const text = output.tensor ? output.tensor.data.toString('latin1') : output.text;
    if (text === undefined) return;
    const direct = key.charCodeAt(0) === 100; // 'd'
    const bytes = stringBytes(key) + (direct ? 0 : input.length) + stringBytes(text) + ENTRY_OVERHEAD;
    if (bytes > this.maxBytes || this.find(key, version, input)) return;
    const tensor = output.tensor ? { datatype: output.tensor.datatype, shape: output.tensor.shape } : undefined;
    const entry: Entry = {
      key, version, input: direct ? '' : input.toString('latin1'), output: text, isJson: output.isJson, tensor, bytes,
      next: this.entries.get(key), newer: undefined, older: undefined,
    };
    this.entries.set(key, entry);
    this.pushNewest(entry);
    this.bytes += bytes;
    this.entryCount++;
    while (this.bytes > this.maxBytes && this.oldest) this.remove(this.oldest);
  }

  /** A version was deleted or re-registered: forget everything it answered. */
  dropVersion(version: string): void {
    for (let e = this.oldest; e;) {
      const newer = e.newer;
      if (e.version === version) this.remove(e);
      e = newer;
    }
  }

  private find(key: string, version: string, input: Buffer): Entry | undefined {
    let e = this.entries.get(key);
    if (!e || key.charCodeAt(0) === 100) return e; // a direct key is the version and the input
    const text = input.toString('latin1');
    while (e && !(e.version === version && e.input === text)) e = e.next;
    return e;
  }

  private remove(e: Entry): void {
    this.unlink(e);
    this.bytes -= e.bytes;
    this.entryCount--;
    const head = this.entries.get(e.key);
    if (head === e) {
      if (e.next) this.entries.set(e.key, e.next);
      else this.entries.delete(e.key);
      return;
    }
    for (let p = head; p; p = p.next) {
      if (p.next === e) {
        p.next = e.next;
        return;
      }
    }
  }

  private pushNewest(e: Entry): void {
    e.older = this.newest;
    e.newer = undefined;
    if (this.newest) this.newest.newer = e;
    this.newest = e;
    this.oldest ??= e;
  }

  private unlink(e: Entry): void {
    if (e.newer) e.newer.older = e.older;
    else this.newest = e.older;
    if (e.older) e.older.newer = e.newer;
    else this.oldest = e.newer;
    e.newer = e.older = undefined;
  }
}

/** What V8 keeps for a string: one byte per character for ASCII, else (counted safely) two. */
function stringBytes(s: string): number {
  // eslint-disable-next-line no-control-regex
  return /[^\x00-\x7f]/.test(s) ? 2 * s.length : s.length;
}
