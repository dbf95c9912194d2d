/**
 * Per-uid selection state is bounded (issue 11: 30k uids grew memory and SQLite without end):
 * least recently used uids are evicted, from memory and from the store.
 */
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { describe, it } from 'node:test';
import { PolicyStateStore, type StateStore } from '../../src/query/policy-state.ts';
import { SelectionService } from '../../src/query/selection-service.ts';
import type { RegistryService } from '../../src/registry/registry-service.ts';
import type { Application } from '../../src/registry/types.ts';

function memoryStore(): StateStore & { rows: Map<string, string> } {
  const rows = new Map<string, string>();
  return {
    rows,
    getState: async (k) => rows.get(k),
    putState: async (k, v) => { rows.set(k, v); },
    deleteState: async (k) => { rows.delete(k); },
  };
}

describe('policy state per uid', () => {
  it('30,000 distinct uids through feedback: at most maxSelectionUids kept, in memory and in the store', async () => {
    const store = memoryStore();
    const states = new PolicyStateStore(store, 1000);
    const app: Application = { name: 'ab', inputType: 'strings', defaultOutput: '', latencySloMicros: 100_000, overloadDefault: false, policy: 'exp3', policyParams: {}, createdAt: 0 };
    const registry = Object.assign(new EventEmitter(), { linkedModels: () => ['a', 'b'] }) as unknown as RegistryService;
    const selection = new SelectionService(registry, states);
    for (let i = 0; i < 30_000; i++) {
      await selection.select(app, ['a', 'b'], `user-${i}`);
      await selection.update(app, ['a', 'b'], `user-${i}`, [{ model: 'a', output: 1 }, { model: 'b', output: 0 }], 1);
    }
    assert.equal(states.uidCount('ab'), 1000);
    const uidRows = [...store.rows.keys()].filter((k) => k.includes('/uid/'));
    assert.equal(uidRows.length, 1000, 'evicted uids left the store too');
    assert.ok(store.rows.has('app/ab/exp3'), 'the application\'s own state stays');
    assert.ok(store.rows.has('app/ab/exp3/uid/user-29999') && !store.rows.has('app/ab/exp3/uid/user-0'), 'the most recent are kept');
  });

  it('evicts the least recently used: a uid in use survives newer ones', async () => {
    const store = memoryStore();
    const states = new PolicyStateStore(store, 3);
    const ref = (uid: string) => ({ app: 'x', policy: 'exp3', uid });
    for (const u of ['a', 'b', 'c']) await states.put(ref(u), { n: u });
    await states.get(ref('a'), () => ({})); // a is used again
    await states.put(ref('d'), { n: 'd' }); // evicts b, the least recently used
    assert.deepEqual([...store.rows.keys()].sort(), ['app/x/exp3/uid/a', 'app/x/exp3/uid/c', 'app/x/exp3/uid/d']);
    assert.equal(states.uidCount('x'), 3);
  });

  it('bounds each application on its own, and keeps the application states unbounded by it', async () => {
    const states = new PolicyStateStore(memoryStore(), 2);
    for (const app of ['p', 'q']) for (const u of ['1', '2', '3']) await states.put({ app, policy: 'ucb1', uid: u }, {});
    for (const app of ['p', 'q', 'r']) await states.put({ app, policy: 'ucb1' }, {});
    assert.equal(states.uidCount('p'), 2);
    assert.equal(states.uidCount('q'), 2);
  });

  it('deletes evicted uids from the store too', async () => {
    const rows = new Map<string, string>();
    const states = new PolicyStateStore({
      getState: async (k) => rows.get(k), putState: async (k, v) => { rows.set(k, v); }, deleteState: async (k) => { rows.delete(k); },
    }, 2);
    for (const u of ['1', '2', '3']) await states.put({ app: 'x', policy: 'exp3', uid: u }, {});
    await new Promise((r) => setImmediate(r));
    assert.equal(states.uidCount('x'), 2);
    assert.equal(rows.size, 2);
  });
});
