import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { loss, numericLoss } from '../../../src/query/selection/loss.ts';

type Case = [name: string, output: unknown, label: unknown, expected: number, scale?: number];

const e1 = 1 - Math.exp(-1);

const CASES: Case[] = [
  ['equal strings', 'cat', 'cat', 0],
  ['different strings', 'cat', 'dog', 1],
  ['booleans', true, true, 0],
  ['boolean vs its string', true, 'true', 0],
  ['number vs numeric string label', 1, '1', 0],
  ['string vs number label', '2', 1, 1],
  ['exact number', 3.5, 3.5, 0],
  ['number, default 1 − exp(−|err|)', 2, 3, e1],
  ['number, sign does not matter', 3, 2, e1],
  ['number, large error saturates near 1', 0, 100, 1 - Math.exp(-100)],
  ['number with scale: linear', 2, 3, 0.25, 4],
  ['number with scale: capped at 1', 0, 10, 1, 4],
  ['probability object: 1 − p(label)', { cat: 0.7, dog: 0.3 }, 'cat', 0.3],
  ['probability object: absent class', { cat: 0.7, dog: 0.3 }, 'bird', 1],
  ['probability object: numeric label matches key', { 0: 0.2, 1: 0.8 }, 1, 0.2],
  ['probability object clamped', { cat: 1.5 }, 'cat', 0],
  ['prediction object compares its prediction', { prediction: 'yes', probability: { yes: 0.6, no: 0.4 } }, 'yes', 0],
  ['prediction object, wrong', { prediction: 'no', probability: { yes: 0.6, no: 0.4 } }, 'yes', 1],
  ['numeric prediction object', { prediction: 4 }, 5, e1],
  ['numeric prediction with scale', { prediction: 4 }, 5, 0.5, 2],
  ['spark class index vs string label', { prediction: 1, probability: { 0: 0.1, 1: 0.9 } }, '1', 0],
  ['vector vs vector: mean element loss', [1, 2], [1, 3], e1 / 2],
  ['vector vs vector with scale', [0, 0], [1, 3], (0.5 + 1) / 2, 2],
  ['probability vector vs class index', [0.1, 0.7, 0.2], 1, 0.3],
  ['vector vs out-of-range index', [0.1, 0.9], 2, 1],
  ['non-probability vector vs index', [3, 5], 1, 1],
  ['vector of another length', [1, 2], [1, 2, 3], 1],
  ['missing output', undefined, 'x', 1],
  ['null output', null, 'x', 1],
  ['error object', { error: 'boom' }, 'x', 1],
  ['JSON-equal objects', { a: [1, 'x'] }, { a: [1, 'x'] }, 0],
  ['NaN output', NaN, 1, 1],
  ['infinite error', 1e308, -1e308, 1],
];

describe('loss', () => {
  for (const [name, output, label, expected, scale] of CASES) {
    it(name, () => {
      const got = loss(output, label, { scale });
      assert.ok(Math.abs(got - expected) < 1e-12, `${got} vs ${expected}`);
      assert.ok(got >= 0 && got <= 1);
    });
  }

  it('numericLoss ignores a non-positive scale', () => {
    assert.equal(numericLoss(1, 0), e1);
    assert.equal(numericLoss(-1, -5), e1);
    assert.equal(numericLoss(Infinity), 1);
  });
});
