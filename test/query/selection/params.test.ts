import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { getPolicy, isPolicyName, POLICY_NAMES } from '../../../src/query/selection/index.ts';
import { hash01, hash32, sampleIndex, seededRandom } from '../../../src/query/selection/random.ts';

const models = ['m1', 'm2', 'm3'];

describe('getPolicy', () => {
  it('knows every policy by its name', () => {
    assert.deepEqual([...POLICY_NAMES], ['single', 'weighted', 'shadow', 'exp3', 'exp4', 'epsilon-greedy', 'ucb1']);
    for (const name of POLICY_NAMES) assert.equal(getPolicy(name).name, name);
    assert.ok(isPolicyName('ucb1') && !isPolicyName('ucb2') && !isPolicyName(3));
  });

  it('throws for an unknown name, listing the valid ones', () => {
    assert.throws(() => getPolicy('exp5'), { message: 'unknown selection policy "exp5" (valid: single, weighted, shadow, exp3, exp4, epsilon-greedy, ucb1)' });
  });
});

describe('validateParams: defaults', () => {
  const DEFAULTS: Array<[string, unknown, Record<string, unknown>]> = [
    ['single', undefined, {}],
    ['shadow', {}, {}],
    ['exp3', {}, { eta: 0.1, gamma: 0.1 }],
    ['exp3', { eta: 0.5, gamma: 0, lossScale: 10 }, { eta: 0.5, gamma: 0, lossScale: 10 }],
    ['exp4', null, { eta: 0.1 }],
    ['epsilon-greedy', {}, { epsilon: 0.1 }],
    ['ucb1', { c: 0 }, { c: 0 }],
    ['weighted', { weights: { m1: 1 } }, { weights: { m1: 1 } }],
    ['shadow', { primary: 'm2', candidates: ['m3', 'm3'] }, { primary: 'm2', candidates: ['m3'] }],
  ];
  for (const [name, params, expected] of DEFAULTS) {
    it(`${name} ${JSON.stringify(params)} → ${JSON.stringify(expected)}`, () => {
      assert.deepEqual(getPolicy(name).validateParams(params, models), expected);
    });
  }
});

describe('validateParams: errors name the bad parameter', () => {
  const ERRORS: Array<[string, unknown, RegExp]> = [
    ['exp3', 'fast', /^exp3: params must be an object \(got "fast"\)$/],
    ['exp3', [1], /^exp3: params must be an object/],
    ['exp3', { eta: 0 }, /^exp3: parameter "eta" must be > 0 \(got 0\)$/],
    ['exp3', { eta: '0.1' }, /^exp3: parameter "eta" must be a number > 0 \(got "0.1"\)$/],
    ['exp3', { gamma: 1.5 }, /^exp3: parameter "gamma" must be >= 0 and <= 1 \(got 1.5\)$/],
    ['exp3', { lossScale: -1 }, /^exp3: parameter "lossScale" must be > 0/],
    ['exp3', { epsilon: 0.1 }, /^exp3: unknown parameter "epsilon" \(accepted: "eta", "gamma", "lossScale"\)$/],
    ['exp4', { gamma: 0.1 }, /^exp4: unknown parameter "gamma"/],
    ['exp4', { eta: null }, /^exp4: parameter "eta" must be a number > 0 \(got null\)$/],
    ['epsilon-greedy', { epsilon: -0.1 }, /^epsilon-greedy: parameter "epsilon" must be >= 0 and <= 1/],
    ['ucb1', { c: -1 }, /^ucb1: parameter "c" must be >= 0 \(got -1\)$/],
    ['single', { primary: 'm1' }, /^single: unknown parameter "primary" \(accepted: "lossScale"\)$/],
    ['weighted', {}, /^weighted: parameter "weights" must be an object of model name → weight/],
    ['weighted', { weights: [0.9, 0.1] }, /^weighted: parameter "weights" must be an object/],
    ['weighted', { weights: { m1: 0.9, m9: 0.1 } }, /^weighted: parameter "weights" names "m9", which is not a linked model \(linked: m1, m2, m3\)$/],
    ['weighted', { weights: { m1: -1 } }, /^weighted: parameter "weights" must give each model a number >= 0 \(got -1 for "m1"\)$/],
    ['weighted', { weights: { m1: 'a lot' } }, /got "a lot" for "m1"/],
    ['weighted', { weights: { m1: 0, m2: 0 } }, /^weighted: parameter "weights" must give at least one model a weight > 0/],
    ['shadow', { primary: 'm9' }, /^shadow: parameter "primary" must be a linked model \(linked: m1, m2, m3\) \(got "m9"\)$/],
    ['shadow', { primary: 3 }, /^shadow: parameter "primary" must be a model name \(got 3\)$/],
    ['shadow', { candidates: 'm2' }, /^shadow: parameter "candidates" must be an array of model names/],
    ['shadow', { candidates: ['m9'] }, /^shadow: parameter "candidates" names "m9", which is not a linked model/],
    ['shadow', { primary: 'm2', candidates: ['m2'] }, /^shadow: parameter "candidates" must not include the primary model "m2"/],
    ['shadow', { candidates: ['m1'] }, /must not include the primary model "m1"/],
  ];
  for (const [name, params, re] of ERRORS) {
    it(`${name} ${JSON.stringify(params)}`, () => {
      assert.throws(() => getPolicy(name).validateParams(params, models), (e: unknown) => e instanceof Error && re.test(e.message));
    });
  }

  it('with no linked models, weighted names the empty link set', () => {
    assert.throws(() => getPolicy('weighted').validateParams({ weights: { m1: 1 } }, []), /\(linked: none\)/);
  });
});

describe('query-time params are read tolerantly', () => {
  it('invalid stored values fall back to the defaults instead of failing queries', () => {
    const exp3 = getPolicy('exp3');
    const s = exp3.init(models, {});
    const w = exp3.weights(s, models, { gamma: 'lots', eta: -3 });
    for (const m of models) assert.ok(Math.abs(w[m]! - 1 / 3) < 1e-12);
    assert.equal(getPolicy('weighted').select(s, models, {}, { rand: () => 0.5 }).primary[0], 'm1');
  });
});

describe('random helpers', () => {
  it('seededRandom is reproducible, in [0, 1) and roughly uniform', () => {
    const a = seededRandom(42);
    const b = seededRandom(42);
    const xs = Array.from({ length: 10000 }, () => a());
    assert.deepEqual(Array.from({ length: 10000 }, () => b()), xs);
    assert.ok(xs.every((x) => x >= 0 && x < 1));
    const mean = xs.reduce((s, x) => s + x, 0) / xs.length;
    assert.ok(Math.abs(mean - 0.5) < 0.01);
    assert.notEqual(seededRandom(43)(), seededRandom(42)());
  });

  it('hash01 is deterministic, in (0, 1), and spreads similar strings', () => {
    assert.equal(hash32(''), hash32(''));
    assert.notEqual(hash32('user-1'), hash32('user-2'));
    assert.notEqual(hash32('é'), hash32('\u00e9\u0000'));
    const hs = Array.from({ length: 4000 }, (_, i) => hash01(`user-${i}`));
    assert.ok(hs.every((h) => h > 0 && h < 1));
    const buckets = new Array(10).fill(0);
    for (const h of hs) buckets[Math.floor(h * 10)]++;
    assert.ok(buckets.every((n) => n > 330 && n < 470), JSON.stringify(buckets));
  });

  it('sampleIndex follows the weights and skips zero weights', () => {
    assert.equal(sampleIndex([0, 1, 0], 0.99), 1);
    assert.equal(sampleIndex([1, 3], 0.2), 0);
    assert.equal(sampleIndex([1, 3], 0.3), 1);
    assert.equal(sampleIndex([0, 0], 0.5), -1);
    assert.equal(sampleIndex([1, 1, 0], 0.9999999999999999), 1);
  });
});
