/**
 * Request-body generators for the load generator (`runLoad({generator, generatorArg})`) and the
 * latency probe: `makeBodyFactory(spec)` returns `(i) => body`. Every body is `{"input": [...]}`.
 */
import { fileURLToPath } from 'node:url';
import { seededRandom } from '../../src/query/selection/random.ts';

export const BODIES = fileURLToPath(import.meta.url);

export type BodySpec =
  /** A small input, different for every request (i, i + 0.5, ...). */
  | { kind: 'unique'; width: number }
  /** `count` bodies of `width` random floats in [0, 1) (4 decimals), made once and cycled. */
  | { kind: 'floats'; width: number; count: number; seed: number }
  /** With probability p one of `hot` fixed inputs, else a fresh input never sent before. */
  | { kind: 'hot'; p: number; hot: number; width: number; seed: number };

/** Deterministic PRNG returning floats in [0, 1). */
export const prng = seededRandom;

function vector(width: number, at: (k: number) => number): string {
  const parts: string[] = new Array(width);
  for (let k = 0; k < width; k++) parts[k] = String(at(k));
  return `{"input":[${parts.join(',')}]}`;
}

export function makeBodyFactory(spec: BodySpec): (i: number) => string {
  switch (spec.kind) {
    case 'unique':
      return (i) => vector(spec.width, (k) => i + k / 2);
    case 'floats': {
      const rand = prng(spec.seed);
      const bodies = Array.from({ length: spec.count }, () => vector(spec.width, () => Number(rand().toFixed(4))));
      return (i) => bodies[i % bodies.length]!;
    }
    case 'hot': {
      const rand = prng(spec.seed);
      const hot = Array.from({ length: spec.hot }, (_, h) => vector(spec.width, (k) => -1 - h - k / 8));
      // Fresh inputs count up from a random 48-bit base (not from the seed): two load processes
      // (a warm-up and its run) must never send the same "fresh" input.
      const base = Math.floor(Math.random() * 2 ** 48);
      let fresh = 0;
      return () => (rand() < spec.p ? hot[Math.floor(rand() * hot.length)]! : vector(spec.width, (k) => base + fresh++ * spec.width + k));
    }
  }
}
