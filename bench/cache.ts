/**
 * Prediction cache: a model that costs 1.5 ms per input through the full stack with the cache on,
 * at 0%, 50% and 90% repeated inputs (a small hot set, else a fresh input never seen before).
 * Throughput at 64 connections, latency, and the hit ratio read from GET /metrics.
 */
import { BODIES, makeBodyFactory, type BodySpec } from './lib/bodies.ts';
import { checkedQuery, deploy, jsModelDir, metricTotal, pct, times, watchCpu } from './lib/fixtures.ts';
import { runLoad, type LoadResult } from './lib/load.ts';
import { machine, table, type Section } from './lib/report.ts';
import { benchServer } from './lib/server.ts';

const CONNECTIONS = 64;
const SECONDS = 10;
const PER_INPUT_MS = 1.5;
const HOT = 100;
const REPEATED = [0, 0.5, 0.9];
const MODEL = `const PER_INPUT_MS = ${PER_INPUT_MS};
export async function predict(inputs) {
  await new Promise((resolve) => setTimeout(resolve, PER_INPUT_MS * inputs.length));
  return inputs.map((x) => String(x.length));
}
`;

interface Level { p: number; load: LoadResult; hits: number; misses: number; defaults: number; modelInputs: number }

export async function benchCache(): Promise<Section> {
  const cpu = watchCpu();
  const app = await benchServer({ cacheBytes: 64 * 1024 * 1024 });
  const levels: Level[] = [];
  try {
    const url = await deploy(app, { name: 'cached', inputType: 'doubles', sloMicros: 1_000_000, runtime: 'js', path: jsModelDir(MODEL) });
    const counters = async () => ({
      hits: await metricTotal(app.queryUrl, 'clipper_cache_hits_total'),
      misses: await metricTotal(app.queryUrl, 'clipper_cache_misses_total'),
      defaults: await metricTotal(app.queryUrl, 'clipper_app_default_outputs_total'),
      modelInputs: await metricTotal(app.queryUrl, 'clipper_inference_count_total'),
    });
    for (const p of REPEATED) {
      const spec: BodySpec = { kind: 'hot', p, hot: HOT, width: 8, seed: 11 };
      await checkedQuery(url, makeBodyFactory({ ...spec, p: 0 })(0));
      // The warm-up fills the hot set, so the measured run is the steady state.
      await runLoad({ url, connections: CONNECTIONS, durationSec: 2, generator: BODIES, generatorArg: spec });
      const before = await counters();
      const load = await runLoad({ url, connections: CONNECTIONS, durationSec: SECONDS, generator: BODIES, generatorArg: spec });
      const after = await counters();
      levels.push({
        p, load, hits: after.hits - before.hits, misses: after.misses - before.misses,
        defaults: after.defaults - before.defaults, modelInputs: after.modelInputs - before.modelInputs,
      });
    }
  } finally {
    await app.close();
  }
  const base = levels[0]!.load.rps;
  const ceiling = (p: number) => Math.round((1000 / PER_INPUT_MS) / (1 - p));
  const rows = levels.map((l) => [
    pct(l.p), Math.round(l.load.rps), times(l.load.rps / base), l.load.p50, l.load.p99,
    pct(l.hits / Math.max(1, l.hits + l.misses)), Math.round(l.modelInputs / SECONDS), l.p < 1 ? ceiling(l.p) : '—', l.load.errors, l.defaults,
  ]);
  return {
    name: 'cache',
    markdown: `## Prediction cache

${machine()}. ${cpu.note()}

App \`cached\` (input_type \`doubles\`, SLO 1 s) linked to a js model that costs ${PER_INPUT_MS} ms per input
(one sleep of ${PER_INPUT_MS} ms × batch size per batch — CPU-free, like a model on an accelerator), one
replica, adaptive batching, cache on (64 MiB). With probability *p* a request repeats one of ${HOT} hot
8-number inputs, else it sends an input never sent before. autocannon, ${CONNECTIONS} connections,
${SECONDS} s after a 2 s warm-up at the same mix (which fills the hot set). Hit ratio =
\`clipper_cache_hits_total\` / (hits + \`clipper_cache_misses_total\`) over the measured run, from
GET /metrics. *Model bound* is what the model alone could serve at that mix: (1000 / ${PER_INPUT_MS}) / (1 − p)
req/s. The 2 cores are shared by the load generator, the server and the container.

${table(['repeated inputs', 'req/s', 'vs 0%', 'p50 ms', 'p99 ms', 'hit ratio', 'model inputs/s', 'model bound, req/s', 'errors', 'defaults'], rows)}
`,
  };
}
