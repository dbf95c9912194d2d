import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { epsilonGreedy, ucb1 } from '../../../src/query/selection/bandits.ts';
import { exp3, exp4 } from '../../../src/query/selection/hedge.ts';
import { seededRandom } from '../../../src/query/selection/random.ts';
import type { SelectionPolicy } from '../../../src/query/selection/types.ts';
import { share, simulate } from './sim.ts';

// Model "a" is right 90% of the time, "b" 40% (3 classes).
const accuracy = { a: 0.9, b: 0.4 };
const SEEDS = [1, 2, 3, 42, 1234];

describe('learning policies prefer the better model after 300 labelled events', () => {
  for (const seed of SEEDS) {
    it(`exp3 sends >= 80% of the last 100 selections to the better model (seed ${seed})`, () => {
      const { picks, state, models } = simulate(exp3, { accuracy, events: 300, seed });
      assert.ok(share(picks.slice(-100), 'a') >= 0.8, `share ${share(picks.slice(-100), 'a')}`);
      const w = exp3.weights(state, models, exp3.validateParams({}, models));
      assert.ok(w.a! > 0.9 && w.b! >= 0.05 - 1e-12, JSON.stringify(w)); // gamma/K exploration floor
    });

    it(`exp4 gives the better model >= 80% of the weight (seed ${seed})`, () => {
      const { state, models } = simulate(exp4, { accuracy, events: 300, seed });
      const w = exp4.weights(state, models, {});
      assert.ok(w.a! >= 0.8, JSON.stringify(w));
      assert.ok(Math.abs(w.a! + w.b! - 1) < 1e-12);
    });

    it(`epsilon-greedy and ucb1 prefer the better model (seed ${seed})`, () => {
      for (const policy of [epsilonGreedy, ucb1] as SelectionPolicy<unknown>[]) {
        const { picks } = simulate(policy, { accuracy, events: 300, seed });
        assert.ok(share(picks.slice(-100), 'a') >= 0.8, `${policy.name}: ${share(picks.slice(-100), 'a')}`);
      }
    });
  }

  it('exp3 follows a switch: when the models swap quality it moves to the new best', () => {
    const first = simulate(exp3, { accuracy, events: 300, seed: 5 });
    const second = simulate(exp3, { accuracy: { a: 0.4, b: 0.9 }, events: 500, seed: 6 }, first.state);
    assert.ok(share(second.picks.slice(-100), 'b') >= 0.8, `share ${share(second.picks.slice(-100), 'b')}`);
  });

  it('exp3 with gamma 1 is uniform, with gamma 0 pure Hedge', () => {
    const { state, models } = simulate(exp3, { accuracy, events: 100, seed: 9 });
    assert.deepEqual(exp3.weights(state, models, { gamma: 1 }), { a: 0.5, b: 0.5 });
    assert.deepEqual(exp3.weights(state, models, { gamma: 0 }), exp4.weights(state, models, {}));
  });

  it('exp4 selects every linked model, none in shadow', () => {
    const sel = exp4.select(exp4.init(['a', 'b', 'c'], {}), ['a', 'b', 'c'], {}, { rand: seededRandom(1) });
    assert.deepEqual(sel, { primary: ['a', 'b', 'c'], shadow: [] });
  });

  it('exp4 combines with its learned weights, renormalised over what arrived', () => {
    const { state } = simulate(exp4, { accuracy, events: 300, seed: 4 });
    const both = exp4.combine(state, [{ model: 'a', output: 'cat' }, { model: 'b', output: 'dog' }], {});
    assert.equal(both.output, 'cat');
    assert.deepEqual(both.contributors, ['a', 'b']);
    assert.ok(both.confidence > 0.8 && both.confidence < 1);
    const onlyB = exp4.combine(state, [{ model: 'b', output: 'dog' }], {});
    assert.deepEqual(onlyB, { output: 'dog', confidence: 1, contributors: ['b'] });
    const numbers = exp4.combine(state, [{ model: 'a', output: 10 }, { model: 'b', output: 0 }], {});
    const wa = exp4.weights(state, ['a', 'b'], {}).a!;
    assert.ok(Math.abs((numbers.output as number) - 10 * wa) < 1e-9);
  });

  it('epsilon 0 never explores; epsilon 1 spreads uniformly', () => {
    const greedy = simulate(epsilonGreedy, { accuracy, events: 300, seed: 3, params: { epsilon: 0 } });
    assert.ok(share(greedy.picks.slice(-250), 'a') === 1);
    const random = simulate(epsilonGreedy, { accuracy, events: 2000, seed: 3, params: { epsilon: 1 } });
    assert.ok(Math.abs(share(random.picks, 'a') - 0.5) < 0.04);
    const w = epsilonGreedy.weights(greedy.state, ['a', 'b'], { epsilon: 0.2 });
    assert.ok(Math.abs(w.a! - 0.9) < 1e-12 && Math.abs(w.b! - 0.1) < 1e-12);
  });

  it('ucb1 tries untried models first, then exploits', () => {
    let state = ucb1.init(['a', 'b', 'c'], {});
    const pick = () => ucb1.select(state, ['a', 'b', 'c'], {}, { rand: () => 0 }).primary[0];
    assert.equal(pick(), 'a');
    state = ucb1.update(state, [{ model: 'a', output: 'x' }], 'x', {});
    assert.equal(pick(), 'b');
    state = ucb1.update(state, [{ model: 'b', output: 'y' }], 'x', {});
    assert.equal(pick(), 'c');
    state = ucb1.update(state, [{ model: 'c', output: 'y' }], 'x', {});
    assert.equal(pick(), 'a'); // all tried once: a has reward 1, b and c 0
    assert.deepEqual(ucb1.weights(state, ['a', 'b', 'c', 'd'], {}), { a: 1, b: 0, c: 0, d: 0 });
  });

  it('ucb1 explores a model with few observations over a slightly better well-known one', () => {
    const state = { arms: { a: { n: 1000, loss: 100 }, b: { n: 3, loss: 1 } } }; // a: 0.9, b: 0.67
    assert.equal(ucb1.select(state, ['a', 'b'], { c: 1 }, { rand: Math.random }).primary[0], 'b');
    assert.equal(ucb1.select(state, ['a', 'b'], { c: 0 }, { rand: Math.random }).primary[0], 'a');
  });

  it('a model that fails to answer feedback (output undefined) is charged the maximal loss', () => {
    let s = exp4.init(['a', 'b'], {});
    for (let i = 0; i < 50; i++) s = exp4.update(s, [{ model: 'a', output: undefined }, { model: 'b', output: 'x' }], 'x', {});
    assert.ok(exp4.weights(s, ['a', 'b'], {}).b! > 0.99);
  });
});
