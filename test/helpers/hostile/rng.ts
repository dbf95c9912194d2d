/** A seeded random source for the hostile generators (Mulberry32 from src/query/selection/random.ts), so every run sends the same requests. */
import { seededRandom } from '../../../src/query/selection/random.ts';

export class Rng {
  private readonly next: () => number;

  constructor(readonly seed: number) {
    this.next = seededRandom(seed);
  }

  /** Uniform in [0, 1). */
  float(): number {
    return this.next();
  }

  /** Integer in [lo, hi], both included. */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }

  chance(p: number): boolean {
    return this.next() < p;
  }

  pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.next() * items.length)]!;
  }

  /** A fresh generator whose seed is drawn from this one: each category gets its own stream. */
  fork(): Rng {
    return new Rng(Math.floor(this.next() * 2 ** 32));
  }

  bytes(n: number): Buffer {
    const b = Buffer.allocUnsafe(n);
    for (let i = 0; i < n; i++) b[i] = Math.floor(this.next() * 256);
    return b;
  }

  /** Printable ASCII (0x20..0x7e). */
  ascii(n: number): string {
    let s = '';
    for (let i = 0; i < n; i++) s += String.fromCharCode(0x20 + Math.floor(this.next() * 95));
    return s;
  }

  /** Any UTF-16 code units, lone surrogates included. */
  units(n: number): string {
    let s = '';
    for (let i = 0; i < n; i++) s += String.fromCharCode(Math.floor(this.next() * 0x10000));
    return s;
  }
}
