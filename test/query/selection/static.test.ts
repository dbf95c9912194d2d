import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { seededRandom } from '../../../src/query/selection/random.ts';
import { shadow, single, weighted } from '../../../src/query/selection/static.ts';

const models = ['m1', 'm2'];
const ctx = (seed = 1, uid?: string) => ({ uid, rand: seededRandom(seed) });

describe('single', () => {
  it('routes to the first linked model only', () => {
    const s = single.init(['x', 'y', 'z'], {});
    assert.deepEqual(single.select(s, ['x', 'y', 'z'], {}, ctx()), { primary: ['x'], shadow: [] });
    assert.deepEqual(single.weights(s, ['x', 'y', 'z'], {}), { x: 1, y: 0, z: 0 });
    assert.deepEqual(single.combine(s, [{ model: 'x', output: 3 }], {}), { output: 3, confidence: 1, contributors: ['x'] });
    assert.deepEqual(single.combine(s, [], {}), { output: null, confidence: 0, contributors: [] });
  });

  it('throws a clear error when no model is linked', () => {
    assert.throws(() => single.select(single.init([], {}), [], {}, ctx()), /single: no models are linked/);
  });

  it('records per-model loss statistics from feedback', () => {
    let s = single.init(models, {});
    s = single.update(s, [{ model: 'm1', output: 'a' }, { model: 'm2', output: 'b' }], 'a', {});
    s = single.update(s, [{ model: 'm1', output: 'b' }, { model: 'm2', output: 'b' }], 'b', {});
    assert.deepEqual(s, { arms: { m1: { n: 2, loss: 0 }, m2: { n: 2, loss: 1 } } });
  });
});

describe('weighted', () => {
  const params = weighted.validateParams({ weights: { m1: 0.9, m2: 0.1 } }, models);

  it('splits traffic 90/10 within 3 points over 2,000 selections', () => {
    const s = weighted.init(models, params);
    const rand = seededRandom(11);
    let m1 = 0;
    for (let i = 0; i < 2000; i++) if (weighted.select(s, models, params, { rand }).primary[0] === 'm1') m1++;
    assert.ok(Math.abs(m1 / 2000 - 0.9) <= 0.03, `m1 share ${m1 / 2000}`);
  });

  it('is sticky per uid, and different uids spread per the weights', () => {
    const s = weighted.init(models, params);
    let m1 = 0;
    for (let u = 0; u < 2000; u++) {
      const uid = `user-${u}`;
      const first = weighted.select(s, models, params, ctx(u, uid)).primary[0];
      for (let k = 0; k < 5; k++) assert.equal(weighted.select(s, models, params, ctx(u * 31 + k, uid)).primary[0], first);
      if (first === 'm1') m1++;
    }
    assert.ok(Math.abs(m1 / 2000 - 0.9) <= 0.03, `m1 share over uids ${m1 / 2000}`);
  });

  it('uid routing does not depend on the linking order; adding a model only moves uids to it', () => {
    const p3 = { weights: { m1: 0.5, m2: 0.3, m3: 0.2 } };
    const p2 = { weights: { m1: 0.5, m2: 0.3 } };
    let moved = 0;
    for (let u = 0; u < 500; u++) {
      const uid = `u${u}`;
      const before = weighted.select({ arms: {} }, ['m1', 'm2'], p2, ctx(0, uid)).primary[0];
      const after = weighted.select({ arms: {} }, ['m3', 'm2', 'm1'], p3, ctx(0, uid)).primary[0];
      if (after !== before) {
        assert.equal(after, 'm3');
        moved++;
      }
    }
    assert.ok(moved > 50 && moved < 150, `moved ${moved}`); // ≈ 20%
  });

  it('reports normalised weights; unlisted linked models get none', () => {
    const s = weighted.init(models, params);
    assert.deepEqual(weighted.weights(s, ['m1', 'm2', 'm3'], { weights: { m1: 3, m2: 1 } }), { m1: 0.75, m2: 0.25, m3: 0 });
    for (let i = 0; i < 50; i++) {
      assert.notEqual(weighted.select(s, ['m1', 'm2', 'm3'], { weights: { m1: 3, m2: 1 } }, ctx(i)).primary[0], 'm3');
    }
  });

  it('falls back to the first linked model when no weighted model is linked any more', () => {
    const s = weighted.init(models, params);
    assert.deepEqual(weighted.select(s, ['m7', 'm8'], params, ctx(1, 'u')), { primary: ['m7'], shadow: [] });
    assert.deepEqual(weighted.weights(s, ['m7', 'm8'], params), { m7: 1, m8: 0 });
  });

  it('a zero weight never receives traffic', () => {
    const p = { weights: { m1: 1, m2: 0 } };
    for (let i = 0; i < 200; i++) {
      assert.equal(weighted.select({ arms: {} }, models, p, ctx(i, i % 2 ? `u${i}` : undefined)).primary[0], 'm1');
    }
  });
});

describe('shadow', () => {
  const all = ['m1', 'm2', 'm3'];

  it('defaults: the first model answers, all others shadow', () => {
    const p = shadow.validateParams({}, all);
    assert.deepEqual(p, {});
    assert.deepEqual(shadow.select(shadow.init(all, p), all, p, ctx()), { primary: ['m1'], shadow: ['m2', 'm3'] });
    assert.deepEqual(shadow.weights({ arms: {} }, all, p), { m1: 1, m2: 0, m3: 0 });
  });

  it('configured primary answers, configured candidates shadow', () => {
    const p = shadow.validateParams({ primary: 'm2', candidates: ['m3'] }, all);
    assert.deepEqual(shadow.select(shadow.init(all, p), all, p, ctx()), { primary: ['m2'], shadow: ['m3'] });
    assert.deepEqual(shadow.weights({ arms: {} }, all, p), { m1: 0, m2: 1, m3: 0 });
  });

  it('combine answers with the primary only, never a candidate', () => {
    const p = { primary: 'm2', candidates: ['m1', 'm3'] };
    const outs = [{ model: 'm1', output: 'a' }, { model: 'm2', output: 'b' }, { model: 'm3', output: 'a' }];
    assert.deepEqual(shadow.combine({ arms: {} }, outs, p), { output: 'b', confidence: 1, contributors: ['m2'] });
    assert.deepEqual(shadow.combine({ arms: {} }, [outs[0]!, outs[2]!], p), { output: null, confidence: 0, contributors: [] });
  });

  it('an unlinked primary falls back to the first linked model; unlinked candidates are skipped', () => {
    const p = { primary: 'gone', candidates: ['m3', 'old'] };
    assert.deepEqual(shadow.select({ arms: {} }, all, p, ctx()), { primary: ['m1'], shadow: ['m3'] });
  });

  it('feedback builds loss statistics comparing the candidates with the primary', () => {
    let s = shadow.init(all, {});
    for (let i = 0; i < 4; i++) {
      s = shadow.update(s, [{ model: 'm1', output: 1 }, { model: 'm2', output: 'x' }, { model: 'm3', output: undefined }], 'x', {});
    }
    assert.deepEqual(s, { arms: { m1: { n: 4, loss: 4 }, m2: { n: 4, loss: 0 }, m3: { n: 4, loss: 4 } } });
  });
});
