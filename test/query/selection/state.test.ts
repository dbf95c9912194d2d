import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { getPolicy, POLICY_NAMES } from '../../../src/query/selection/index.ts';
import { seededRandom } from '../../../src/query/selection/random.ts';
import type { Params, PolicyName, SelectionPolicy } from '../../../src/query/selection/types.ts';
import { simulate, world } from './sim.ts';

const accuracy = { a: 0.9, b: 0.6, c: 0.4 };
const models = Object.keys(accuracy);
const PARAMS: Record<PolicyName, Params> = {
  single: {}, weighted: { weights: { a: 0.5, b: 0.3, c: 0.2 } }, shadow: { primary: 'b' },
  exp3: {}, exp4: {}, 'epsilon-greedy': { epsilon: 0.2 }, ucb1: {},
};

describe('state is JSON and survives a restart', () => {
  for (const name of POLICY_NAMES) {
    it(`${name}: a JSON round trip continues identically`, () => {
      const policy = getPolicy(name);
      const opts = { accuracy, seed: 17, params: PARAMS[name] };
      const w = world(accuracy, 99);
      const rand = seededRandom(5);
      const first = simulate(policy, { ...opts, events: 120 }, undefined, w, rand);
      const text = JSON.stringify(first.state);
      const restored = JSON.parse(text) as unknown;
      assert.deepEqual(restored, first.state);

      // Both continuations see the same world and the same policy randomness.
      const fork = <T>(make: () => T) => [make(), make()] as const;
      const [w1, w2] = fork(() => world(accuracy, 123));
      const [r1, r2] = fork(() => seededRandom(77));
      const live = simulate(policy, { ...opts, events: 150 }, first.state, w1, r1);
      const again = simulate(policy, { ...opts, events: 150 }, restored, w2, r2);
      assert.deepEqual(again.picks, live.picks);
      assert.deepEqual(again.state, live.state);
      assert.equal(JSON.stringify(again.state), JSON.stringify(live.state));
      assert.deepEqual(policy.weights(restored, models, first.params), policy.weights(first.state, models, first.params));
    });

    it(`${name}: update does not mutate the state it was given`, () => {
      const policy = getPolicy(name);
      const { state } = simulate(policy, { accuracy, events: 30, seed: 3, params: PARAMS[name] });
      const before = JSON.stringify(state);
      policy.update(state, [{ model: 'a', output: 'x' }, { model: 'd', output: 'y' }], 'x', PARAMS[name]);
      assert.equal(JSON.stringify(state), before);
    });

    it(`${name}: malformed stored state is treated as fresh`, () => {
      const policy = getPolicy(name);
      for (const bad of [null, 42, 'x', [], { logWeights: 'no', arms: [1] }, { arms: { a: { n: -1, loss: 'q' } } }]) {
        const sel = policy.select(bad, models, PARAMS[name], { rand: seededRandom(1) });
        assert.ok(sel.primary.length >= 1 && sel.primary.every((m) => models.includes(m)));
        const w = policy.weights(bad, models, PARAMS[name]);
        assert.deepEqual(Object.keys(w), models);
        assert.ok(Object.values(w).every((v) => Number.isFinite(v) && v >= 0));
        const next = policy.update(bad, [{ model: 'a', output: 'x' }], 'x', PARAMS[name]);
        assert.deepEqual(JSON.parse(JSON.stringify(next)), next);
      }
    });
  }
});

describe('models linked and unlinked over time', () => {
  const learning = ['exp3', 'exp4', 'epsilon-greedy', 'ucb1'] as const;

  for (const name of learning) {
    it(`${name}: a newly linked model is usable at once and learned about`, () => {
      const policy = getPolicy(name) as SelectionPolicy<unknown>;
      const trained = simulate(policy, { accuracy: { a: 0.9, b: 0.4 }, events: 200, seed: 8 });
      const three = ['a', 'b', 'c'];
      const w = policy.weights(trained.state, three, {});
      assert.deepEqual(Object.keys(w), three);
      assert.ok(Object.values(w).every((v) => Number.isFinite(v) && v >= 0));
      const sel = policy.select(trained.state, three, {}, { rand: seededRandom(2) });
      assert.ok(sel.primary.every((m) => three.includes(m)));
      // a degrades and the new c is the best model: the policy moves to it (c starts at a neutral
      // weight, between a's and b's, so it has to earn its traffic).
      const later = simulate(policy, { accuracy: { a: 0.5, b: 0.4, c: 1 }, events: 400, seed: 9 }, trained.state);
      const lastC = later.picks.slice(-100).filter((m) => m === 'c').length;
      const weightsC = policy.weights(later.state, three, {}).c!;
      if (name === 'exp4') assert.ok(weightsC > 0.8, `weight ${weightsC}`);
      else assert.ok(lastC >= 80, `${name}: c picked ${lastC}/100`);
    });

    it(`${name}: an unlinked model is never selected and its state is kept`, () => {
      const policy = getPolicy(name) as SelectionPolicy<unknown>;
      const trained = simulate(policy, { accuracy: { a: 0.9, b: 0.4 }, events: 200, seed: 8 });
      const rand = seededRandom(4);
      for (let i = 0; i < 200; i++) assert.deepEqual(policy.select(trained.state, ['b'], {}, { rand }).primary, ['b']);
      const alone = policy.weights(trained.state, ['b'], {});
      assert.deepEqual(Object.keys(alone), ['b']);
      if (name !== 'ucb1') assert.equal(alone.b, 1); // ucb1 reports mean rewards, not probabilities
      const relinked = policy.weights(trained.state, ['a', 'b'], {});
      assert.ok(relinked.a! > relinked.b!, JSON.stringify(relinked));
    });
  }

  it('a new model starts at a neutral (geometric-mean) weight under exp4', () => {
    const exp4 = getPolicy('exp4');
    const state = { logWeights: { a: 0, b: -2 }, updates: 10 };
    const w = exp4.weights(state, ['a', 'b', 'c'], {});
    assert.ok(Math.abs(w.c! / w.a! - Math.exp(-1)) < 1e-12 && Math.abs(w.c! / w.b! - Math.exp(1)) < 1e-12);
    const next = exp4.update(state, [{ model: 'a', output: 1 }, { model: 'b', output: 1 }, { model: 'c', output: 1 }], 1, {});
    assert.deepEqual(next, { logWeights: { a: 0, b: -2, c: -1 }, updates: 11 });
  });

  it('static policies follow the linked models', () => {
    const rand = seededRandom(1);
    assert.deepEqual(getPolicy('single').select({ arms: {} }, ['z', 'a'], {}, { rand }).primary, ['z']);
    assert.deepEqual(getPolicy('shadow').select({ arms: {} }, ['a', 'd'], { primary: 'b' }, { rand }), { primary: ['a'], shadow: ['d'] });
    assert.deepEqual(getPolicy('weighted').select({ arms: {} }, ['c'], PARAMS.weighted, { rand }).primary, ['c']);
  });
});
