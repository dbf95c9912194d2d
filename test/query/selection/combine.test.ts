import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { combineOutputs, kindOf, type OutputKind } from '../../../src/query/selection/combine.ts';

type Case = {
  name: string;
  outputs: Array<[string, unknown]>;
  weights: Record<string, number>;
  output: unknown;
  confidence: number;
  contributors?: string[];
};

const close = (a: unknown, b: unknown, path = 'output'): void => {
  if (typeof a === 'number' && typeof b === 'number') {
    assert.ok(Math.abs(a - b) < 1e-9, `${path}: ${a} vs ${b}`);
  } else if (a && b && typeof a === 'object' && typeof b === 'object') {
    assert.deepEqual(Object.keys(a).sort(), Object.keys(b).sort(), path);
    for (const k of Object.keys(a)) close((a as never)[k], (b as never)[k], `${path}.${k}`);
  } else {
    assert.deepEqual(a, b, path);
  }
};

const CASES: Case[] = [
  { name: 'number weighted mean', outputs: [['a', 10], ['b', 20]], weights: { a: 3, b: 1 }, output: 12.5, confidence: 1 - Math.sqrt(0.75 * 2.5 ** 2 + 0.25 * 7.5 ** 2) / 20 },
  { name: 'numbers that agree', outputs: [['a', 7], ['b', 7], ['c', 7]], weights: { a: 1, b: 2, c: 3 }, output: 7, confidence: 1 },
  { name: '{0, x} at equal weight → 0.5', outputs: [['a', 0], ['b', 4]], weights: { a: 1, b: 1 }, output: 2, confidence: 0.5 },
  { name: '{-x, x} → 0', outputs: [['a', -3], ['b', 3]], weights: { a: 1, b: 1 }, output: 0, confidence: 0 },
  { name: 'label vote', outputs: [['a', 'cat'], ['b', 'dog'], ['c', 'dog']], weights: { a: 0.5, b: 0.3, c: 0.2 }, output: 'cat', confidence: 0.5 },
  { name: 'label vote, majority', outputs: [['a', 'cat'], ['b', 'dog'], ['c', 'dog']], weights: { a: 0.4, b: 0.3, c: 0.3 }, output: 'dog', confidence: 0.6 },
  { name: 'label tie → first seen', outputs: [['a', 'x'], ['b', 'y']], weights: { a: 1, b: 1 }, output: 'x', confidence: 0.5 },
  { name: 'booleans vote; true ≠ "true"', outputs: [['a', true], ['b', 'true'], ['c', true]], weights: { a: 1, b: 1.5, c: 1 }, output: true, confidence: 2 / 3.5, contributors: ['a', 'b', 'c'] },
  { name: 'probability objects per class', outputs: [['a', { cat: 0.8, dog: 0.2 }], ['b', { cat: 0.2, dog: 0.8 }]], weights: { a: 3, b: 1 }, output: { cat: 0.65, dog: 0.35 }, confidence: 0.75 },
  { name: 'missing class counts as 0', outputs: [['a', { x: 1 }], ['b', { y: 1 }]], weights: { a: 1, b: 1 }, output: { x: 0.5, y: 0.5 }, confidence: 0.5 },
  { name: 'vectors element-wise', outputs: [['a', [1, 2]], ['b', [3, 4]]], weights: { a: 1, b: 1 }, output: [2, 3], confidence: 1 - Math.sqrt(2) / 5 },
  { name: 'vectors of another length are left out', outputs: [['a', [1, 2]], ['b', [3, 4]], ['c', [9]]], weights: { a: 1, b: 1, c: 1 }, output: [2, 3], confidence: 1 - Math.sqrt(2) / 5, contributors: ['a', 'b'] },
  {
    name: 'spark classifier outputs: probabilities averaged, argmax predicted',
    outputs: [['a', { prediction: 'yes', probability: { yes: 0.6, no: 0.4 } }], ['b', { prediction: 'no', probability: { yes: 0.1, no: 0.9 } }]],
    weights: { a: 1, b: 1 }, output: { prediction: 'no', probability: { yes: 0.35, no: 0.65 } }, confidence: 0.5,
  },
  {
    name: 'spark numeric class index keeps its type',
    outputs: [['a', { prediction: 1, probability: { 0: 0.3, 1: 0.7 } }], ['b', { prediction: 0, probability: { 0: 0.6, 1: 0.4 } }]],
    weights: { a: 2, b: 1 }, output: { prediction: 1, probability: { 0: 0.4, 1: 0.6 } }, confidence: 2 / 3,
  },
  {
    name: 'a prediction without probability counts one-hot',
    outputs: [['a', { prediction: 'no' }], ['b', { prediction: 'yes', probability: { yes: 0.9, no: 0.1 } }]],
    weights: { a: 1, b: 3 }, output: { prediction: 'yes', probability: { no: 0.325, yes: 0.675 } }, confidence: 0.75,
  },
  { name: 'spark regression predictions averaged', outputs: [['a', { prediction: 2 }], ['b', { prediction: 4 }]], weights: { a: 1, b: 1 }, output: { prediction: 3 }, confidence: 1 - 1 / 4 },
  { name: 'string predictions without probability voted', outputs: [['a', { prediction: 'x' }], ['b', { prediction: 'y' }], ['c', { prediction: 'y' }]], weights: { a: 1, b: 1, c: 1 }, output: { prediction: 'y' }, confidence: 2 / 3 },
  { name: 'single contributor returned unchanged', outputs: [['a', { prediction: 'x', extra: 1 }]], weights: { a: 0.2 }, output: { prediction: 'x', extra: 1 }, confidence: 1 },
  { name: 'weights renormalised over what arrived', outputs: [['b', 1], ['c', 3]], weights: { a: 0.5, b: 0.25, c: 0.25 }, output: 2, confidence: 0.5 + 1 / 6 },
  { name: 'zero-weight outputs left out', outputs: [['a', 'x'], ['b', 'y']], weights: { a: 1, b: 0 }, output: 'x', confidence: 1, contributors: ['a'] },
  { name: 'all weights zero → equal weights', outputs: [['a', 1], ['b', 3]], weights: {}, output: 2, confidence: 1 - 1 / 3 },
  { name: 'mixed kinds: the heaviest kind wins', outputs: [['a', 'x'], ['b', 5], ['c', 7]], weights: { a: 0.4, b: 0.3, c: 0.3 }, output: 6, confidence: 1 - 1 / 7, contributors: ['b', 'c'] },
  { name: 'unrecognised outputs voted by JSON equality', outputs: [['a', { error: 'e' }], ['b', { error: 'e' }], ['c', null]], weights: { a: 1, b: 1, c: 1 }, output: { error: 'e' }, confidence: 2 / 3 },
  { name: 'recognised kinds preferred to errors', outputs: [['a', { error: 'e' }], ['b', 'ok']], weights: { a: 0.9, b: 0.1 }, output: 'ok', confidence: 1, contributors: ['b'] },
  { name: 'duplicate models: first output counts', outputs: [['a', 1], ['a', 100], ['b', 3]], weights: { a: 1, b: 1 }, output: 2, confidence: 1 - 1 / 3, contributors: ['a', 'b'] },
  { name: 'nothing arrived', outputs: [], weights: { a: 1 }, output: null, confidence: 0, contributors: [] },
];

describe('combineOutputs', () => {
  for (const c of CASES) {
    it(c.name, () => {
      const got = combineOutputs(c.outputs.map(([model, output]) => ({ model, output })), c.weights);
      close(got.output, c.output);
      assert.ok(Math.abs(got.confidence - c.confidence) < 1e-9, `confidence ${got.confidence} vs ${c.confidence}`);
      assert.ok(got.confidence >= 0 && got.confidence <= 1);
      const expected = c.contributors ?? [...new Set(c.outputs.map(([m]) => m))];
      assert.deepEqual(got.contributors, expected);
    });
  }

  it('does not modify the outputs it was given', () => {
    const outputs = [{ model: 'a', output: { x: 0.5, y: 0.5 } }, { model: 'b', output: { x: 1 } }];
    const copy = structuredClone(outputs);
    combineOutputs(outputs, { a: 1, b: 1 });
    assert.deepEqual(outputs, copy);
  });
});

describe('kindOf', () => {
  const KINDS: Array<[unknown, OutputKind]> = [
    [1.5, 'number'], [NaN, 'other'], ['a', 'label'], [false, 'label'], [[1, 2], 'vector'], [[], 'other'], [[1, 'a'], 'other'],
    [{ a: 0.1 }, 'probs'], [{}, 'other'], [{ a: 'x' }, 'other'], [{ prediction: 1 }, 'prediction'],
    [{ prediction: 'x', probability: { x: 1 } }, 'prediction'], [{ prediction: 'x', probability: 'bad' }, 'other'],
    [{ prediction: null }, 'other'], [null, 'other'], [undefined, 'other'],
  ];
  for (const [v, k] of KINDS) it(`${JSON.stringify(v)} → ${k}`, () => assert.equal(kindOf(v), k));
});
