/**
 * The predict route's fast path (src/http/fast-predict.ts) answers plain requests without fastify,
 * exactly as the fastify route does, and leaves every other request to fastify untouched.
 * The query API is built here over a stand-in processor, so a hook can count what reaches fastify.
 */
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { ServingError } from '../../src/errors.ts';
import { createQueryApi } from '../../src/http/query-api.ts';
import { QueryMetrics } from '../../src/query/metrics.ts';
import { ModelOutput } from '../../src/query/output.ts';
import type { Answer, EntryError, InferInputs, InferTarget, QueryProcessor } from '../../src/query/query-processor.ts';
import type { RegistryService } from '../../src/registry/registry-service.ts';
import { AppKeys } from '../../src/security/app-keys.ts';
import { send } from '../helpers/server.ts';

const KEY = 'k-0123456789abcdef';

/** Echoes strings as "v1:<x>"; refuses non-strings per entry; knows the apps "echo" and "keyed". */
const processor = {
  async infer(target: InferTarget, inputs: InferInputs): Promise<Array<Answer | EntryError>> {
    if (!('app' in target) || !['echo', 'keyed'].includes(target.app)) throw new ServingError('APP_NOT_FOUND', 'no such application');
    if (target.version !== undefined && target.version !== '1') throw new ServingError('VERSION_NOT_FOUND', 'no such version');
    const values = (inputs as { values: unknown[] }).values;
    const out = values.map((x, i): Answer | EntryError => (typeof x === 'string'
      ? { queryId: i, output: ModelOutput.fromText(JSON.stringify(`v1:${x}`)), isDefault: false, models: ['m:1'] }
      : { error: 'INVALID_INPUT', cause: 'not a string' }));
    if (out.length === 1 && 'error' in out[0]!) throw new ServingError('INVALID_INPUT', 'not a string');
    return out;
  },
} as unknown as QueryProcessor;

const registry = { getApp: () => undefined, listApps: () => [], linkedModels: () => [] } as unknown as RegistryService;

describe('predict fast path', () => {
  let url = '';
  let routed = 0;
  let close: () => Promise<void>;
  before(async () => {
    const state = new Map<string, string>();
    const keys = new AppKeys({ getState: async (k) => state.get(k), putState: async (k, v) => { state.set(k, v); } });
    await keys.set('keyed', [KEY]);
    const api = createQueryApi(processor, new QueryMetrics(), { bodyLimitBytes: 64 * 1024 }, keys, registry);
    api.addHook('onResponse', async () => { routed++; });
    await api.listen({ host: '127.0.0.1', port: 0 });
    url = `http://127.0.0.1:${(api.server.address() as AddressInfo).port}`;
    close = () => api.close();
  });
  after(() => close?.());

  const predict = (app: string, body: string, headers: Record<string, string> = {}) => send(`${url}/${app}/predict`, body, true, headers);

  it('answers plain requests itself, with the same answers, errors and request ids', async () => {
    const before = routed;
    const ok = await predict('echo', '{"input":"a"}', { 'x-request-id': 'fast-1' });
    assert.equal(ok.status, 200);
    assert.deepEqual(ok.body, { query_id: 0, output: 'v1:a', default: false, models: ['m:1'] });
    assert.equal(ok.headers.get('x-request-id'), 'fast-1');
    assert.equal(ok.headers.get('content-type'), 'application/json; charset=utf-8');
    const batch = await predict('echo', '{"input_batch":["b", 7]}');
    assert.deepEqual(batch.body.batch_predictions.map((p: { output?: unknown; error?: string }) => p.output ?? p.error), ['v1:b', 'INVALID_INPUT']);
    assert.match(batch.headers.get('x-request-id') ?? '', /^[0-9a-f-]{36}$/);
    const cases: Array<[string, string, number, string]> = [
      ['echo', '{"input": ', 400, 'MALFORMED_JSON'],
      ['echo', '', 400, 'INVALID_INPUT'],
      ['echo', '[1]', 400, 'INVALID_INPUT'],
      ['echo', '{"inputs": 1}', 400, 'INVALID_INPUT'],
      ['echo', '{"input": 1}', 400, 'INVALID_INPUT'],
      ['echo', `{"input": ${'['.repeat(150)}${']'.repeat(150)}}`, 400, 'INVALID_INPUT'],
      ['echo', '{"input": "x", "version": "9"}', 404, 'VERSION_NOT_FOUND'],
      ['nope', '{"input": "x"}', 404, 'APP_NOT_FOUND'],
    ];
    for (const [app, body, status, code] of cases) {
      const r = await predict(app, body);
      assert.equal(r.status, status, `${body.slice(0, 30)}: ${JSON.stringify(r.body)}`);
      assert.equal(r.body.error, code, body.slice(0, 30));
      assert.equal(typeof r.body.cause, 'string');
      assert.ok(r.headers.get('x-request-id'));
    }
    assert.equal(routed, before, 'none of these went through fastify');
  });

  it('leaves keyed applications without a valid key, oversized and chunked bodies, and other routes to fastify', async () => {
    const before = routed;
    const refused = await predict('keyed', '{"input":"a"}');
    assert.equal(refused.status, 401);
    assert.equal(refused.body.error, 'UNAUTHORIZED');
    assert.equal(routed, before + 1);
    assert.equal((await predict('keyed', '{"input":"a"}', { authorization: `Bearer ${KEY}` })).body.output, 'v1:a');
    assert.equal(routed, before + 1, 'a valid key takes the fast path');
    const big = await predict('echo', JSON.stringify({ input: 'x'.repeat(70 * 1024) }));
    assert.equal(big.status, 413);
    assert.equal(big.body.error, 'BODY_TOO_LARGE');
    assert.equal(routed, before + 2);
    const chunked = await fetch(`${url}/echo/predict`, {
      method: 'POST', headers: { 'content-type': 'application/json' }, duplex: 'half',
      body: new ReadableStream({ start(c) { c.enqueue(new TextEncoder().encode('{"input":"c"}')); c.close(); } }),
    } as RequestInit);
    assert.equal(((await chunked.json()) as { output: string }).output, 'v1:c');
    assert.equal(routed, before + 3);
    assert.equal((await predict('Bad_Name', '{"input":"a"}')).body.error, 'INVALID_NAME');
    assert.equal(routed, before + 4);
  });
});
