/**
 * Deeply nested inputs (issue 11, finding 12): a strings application turns a JSON input into
 * text; a 100,000-deep one overflowed JSON.stringify's stack and was answered with the default
 * (200) on /predict and 503 on /update. Now it is INVALID_INPUT naming the limit.
 */
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { describe, it } from 'node:test';
import { ServingError } from '../../src/errors.ts';
import { QueryMetrics } from '../../src/query/metrics.ts';
import { DEFAULT_QUERY_OPTIONS, QueryProcessor, type EntryError, type Answer } from '../../src/query/query-processor.ts';
import type { SelectionService } from '../../src/query/selection-service.ts';
import { MAX_JSON_DEPTH, checkDepth, encodeInput } from '../../src/registry/input-types.ts';
import type { RegistryService } from '../../src/registry/registry-service.ts';
import type { Application, ModelVersion } from '../../src/registry/types.ts';
import type { Replica } from '../../src/rpc/replica.ts';

/** `depth` arrays inside each other, built without recursion. */
function nested(depth: number): unknown {
  let v: unknown = 'x';
  for (let i = 0; i < depth; i++) v = [v];
  return v;
}

const isDepthError = (e: unknown) => e instanceof ServingError && e.code === 'INVALID_INPUT' && /more than 100 levels deep/.test(e.message);

describe('input depth', () => {
  it('strings inputs: up to the limit is converted, past it is INVALID_INPUT with the limit', () => {
    assert.equal(MAX_JSON_DEPTH, 100);
    assert.equal(encodeInput('strings', nested(100)).toString(), `${'['.repeat(100)}"x"${']'.repeat(100)}`);
    assert.throws(() => encodeInput('strings', nested(101)), isDepthError);
    assert.throws(() => encodeInput('strings', nested(100_000)), isDepthError);
    assert.throws(() => encodeInput('strings', { a: { b: nested(99) } }), isDepthError);
  });

  it('checks wide values without recursion too', () => {
    checkDepth(Array.from({ length: 100_000 }, (_, i) => ({ i })), 'input');
  });

  describe('through the query processor', () => {
    const app: Application = { name: 's', inputType: 'strings', defaultOutput: 'D', latencySloMicros: 1_000_000, overloadDefault: false, policy: 'single', policyParams: {}, createdAt: 0 };
    const version = { name: 'm', version: '1', inputType: 'strings', batchSize: 0 } as ModelVersion;
    const registry = Object.assign(new EventEmitter(), {
      requireApp: () => app, linkedModels: () => ['m'], requireVersion: () => version, getVersion: () => version, listVersions: () => [version],
    }) as unknown as RegistryService;
    const processor = () => {
      const p = new QueryProcessor(registry, async (_r, inputs) => inputs.map(() => ({ ok: true, value: Buffer.from('1') })), new QueryMetrics(), { update: async () => {} } as unknown as SelectionService, DEFAULT_QUERY_OPTIONS);
      p.addReplica({ key: 'r', replicaId: 'r', modelName: 'm', modelVersion: '1' } as unknown as Replica);
      return p;
    };

    it('predict: a single deep input is refused; in a batch it is that entry\'s error', async () => {
      const p = processor();
      await assert.rejects(p.infer({ app: 's' }, { values: [nested(100_000)] }), isDepthError);
      const [bad, good] = await p.infer({ app: 's' }, { values: [nested(100_000), 'ok'] });
      assert.equal((bad as EntryError).error, 'INVALID_INPUT');
      assert.match((bad as EntryError).cause!, /100 levels/);
      assert.equal((good as Answer).output.value, 1);
    });

    it('feedback: a deep input or a deep label is refused', async () => {
      const p = processor();
      await assert.rejects(p.feedback('s', nested(100_000), 1, undefined), isDepthError);
      await assert.rejects(p.feedback('s', 'fine', nested(100_000), undefined), (e) => e instanceof ServingError && e.code === 'INVALID_INPUT' && /label nests/.test(e.message));
      assert.deepEqual(await p.feedback('s', 'fine', 1, undefined), { feedback: [{ model: 'm', output: 1 }] });
    });
  });
});
