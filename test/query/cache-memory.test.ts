/**
 * The prediction cache accounts for what it really holds (issue 11: it used ~3.6× the bytes it
 * counted). Filled with varied entries far past its bound, the heap it keeps stays within 1.5× of it.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PredictionCache } from '../../src/query/cache/prediction-cache.ts';
import { ModelOutput } from '../../src/query/output.ts';

const text = (s: string) => ModelOutput.fromText(s);
import { heldBytes } from './gc.ts';

const MiB = 1024 * 1024;

/** Deterministic varied entries: short strings, numeric vectors, JSON objects, non-ASCII text. */
function entry(i: number): { input: Buffer; output: string } {
  const r = (k: number) => ((i * 7919 + k * 104729) % 1000) / 1000;
  switch (i % 5) {
    case 0: return { input: Buffer.from(`q${i}`), output: `"label-${i}"` };
    case 1: return { input: Buffer.from(new Float64Array(16).map((_, k) => r(k)).buffer), output: JSON.stringify(Array.from({ length: 10 }, (_, k) => r(k))) };
    case 2: return { input: Buffer.from(JSON.stringify({ text: 'x'.repeat(200 + (i % 300)), i })), output: JSON.stringify({ label: `café ☕ ${i}`, p: r(1) }) };
    case 3: return { input: Buffer.from(String(i)), output: JSON.stringify({ probs: Object.fromEntries(Array.from({ length: 8 }, (_, k) => [`c${k}`, r(k)])) }) };
    default: return { input: Buffer.alloc(2000 + (i % 3000), i % 251), output: JSON.stringify({ embedding: Array.from({ length: 64 }, (_, k) => r(k)) }) };
  }
}

describe('prediction cache memory', () => {
  it('holds at most ~1.5× its byte bound of heap, filled far past it with varied entries', async () => {
    const bound = 16 * MiB;
    const before = await heldBytes();
    const cache = new PredictionCache(bound);
    for (let i = 0; i < 100_000; i++) {
      const { input, output } = entry(i);
      cache.put(PredictionCache.key('m:1', input), 'm:1', input, text(output));
    }
    const grew = (await heldBytes()) - before;
    assert.ok(cache.sizeBytes <= bound);
    assert.ok(cache.count > 10_000, `${cache.count} entries`);
    assert.ok(grew <= 1.5 * bound, `heap grew ${(grew / MiB).toFixed(1)} MiB for a bound of ${bound / MiB} MiB (counted ${(cache.sizeBytes / MiB).toFixed(1)} MiB)`);
    // Counting far more than it holds would waste the bound: what it holds is most of what it counts.
    assert.ok(grew >= 0.6 * cache.sizeBytes, `heap grew only ${(grew / MiB).toFixed(1)} MiB for ${(cache.sizeBytes / MiB).toFixed(1)} MiB counted`);
  });

  it('decodes each hit afresh: answers never share one mutable value', () => {
    const c = new PredictionCache(MiB);
    const input = Buffer.from('x');
    c.put('k', 'm:1', input, text('{"a":[1,2]}'));
    const one = c.get('k', 'm:1', input)!.value as { a: number[] };
    one.a.push(3);
    assert.deepEqual(c.get('k', 'm:1', input)!.value, { a: [1, 2] });
  });

  it('keeps colliding inputs apart and drops a version\'s entries only', () => {
    const c = new PredictionCache(MiB);
    const a = Buffer.from('a');
    const b = Buffer.from('b');
    c.put('same', 'm:1', a, text('"A1"'));
    c.put('same', 'm:1', b, text('"B1"'));
    c.put('same', 'm:2', a, text('"A2"'));
    assert.equal(c.get('same', 'm:1', b)?.value, 'B1');
    assert.equal(c.get('same', 'm:2', a)?.value, 'A2');
    const before = c.sizeBytes;
    c.dropVersion('m:1');
    assert.equal(c.get('same', 'm:1', a), undefined);
    assert.equal(c.get('same', 'm:2', a)?.value, 'A2');
    assert.ok(c.sizeBytes < before && c.sizeBytes > 0);
    c.dropVersion('m:2');
    assert.equal(c.sizeBytes, 0);
    assert.equal(c.count, 0);
  });

  it('counts the key, the input, the output (twice when not ASCII) and a fixed overhead', () => {
    const c = new PredictionCache(MiB);
    c.put('k1', 'm:1', Buffer.alloc(100), text('"ascii"'));
    const ascii = c.sizeBytes;
    c.put('k2', 'm:1', Buffer.alloc(100), text('"ascīī"'));
    assert.equal(c.sizeBytes - ascii, ascii + 7, 'the same length of non-ASCII text counts twice');
  });
});
