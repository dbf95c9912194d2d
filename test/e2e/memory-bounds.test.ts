/**
 * Memory the query path holds stays bounded (issue 11, finding 5 and 12), measured in this process,
 * where the server runs: answered queries leave nothing behind, a queue with no ready replica holds
 * no more than its byte bound, and deep or huge inputs are a clear 400.
 */
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { after, before, describe, it } from 'node:test';
import { send, startTestServer, waitFor, writeJsModel, type TestServer } from '../helpers/server.ts';
import { heldBytes } from '../query/gc.ts';

const MiB = 1024 * 1024;
const LENGTH = 'export const predict = (xs) => xs.map((x) => String(x.length));\n';
/** Never registers: its replica stays STARTING, so its queue has a prospect but no ready replica. */
const NEVER_READY = `if (process.env.CLIPPER_REPLICA_ID) { setInterval(() => {}, 1000); await new Promise(() => {}); }
export const predict = (xs) => xs.map(() => 'never');
`;

/** A 1M-element doubles input as a JSON body (8 MB once encoded), distinct per `i`. */
const millionBody = (i: number, extra: Record<string, unknown> = {}) => `{"input":[${i}${',0'.repeat(1_000_000 - 1)}]${Object.keys(extra).length ? `,${JSON.stringify(extra).slice(1, -1)}` : ''}}`;
const post = (url: string, body: string) => send(url, body, true);

/** POST on a connection of its own (closed after the answer). */
function postOnce(url: string, body: string): Promise<{ status: number; body: any; headers: Headers }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: 'POST', agent: false, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } }, (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (c: string) => { text += c; }).on('end', () => {
        const headers = new Headers();
        for (const [k, v] of Object.entries(res.headers)) if (typeof v === 'string') headers.set(k, v);
        resolve({ status: res.statusCode ?? 0, body: JSON.parse(text), headers });
      });
    });
    req.on('error', reject).end(body);
  });
}

describe('memory bounds', () => {
  let s: TestServer;
  const cacheBytes = 16 * MiB;
  const maxQueueBytes = 64 * MiB;

  before(async () => {
    s = await startTestServer({ artifactRoot: tmpdir(), cacheBytes, maxQueueBytes, readyTimeoutMs: 1000, startTimeoutMs: 120_000 });
    for (const [app, overload] of [['nums', false], ['stuck', false], ['stuck-default', true]] as const) {
      await s.admin('add_app', { name: app, input_type: 'doubles', default_output: '"DEFAULT"', latency_slo_micros: 4_000_000, overload_default: overload });
    }
    await s.admin('add_model', { model_name: 'len', model_version: '1', input_type: 'doubles', model_data_path: writeJsModel(LENGTH) });
    await s.admin('add_model_links', { app_name: 'nums', model_names: ['len'] });
    await s.admin('add_model', { model_name: 'never', model_version: '1', input_type: 'doubles', model_data_path: writeJsModel(NEVER_READY) });
    await s.admin('add_model_links', { app_name: 'stuck', model_names: ['never'] });
    await s.admin('add_model_links', { app_name: 'stuck-default', model_names: ['never'] });
    await s.admin('add_app', { name: 'words', input_type: 'strings', latency_slo_micros: 2_000_000 });
    await s.admin('add_model', { model_name: 'echo', model_version: '1', input_type: 'strings', model_data_path: writeJsModel('export const predict = (xs) => xs;\n') });
    await s.admin('add_model_links', { app_name: 'words', model_names: ['echo'] });
  });
  after(() => s.close());

  it('forty 1M-element queries answered leave no more than the cache holds', async () => {
    const base = await heldBytes();
    for (let i = 0; i < 40; i += 4) {
      const answers = await Promise.all([0, 1, 2, 3].map((k) => post(`${s.app.queryUrl}/nums/predict`, millionBody(i + k))));
      for (const a of answers) assert.equal(a.body.output, 1_000_000, JSON.stringify(a.body).slice(0, 200));
    }
    const grew = (await heldBytes()) - base;
    assert.ok(grew < cacheBytes * 1.5 + 16 * MiB, `held ${(grew / MiB).toFixed(1)} MiB more after 320 MB of inputs were answered (cache bound ${cacheBytes / MiB} MiB)`);
  });

  it('a queue with no ready replica holds at most maxQueueBytes: the rest get 503 QUEUE_FULL (or the default), and it lets go after the SLO', async () => {
    const base = await heldBytes();
    const url = `${s.app.queryUrl}/stuck/predict`;
    const waiting = Array.from({ length: 8 }, (_, i) => post(url, millionBody(100 + i)));
    await waitFor(() => s.app.processor.queueStats().find((q) => q.model === 'never:1')?.depth === 8, 10_000, 'eight inputs queued');
    const refused = [];
    // On connections of their own: the HTTP layer may keep a kept-alive connection's last error
    // response (and its request) until the connection closes, which is not the queue's memory.
    for (let i = 0; i < 32; i += 8) refused.push(...(await Promise.all(Array.from({ length: 8 }, (_, k) => postOnce(url, millionBody(200 + i + k))))));
    for (const r of refused) {
      assert.equal(r.status, 503, JSON.stringify(r.body).slice(0, 300));
      assert.equal(r.body.error, 'QUEUE_FULL');
      assert.match(r.body.cause, /queue of never:1 is full \(61\.0 MiB of inputs waiting; this input's 7\.6 MiB would pass the limit of 64\.0 MiB\)/);
      assert.equal(r.headers.get('retry-after'), '1');
    }
    const withDefault = await post(`${s.app.queryUrl}/stuck-default/predict`, millionBody(999));
    assert.equal(withDefault.status, 200);
    assert.equal(withDefault.body.default, true);
    assert.match(withDefault.body.default_explanation, /queue of never:1 is full/);

    const held = (await heldBytes()) - base;
    // The queue's 61 MiB, and beside it each of the eight waiting requests' own body (8 MB parsed
    // on the server, 2 MB of JSON text on the client, both in this process); before the byte bound
    // all forty were queued: 40 × (8 MB input + 10 MB of body).
    assert.ok(held < maxQueueBytes + 8 * 10 * MiB + 24 * MiB, `held ${(held / MiB).toFixed(1)} MiB while 40 × 8 MB queries were offered (bound ${maxQueueBytes / MiB} MiB)`);

    for (const w of await Promise.all(waiting)) {
      assert.equal(w.body.default, true);
      assert.match(w.body.default_explanation, /no replica of never:1 is ready/);
    }
    const after = (await heldBytes()) - base;
    assert.ok(after < 24 * MiB, `still held ${(after / MiB).toFixed(1)} MiB after every query gave up`);
    assert.equal(s.app.processor.queueStats().find((q) => q.model === 'never:1')?.depth, 0);
  });

  it('a 100,000-deep input to a strings app is a 400 naming the limit, on /predict and on /update', async () => {
    const deep = `${'['.repeat(100_000)}${']'.repeat(100_000)}`;
    for (const [path, body] of [['predict', `{"input":${deep}}`], ['update', `{"input":${deep},"label":1}`], ['update', `{"input":"x","label":${deep}}`]]) {
      const r = await post(`${s.app.queryUrl}/words/${path}`, body!);
      assert.equal(r.status, 400, `${path}: ${JSON.stringify(r.body).slice(0, 300)}`);
      assert.equal(r.body.error, 'INVALID_INPUT');
      assert.match(r.body.cause, /nests arrays or objects more than 10[02] levels deep \(the limit\)/);
    }
    const ok = await s.predict('words', { input: { a: [1, { b: 2 }] } });
    assert.equal(ok.status, 200);
    assert.deepEqual(ok.body.output, { a: [1, { b: 2 }] });
  });
});
