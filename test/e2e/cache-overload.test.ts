import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PredictionCache } from '../../src/query/cache/prediction-cache.ts';
import { ModelOutput } from '../../src/query/output.ts';
import { startTestServer, writeJsModel } from '../helpers/server.ts';

/** Answers with how many inputs this process has seen, so a repeated call is visible. */
const COUNTING = (tag: string, delayMs = 0) => `let calls = 0;
export async function predict(inputs) {
  ${delayMs ? `await new Promise((r) => setTimeout(r, ${delayMs}));` : ''}
  return inputs.map((x) => JSON.stringify({ tag: '${tag}', input: x, call: ++calls }));
}
`;

describe('prediction cache', () => {
  it('never returns another input\'s answer, even when two inputs share a bucket', () => {
    const c = new PredictionCache(1 << 20);
    const a = Buffer.from('a');
    const b = Buffer.from('b');
    c.put('same-key', 'm:1', a, ModelOutput.fromText('answer-a'));
    assert.equal(c.get('same-key', 'm:1', b), undefined, 'a colliding key with other bytes is a miss');
    assert.equal(c.get('same-key', 'm:1', a)?.value, 'answer-a');
    assert.equal(c.get('same-key', 'm:2', a), undefined, 'another version is a miss');
  });

  it('stays within its byte bound, evicting the least recently used', () => {
    const c = new PredictionCache(1000);
    for (let i = 0; i < 50; i++) c.put(`k${i}`, 'm:1', Buffer.alloc(100, i), ModelOutput.fromText(String(i)));
    assert.ok(c.sizeBytes <= 1000, `size ${c.sizeBytes}`);
    assert.equal(c.get('k0', 'm:1', Buffer.alloc(100, 0)), undefined);
    assert.equal(c.get('k49', 'm:1', Buffer.alloc(100, 49))?.value, 49);
  });

  it('serves repeats from the cache, shares in-flight twins, and is invalidated on re-registration', async () => {
    const s = await startTestServer();
    try {
      await s.admin('add_app', { name: 'c', input_type: 'strings', latency_slo_micros: 5_000_000 });
      await s.admin('add_model', { model_name: 'counter', model_version: '1', input_type: 'strings', model_data_path: writeJsModel(COUNTING('first', 50)) });
      await s.admin('add_model_links', { app_name: 'c', model_names: ['counter'] });

      const twins = await Promise.all(Array.from({ length: 10 }, () => s.predict('c', { input: 'same' })));
      const calls = new Set(twins.map((t) => t.body.output.call));
      assert.deepEqual([...calls], [1], 'ten identical queries in flight made one model call');
      const other = await s.predict('c', { input: 'other' });
      assert.equal(other.body.output.input, 'other', 'a different input gets its own answer');
      assert.equal(other.body.output.call, 2);
      const again = await s.predict('c', { input: 'same' });
      assert.deepEqual(again.body.output, { tag: 'first', input: 'same', call: 1 }, 'a repeat is served from the cache');

      await s.admin('delete_versioned_model', { model_name: 'counter', model_version: '1' });
      await s.admin('add_model', { model_name: 'counter', model_version: '1', input_type: 'strings', model_data_path: writeJsModel(COUNTING('second')) });
      await s.admin('add_model_links', { app_name: 'c', model_names: ['counter'] });
      const fresh = await s.predict('c', { input: 'same' });
      assert.equal(fresh.body.output.tag, 'second', 'the re-registered version is asked, not the old cache');

      const metrics = await (await fetch(`${s.app.queryUrl}/metrics`)).text();
      assert.match(metrics, /clipper_cache_hits_total\{model="counter:1"\} 1\b/);
    } finally {
      await s.close();
    }
  });
});

describe('overload', () => {
  it('a full queue answers 503 with Retry-After (or the default when the app says so), and the server recovers', async () => {
    const s = await startTestServer({ maxQueue: 4, cacheBytes: 0 });
    try {
      const slow = writeJsModel('export async function predict(xs) { await new Promise((r) => setTimeout(r, 100)); return xs.map(() => "done"); }\n');
      await s.admin('add_app', { name: 'busy', input_type: 'strings', latency_slo_micros: 5_000_000 });
      await s.admin('add_app', { name: 'lenient', input_type: 'strings', default_output: 'later', latency_slo_micros: 5_000_000, overload_default: true });
      await s.admin('add_model', { model_name: 'slow', model_version: '1', input_type: 'strings', model_data_path: slow, batch_size: 1 });
      await s.admin('add_model_links', { app_name: 'busy', model_names: ['slow'] });
      await s.admin('add_model_links', { app_name: 'lenient', model_names: ['slow'] });

      const flood = await Promise.all(Array.from({ length: 20 }, (_, i) => s.predict('busy', { input: `q${i}` })));
      const rejected = flood.filter((r) => r.status === 503);
      assert.ok(rejected.length >= 10, `${rejected.length} of 20 were refused`);
      assert.equal(rejected[0]!.body.error, 'QUEUE_FULL');
      assert.equal(rejected[0]!.headers.get('retry-after'), '1');
      assert.ok(flood.filter((r) => r.status === 200).every((r) => r.body.output === 'done'));

      const lenient = await Promise.all(Array.from({ length: 20 }, (_, i) => s.predict('lenient', { input: `l${i}` })));
      const defaulted = lenient.filter((r) => r.body.default === true);
      assert.ok(defaulted.length >= 10);
      assert.ok(lenient.every((r) => r.status === 200));
      assert.match(defaulted[0]!.body.default_explanation, /queue of slow:1 is full/);

      const after = await s.predict('busy', { input: 'calm' });
      assert.equal(after.status, 200);
      assert.equal(after.body.output, 'done');
      const metrics = await (await fetch(`${s.app.queryUrl}/metrics`)).text();
      assert.match(metrics, /clipper_dropped_total\{model="slow:1",reason="full"\}/);
    } finally {
      await s.close();
    }
  });
});
