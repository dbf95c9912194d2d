/**
 * Inputs that crashed a replica (queries of death), per model version: answered at once with the
 * reason instead of being sent to another replica. Remembered by a SHA-256 of the input (the input
 * itself is not kept), for `ttlMs`, at most `maxEntries` in all (the oldest forgotten first).
 * A version deleted or registered again starts clean: the new model may not crash.
 */
import { hash } from 'node:crypto';
import type { Clock } from '../clock.ts';

export interface QuarantineOptions { maxEntries: number; ttlMs: number }

export const DEFAULT_QUARANTINE: QuarantineOptions = { maxEntries: 1024, ttlMs: 10 * 60_000 };

interface Held { version: string; reason: string; until: number }

export class Quarantine {
  /** Insertion order is age order. */
  private readonly held = new Map<string, Held>();
  /** Entries per version, so a version with none skips hashing its inputs. */
  private readonly perVersion = new Map<string, number>();

  constructor(private readonly clock: Clock, private readonly opts: QuarantineOptions = DEFAULT_QUARANTINE) {}

  get size(): number { return this.held.size; }

  /** The reason the input is refused, or undefined. */
  check(version: string, input: Buffer): string | undefined {
    if (!this.perVersion.has(version)) return undefined;
    const key = Quarantine.key(version, input);
    const h = this.held.get(key);
    if (!h) return undefined;
    if (h.until <= this.clock.now()) {
      this.forget(key, h);
      return undefined;
    }
    return h.reason;
  }

  add(version: string, input: Buffer, reason: string): void {
    if (this.opts.maxEntries <= 0) return;
    const key = Quarantine.key(version, input);
    const old = this.held.get(key);
    if (old) this.forget(key, old);
    this.held.set(key, { version, reason, until: this.clock.now() + this.opts.ttlMs });
    this.perVersion.set(version, (this.perVersion.get(version) ?? 0) + 1);
    for (const [k, h] of this.held) {
      if (this.held.size <= this.opts.maxEntries) break;
      this.forget(k, h);
    }
  }

  dropVersion(version: string): void {
    if (!this.perVersion.has(version)) return;
    for (const [k, h] of this.held) if (h.version === version) this.forget(k, h);
  }

  private forget(key: string, h: Held): void {
    this.held.delete(key);
    const n = (this.perVersion.get(h.version) ?? 1) - 1;
    if (n > 0) this.perVersion.set(h.version, n);
    else this.perVersion.delete(h.version);
  }

  private static key(version: string, input: Buffer): string {
    return `${version}\0${hash('sha256', input, 'base64')}`;
  }
}
