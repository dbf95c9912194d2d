/**
 * The fast-path goals, loaded by wrk (bench/lib/wrk.ts), each against a baseline measured in the
 * same run:
 *   a. no-op model, distinct inputs (cache on, so every request misses and is put): ≥ 0.5× a bare
 *      node:http server answering the same JSON shape;
 *   b. no-op model, one repeated input (cache hits): ≥ 0.8× bare;
 *   c. added p50 at concurrency 1 (distinct inputs): full stack − bare ≤ 0.3 ms;
 *   d. large MLP over V2 binary tensors ≥ 4× the per-request server (over its JSON);
 *   e. small MLP over Clipper JSON ≥ 0.8× its limit (the lower of the raw model's tight loop and
 *      a bare node:http server parsing the same JSON);
 *   f. a and b again once the prediction cache is full, against the empty-cache figures.
 * Durations: BENCH_SECONDS per measured run (default 10), BENCH_WARMUP before each (default 2).
 */
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ClipperApp } from '../src/app.ts';
import { decodeInferResponse, encodeInferRequest } from '../src/v2/binary.ts';
import { createTensor } from '../src/v2/tensor.ts';
import { makeBodyFactory } from './lib/bodies.ts';
import { runChild, startChildServer } from './lib/child.ts';
import { checkedQuery, deploy, jsModelDir, metricTotal, mlpFile, setReplicas, times, watchCpu } from './lib/fixtures.ts';
import type { LoopResult } from './lib/mlp-loop.ts';
import { machine, table, type Section } from './lib/report.ts';
import { benchServer } from './lib/server.ts';
import { runWrk, type WrkConfig, type WrkResult } from './lib/wrk.ts';

const HERE = dirname(fileURLToPath(import.meta.url));
const THREADS = 2;
const CONNECTIONS = 64;
const NOOP = `export function predict(inputs) { return inputs.map(() => 'ok'); }\n`;
const NOOP_WIDTH = 4;
const HOT_BODY = '{"input":[0.5,1.5,2.5,3.5]}';
const CACHE_BYTES = 64 * 1024 * 1024;
/**
 * A lower bound on the bytes a cache entry of a 4-double input and the output "ok" takes: the
 * input's 32 bytes (in its key), the output text, and at least 180 of overhead (as
 * test/query/cache-memory.test.ts measures). The fill puts twice the inputs that many bytes would
 * hold, so the cache is full and evicting whatever the real size of an entry is.
 */
const MIN_ENTRY_BYTES = 28 + 8 * NOOP_WIDTH + 4 + 180; // 28: the smallest key beyond the input (a hashed one)
/** Inputs per fill request: well under the Clipper API's input_batch limit (10,000), so each answers within the SLO. */
const FILL_PER_REQUEST = 2_000;
const WIDTH = 784;
const MLP_BODIES = 200;
const SMALL = [WIDTH, 256, 10];
const LARGE = [WIDTH, 1024, 1024, 10];
const JSON_HEADERS = { 'Content-Type': 'application/json' };
const CLIPPER_DEFAULT = '"default":true';
const V2_DEFAULT = '"default":[';

interface Timing { seconds: number; warmup: number }

function timing(): Timing {
  const read = (name: string, fallback: number) => {
    const raw = process.env[name];
    const v = raw === undefined || raw === '' ? fallback : Number(raw);
    if (!Number.isFinite(v) || v <= 0) throw new Error(`${name} must be a positive number of seconds, not ${raw}`);
    return v;
  };
  return { seconds: read('BENCH_SECONDS', 10), warmup: read('BENCH_WARMUP', 2) };
}

/** What to send, apart from where, how hard and how long. */
type Load = Omit<WrkConfig, 'url' | 'threads' | 'connections' | 'durationSec'>;
const THROUGHPUT = { threads: THREADS, connections: CONNECTIONS };
const ONE_AT_A_TIME = { threads: 1, connections: 1 };

async function measure(t: Timing, url: string, load: Load, shape: typeof THROUGHPUT): Promise<WrkResult> {
  await runWrk({ ...load, ...shape, url, durationSec: t.warmup });
  return runWrk({ ...load, ...shape, url, durationSec: t.seconds });
}

interface Counters { defaults: number; hits: number; misses: number }
async function counters(app: ClipperApp): Promise<Counters> {
  return {
    defaults: await metricTotal(app.queryUrl, 'clipper_app_default_outputs_total'),
    hits: await metricTotal(app.queryUrl, 'clipper_cache_hits_total'),
    misses: await metricTotal(app.queryUrl, 'clipper_cache_misses_total'),
  };
}

/** A measured run through the full stack: wrk's figures and what /metrics counted meanwhile. */
interface FullRun { load: WrkResult; defaults: number; hitRatio: number; misses: number }

async function measureFull(app: ClipperApp, t: Timing, url: string, load: Load, shape: typeof THROUGHPUT): Promise<FullRun> {
  await runWrk({ ...load, ...shape, url, durationSec: t.warmup });
  const before = await counters(app);
  const result = await runWrk({ ...load, ...shape, url, durationSec: t.seconds });
  const after = await counters(app);
  const hits = after.hits - before.hits;
  const misses = after.misses - before.misses;
  return { load: result, defaults: Math.max(result.defaults, after.defaults - before.defaults), hitRatio: hits / Math.max(1, hits + misses), misses };
}

/** Puts `inputs` distinct inputs (never sent by wrk: negative values) into the cache through input_batch. */
async function fillCache(url: string, inputs: number): Promise<number> {
  const started = performance.now();
  let next = 0;
  const worker = async () => {
    while (next < inputs) {
      const first = next;
      const n = Math.min(FILL_PER_REQUEST, inputs - first);
      next += n;
      const batch = Array.from({ length: n }, (_, i) => Array.from({ length: NOOP_WIDTH }, (_, k) => -((first + i) * NOOP_WIDTH + k + 1)));
      const res = await fetch(url, { method: 'POST', headers: JSON_HEADERS, body: JSON.stringify({ input_batch: batch }) });
      const data = (await res.json()) as { batch_predictions?: Array<{ default?: boolean }> };
      const answers = data.batch_predictions ?? [];
      const notReal = answers.filter((p) => p.default !== false);
      if (!res.ok || answers.length !== n || notReal.length) {
        throw new Error(`cache fill: expected ${n} real answers, got HTTP ${res.status}, ${answers.length} answers, ${notReal.length} not real: ${JSON.stringify(notReal[0] ?? data).slice(0, 300)}`);
      }
    }
  };
  await Promise.all([worker(), worker()]);
  return (performance.now() - started) / 1000;
}

/** The V2 binary request bodies: the same inputs as the JSON bodies, FP32 [1, 784], answers asked as binary. */
function v2Bodies(jsonBodies: string[]): { bodies: Buffer[]; headerLength: number } {
  const encoded = jsonBodies.map((text) => {
    const input = Float32Array.from((JSON.parse(text) as { input: number[] }).input);
    return encodeInferRequest({ inputs: [createTensor('input', 'FP32', [1, WIDTH], input)], parameters: { binary_data_output: true } }, true);
  });
  const headerLength = encoded[0]!.headerLength!;
  if (encoded.some((e) => e.headerLength !== headerLength)) throw new Error('V2 bodies: JSON headers of different lengths');
  return { bodies: encoded.map((e) => e.body), headerLength };
}

/** One V2 binary inference, checked: a real [1, 10] answer, equal to the Clipper API's answer for the same input. */
async function checkedV2(app: ClipperApp, name: string, body: Buffer, headerLength: number, jsonBody: string): Promise<void> {
  const res = await fetch(`${app.queryUrl}/v2/models/${name}/infer`, {
    method: 'POST', headers: { 'Content-Type': 'application/octet-stream', 'Inference-Header-Content-Length': String(headerLength) }, body: new Uint8Array(body),
  });
  const bytes = Buffer.from(await res.arrayBuffer());
  if (!res.ok) throw new Error(`V2 ${name}: HTTP ${res.status} ${bytes.toString('utf8').slice(0, 300)}`);
  const answer = decodeInferResponse(bytes, res.headers.get('inference-header-content-length') ?? undefined);
  const out = answer.outputs[0];
  if (answer.parameters?.default !== undefined || !out || out.shape.join() !== '1,10') {
    throw new Error(`V2 ${name}: expected a non-default [1, 10] output, got ${JSON.stringify({ parameters: answer.parameters, shape: out?.shape })}`);
  }
  const expected = ((await checkedQuery(`${app.queryUrl}/${name}/predict`, jsonBody)) as { output: number[] }).output;
  const got = Array.from(out.data as Float64Array);
  if (got.some((v, k) => Math.abs(v - expected[k]!) > 1e-5 * Math.max(1, Math.abs(v)))) {
    throw new Error(`V2 ${name}: answer ${got.join(',')} differs from the JSON answer ${expected.join(',')}`);
  }
}

/** Starts a baseline server in a child process, checks one answer, runs `run` against it, stops it. */
async function childRun<T>(script: string, args: string[], path: string, check: string, run: (url: string) => Promise<T>): Promise<T> {
  const server = await startChildServer(join(HERE, script), args);
  try {
    const url = `${server.url}${path}`;
    await checkedQuery(url, check);
    return await run(url);
  } finally {
    await server.stop();
  }
}

const clean = (...runs: Array<{ non2xx: number; defaults: number; socketErrors: number }>) => runs.every((r) => r.non2xx + r.defaults + r.socketErrors === 0);
const verdict = (ok: boolean, valid: boolean) => (!valid ? 'invalid (errors or defaults)' : ok ? 'yes' : 'no');

export async function benchFastpath(): Promise<Section> {
  const t = timing();
  const cpu = watchCpu();
  const makeJson = makeBodyFactory({ kind: 'floats', width: WIDTH, count: MLP_BODIES, seed: 1 });
  const jsonBodies = Array.from({ length: MLP_BODIES }, (_, i) => makeJson(i));
  const v2 = v2Bodies(jsonBodies);
  const smallPath = mlpFile(SMALL);
  const largePath = mlpFile(LARGE);
  // The raw model first, in a child process, before any server runs.
  const loop = await runChild<LoopResult[]>(join(HERE, 'lib/mlp-loop.ts'), { path: smallPath, width: WIDTH, threads: [1, 2], batches: [1, 8, 32, 128], seconds: 1 }, 120_000);
  const bestLoop = loop.reduce((a, b) => (b.samplesPerSec > a.samplesPerSec ? b : a));

  const distinct: Load = { bodies: { kind: 'distinct', width: NOOP_WIDTH }, headers: JSON_HEADERS, defaultMarker: CLIPPER_DEFAULT };
  const hot: Load = { bodies: { kind: 'one', body: HOT_BODY }, headers: JSON_HEADERS, defaultMarker: CLIPPER_DEFAULT };
  const mlpJson: Load = { bodies: { kind: 'cycle', bodies: jsonBodies }, headers: JSON_HEADERS, defaultMarker: CLIPPER_DEFAULT };

  const bare = await childRun('lib/bare-server.ts', ['ok'], '/noop/predict', HOT_BODY, async (url) => ({
    distinct: await measure(t, url, distinct, THROUGHPUT),
    hot: await measure(t, url, hot, THROUGHPUT),
    c1: await measure(t, url, distinct, ONE_AT_A_TIME),
  }));
  const bareJson = await childRun('lib/bare-server.ts', ['head10'], '/mlp/predict', jsonBodies[0]!, (url) => measure(t, url, mlpJson, THROUGHPUT));
  const perRequest = await childRun('lib/per-request-server.ts', [largePath, '1'], '/mlp/predict', jsonBodies[0]!, (url) => measure(t, url, mlpJson, THROUGHPUT));

  const noop = await measureNoop(t, distinct, hot);
  const mlp = await measureMlps(t, mlpJson, jsonBodies, v2, smallPath, largePath);
  return { name: 'fastpath', markdown: report(t, cpu.note(), { bare, bareJson, perRequest, noop, mlp, bestLoop }) };
}

interface NoopRuns {
  hot: FullRun; distinct: FullRun; c1: FullRun;
  fill: { inputs: number; seconds: number; misses: number; heapBeforeMiB: number; heapAfterMiB: number };
  hotFull: FullRun; distinctFull: FullRun;
}

/** No-op model, cache on: (b), (a), (c) while the cache is not yet full; the fill; (a) and (b) again. */
async function measureNoop(t: Timing, distinct: Load, hot: Load): Promise<NoopRuns> {
  const app = await benchServer({ cacheBytes: CACHE_BYTES });
  try {
    const url = await deploy(app, { name: 'noop', inputType: 'doubles', sloMicros: 1_000_000, runtime: 'js', path: jsModelDir(NOOP) });
    await checkedQuery(url, HOT_BODY);
    await checkedQuery(url, HOT_BODY); // a cache hit, checked as well
    const hotRun = await measureFull(app, t, url, hot, THROUGHPUT);
    const distinctRun = await measureFull(app, t, url, distinct, THROUGHPUT);
    const c1 = await measureFull(app, t, url, distinct, ONE_AT_A_TIME);
    const inputs = 2 * Math.ceil(CACHE_BYTES / MIN_ENTRY_BYTES);
    const mib = () => process.memoryUsage().heapUsed / 2 ** 20; // the server runs in this process
    const heapBeforeMiB = mib();
    const missesBefore = (await counters(app)).misses;
    const seconds = await fillCache(url, inputs);
    const fill = { inputs, seconds, misses: (await counters(app)).misses - missesBefore, heapBeforeMiB, heapAfterMiB: mib() };
    await checkedQuery(url, HOT_BODY);
    const distinctFull = await measureFull(app, t, url, distinct, THROUGHPUT);
    const hotFull = await measureFull(app, t, url, hot, THROUGHPUT);
    return { hot: hotRun, distinct: distinctRun, c1, fill, hotFull, distinctFull };
  } finally {
    await app.close();
  }
}

interface MlpRuns { large: FullRun; largeJson: FullRun; small: FullRun }

/** MLPs, cache off (the runs cycle through 200 bodies): large over V2 binary (and over JSON, for reference), small over JSON. */
async function measureMlps(t: Timing, mlpJson: Load, jsonBodies: string[], v2: { bodies: Buffer[]; headerLength: number }, smallPath: string, largePath: string): Promise<MlpRuns> {
  const app = await benchServer({ cacheBytes: 0 });
  try {
    const largeUrl = await deploy(app, { name: 'large', inputType: 'floats', sloMicros: 500_000, runtime: 'onnx', path: largePath });
    await checkedV2(app, 'large', v2.bodies[0]!, v2.headerLength, jsonBodies[0]!);
    const large = await measureFull(app, t, `${app.queryUrl}/v2/models/large/infer`, {
      bodies: { kind: 'cycle', bodies: v2.bodies },
      headers: { 'Content-Type': 'application/octet-stream', 'Inference-Header-Content-Length': String(v2.headerLength) }, defaultMarker: V2_DEFAULT,
    }, THROUGHPUT);
    const largeJson = await measureFull(app, t, largeUrl, mlpJson, THROUGHPUT);
    await setReplicas(app, 'large', 0); // its container would otherwise take CPU from the next model
    const smallUrl = await deploy(app, { name: 'small', inputType: 'floats', sloMicros: 500_000, runtime: 'onnx', path: smallPath });
    await checkedQuery(smallUrl, jsonBodies[0]!);
    const small = await measureFull(app, t, smallUrl, mlpJson, THROUGHPUT);
    return { large, largeJson, small };
  } finally {
    await app.close();
  }
}

interface Figures {
  bare: { distinct: WrkResult; hot: WrkResult; c1: WrkResult };
  bareJson: WrkResult;
  perRequest: WrkResult;
  noop: NoopRuns;
  mlp: MlpRuns;
  bestLoop: LoopResult;
}

const num = (x: number) => Math.round(x).toLocaleString('en-US');
const msec = (x: number) => x.toFixed(3);

function report(t: Timing, cpuNote: string, f: Figures): string {
  const { bare, noop, mlp } = f;
  const runRow = (what: string, server: string, load: string, r: WrkResult, extra?: FullRun) => [
    what, server, load, num(r.rps), msec(r.p50), msec(r.p99), r.non2xx + r.socketErrors, extra ? extra.defaults : r.defaults,
    extra ? `${(extra.hitRatio * 100).toFixed(1)}%` : '—', r.wrkCores.toFixed(2),
  ];
  const tput = `${CONNECTIONS} conn`;
  const runs = [
    runRow('no-op, distinct inputs', 'bare node:http', tput, bare.distinct),
    runRow('no-op, distinct inputs', 'full stack, cache not full', tput, noop.distinct.load, noop.distinct),
    runRow('no-op, distinct inputs', 'full stack, cache full', tput, noop.distinctFull.load, noop.distinctFull),
    runRow('no-op, one repeated input', 'bare node:http', tput, bare.hot),
    runRow('no-op, one repeated input', 'full stack, cache not full', tput, noop.hot.load, noop.hot),
    runRow('no-op, one repeated input', 'full stack, cache full', tput, noop.hotFull.load, noop.hotFull),
    runRow('no-op, distinct inputs', 'bare node:http', '1 conn', bare.c1),
    runRow('no-op, distinct inputs', 'full stack, cache not full', '1 conn', noop.c1.load, noop.c1),
    runRow('large MLP, JSON', 'per-request server', tput, f.perRequest),
    runRow('large MLP, V2 binary', 'full stack', tput, mlp.large.load, mlp.large),
    runRow('large MLP, Clipper JSON', 'full stack (reference)', tput, mlp.largeJson.load, mlp.largeJson),
    runRow('784-float JSON, no model', 'bare node:http (head10)', tput, f.bareJson),
    runRow('small MLP, Clipper JSON', 'full stack', tput, mlp.small.load, mlp.small),
  ];

  const limit = Math.min(f.bestLoop.samplesPerSec, f.bareJson.rps);
  const limitBy = f.bestLoop.samplesPerSec < f.bareJson.rps ? `raw model, batch ${f.bestLoop.batch}, ${f.bestLoop.threads} thr` : 'bare HTTP + JSON';
  const a = noop.distinct.load.rps / bare.distinct.rps;
  const b = noop.hot.load.rps / bare.hot.rps;
  const c = noop.c1.load.p50 - bare.c1.p50;
  const d = mlp.large.load.rps / f.perRequest.rps;
  const e = mlp.small.load.rps / limit;
  const fa = noop.distinctFull.load.rps / bare.distinct.rps;
  const fb = noop.hotFull.load.rps / bare.hot.rps;
  const ok = (...rs: Array<WrkResult | FullRun>) => clean(...rs.map((r) => ('load' in r ? { ...r.load, defaults: r.defaults } : r)));
  const goals = [
    ['a. no-op, distinct inputs', `${num(noop.distinct.load.rps)} req/s`, `bare ${num(bare.distinct.rps)}`, times(a), '≥ 0.50×', verdict(a >= 0.5, ok(noop.distinct, bare.distinct))],
    ['b. no-op, cache hits', `${num(noop.hot.load.rps)} req/s`, `bare ${num(bare.hot.rps)}`, times(b), '≥ 0.80×', verdict(b >= 0.8, ok(noop.hot, bare.hot))],
    ['c. added p50, concurrency 1', `${msec(noop.c1.load.p50)} ms`, `bare ${msec(bare.c1.p50)} ms`, `+${msec(c)} ms`, '≤ 0.300 ms', verdict(c <= 0.3, ok(noop.c1, bare.c1))],
    ['d. large MLP, V2 binary', `${num(mlp.large.load.rps)} req/s`, `per-request ${num(f.perRequest.rps)}`, times(d), '≥ 4.00×', verdict(d >= 4, ok(mlp.large, f.perRequest))],
    ['e. small MLP, Clipper JSON', `${num(mlp.small.load.rps)} req/s`, `limit ${num(limit)} (${limitBy})`, times(e), '≥ 0.80×', verdict(e >= 0.8, ok(mlp.small, f.bareJson))],
    ['f. full cache, distinct inputs', `${num(noop.distinctFull.load.rps)} req/s`, `not full ${num(noop.distinct.load.rps)}`,
      `${times(noop.distinctFull.load.rps / noop.distinct.load.rps)} (${times(fa)} bare)`, '≥ 0.50× bare', verdict(fa >= 0.5, ok(noop.distinctFull, bare.distinct))],
    ['f. full cache, cache hits', `${num(noop.hotFull.load.rps)} req/s`, `not full ${num(noop.hot.load.rps)}`,
      `${times(noop.hotFull.load.rps / noop.hot.load.rps)} (${times(fb)} bare)`, '≥ 0.80× bare', verdict(fb >= 0.8, ok(noop.hotFull, bare.hot))],
  ];
  const fill = noop.fill;
  return `## Fast path (wrk)

${machine()}. ${cpuNote}

Load from **wrk** (\`/usr/bin/wrk\`, C, its own process; bench/lib/wrk.ts) rather than autocannon,
which takes most of a core itself. Throughput: **${THREADS} wrk threads, ${CONNECTIONS} connections**; latency at
concurrency 1: 1 thread, 1 connection. Each run: ${t.seconds} s after a ${t.warmup} s warm-up. Latency is wrk's
histogram (microseconds, shown in ms), read in the Lua \`done\` hook. The Lua script counts non-2xx
answers and answers that carry a default output (\`"default":true\`; V2: \`"default":[\`); every
server first answers one checked request (fetch) with a real prediction. *wrk CPU*: the cores wrk
itself used. The 2 cores are shared by wrk, the server and the model containers (a bare server has
no container, so it gets more CPU).

- *Bare*: \`node:http\` in a child process that parses the JSON body and answers the same shape
  \`{"query_id","output","default","models"}\` in-process (bench/lib/bare-server.ts).
- *No-op full stack*: app \`noop\` (input_type \`doubles\`, SLO 1 s, **cache on**, ${CACHE_BYTES / 2 ** 20} MiB) linked to a js
  model answering \`"ok"\`, one replica. *Distinct inputs*: every request a 4-integer input made
  in Lua and never sent before, so every request misses the cache, goes through the container and
  is put into the cache. *One repeated input*: cache hits after the first.
- *Cache full*: after the runs above, ${num(fill.inputs)} distinct inputs (twice what ${CACHE_BYTES / 2 ** 20} MiB holds at
  ≥ ${MIN_ENTRY_BYTES} bytes an entry) were put through \`input_batch\` requests in ${fill.seconds.toFixed(1)} s
  (${num(fill.misses)} cache misses counted; server heap ${fill.heapBeforeMiB.toFixed(0)} → ${fill.heapAfterMiB.toFixed(0)} MiB), then the
  distinct and repeated runs again on the same server.
- *MLPs* (Gemm + Relu, built in code): large ${LARGE.join('→')}, small ${SMALL.join('→')}; cache off, SLO 500 ms,
  adaptive batching, one onnx container (1 intra-op thread). Each run cycles through ${MLP_BODIES}
  random 784-float inputs. *V2 binary*: \`POST /v2/models/large/infer\`, FP32 [1, 784] as binary
  data (\`Inference-Header-Content-Length\`), \`binary_data_output: true\`. *Per-request server*:
  fastify + one \`session.run\` per request over \`{"input": [...]}\`. *Limit* of the small MLP: the lower
  of the raw model's best tight loop (${num(f.bestLoop.samplesPerSec)} samples/s at batch ${f.bestLoop.batch}, ${f.bestLoop.threads} thread${f.bestLoop.threads > 1 ? 's' : ''}) and the
  bare server parsing the same JSON into a Float32Array (head10 mode).

${table(['load', 'server', 'conc.', 'req/s', 'p50 ms', 'p99 ms', 'non-2xx', 'defaults', 'cache hits', 'wrk CPU'], runs)}

${table(['goal', 'measured', 'baseline', 'ratio', 'target', 'met'], goals)}
`;
}
