/**
 * Adaptive batching: a js model whose batch costs 0.5 ms + 0.1 ms per input (busy-wait), app SLO
 * 20 ms, 64 connections for 20 s from a cold queue. Samples the batch size every 250 ms; reports
 * when it settles, the SLO misses (default answers) after that, and throughput.
 */
import type { ClipperApp } from '../src/app.ts';
import { BODIES, type BodySpec } from './lib/bodies.ts';
import { checkedQuery, deploy, jsModelDir, metricTotal, pct, watchCpu } from './lib/fixtures.ts';
import { runLoad } from './lib/load.ts';
import { machine, table, type Section } from './lib/report.ts';
import { benchServer } from './lib/server.ts';

const CONNECTIONS = 64;
const SECONDS = 20;
const TICK_MS = 250;
const SLO_MS = 20;
const FIXED_MS = 0.5;
const PER_INPUT_MS = 0.1;
const SPEC: BodySpec = { kind: 'unique', width: 4 };
const MODEL = `export function predict(inputs) {
  const end = performance.now() + ${FIXED_MS} + ${PER_INPUT_MS} * inputs.length;
  while (performance.now() < end) {}
  return inputs.map(() => 'ok');
}
`;

interface Sample { t: number; policy: number; batches: number; inputs: number; requests: number; defaults: number }

async function sample(app: ClipperApp, t: number): Promise<Sample> {
  const status = (await (await fetch(`${app.adminUrl}/admin/status`)).json()) as { queues: Array<{ model: string; batchSizes: number[] }> };
  const q = status.queues.find((x) => x.model.startsWith('batched'));
  const m = (name: string) => metricTotal(app.queryUrl, name, 'batched');
  return {
    t, policy: q?.batchSizes[0] ?? 0,
    batches: await m('clipper_batch_size_count'), inputs: await m('clipper_batch_size_sum'),
    requests: await m('clipper_app_requests_total'), defaults: await m('clipper_app_default_outputs_total'),
  };
}

const median = (xs: number[]) => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)] ?? 0; };

export async function benchBatching(): Promise<Section> {
  const cpu = watchCpu();
  const app = await benchServer({ cacheBytes: 0 });
  const samples: Sample[] = [];
  let load;
  try {
    const url = await deploy(app, { name: 'batched', inputType: 'doubles', sloMicros: SLO_MS * 1000, runtime: 'js', path: jsModelDir(MODEL) });
    await checkedQuery(url, '{"input":[-1,-2,-3,-4]}');
    const running = runLoad({ url, connections: CONNECTIONS, durationSec: SECONDS, generator: BODIES, generatorArg: SPEC });
    let done = false;
    void running.finally(() => { done = true; });
    const t0 = performance.now();
    while (!done) {
      samples.push(await sample(app, performance.now() - t0));
      await new Promise((r) => setTimeout(r, TICK_MS - ((performance.now() - t0) % TICK_MS)));
    }
    load = await running;
  } finally {
    await app.close();
  }

  // Intervals between samples; time counts from the first interval in which requests arrived
  // (the load generator process needs a moment to start).
  const first = samples.findIndex((s, i) => i > 0 && s.requests > samples[i - 1]!.requests);
  const points = samples.slice(first).map((s, k, arr) => {
    const prev = k === 0 ? samples[first - 1]! : arr[k - 1]!;
    const batches = s.batches - prev.batches;
    return { t: (s.t - samples[first]!.t) / 1000, policy: s.policy, mean: batches > 0 ? (s.inputs - prev.inputs) / batches : 0, sample: s };
  }).filter((p, k, arr) => k < arr.length - 1 || p.mean > 0); // drop a final, partly idle interval
  const finalMedian = median(points.slice(Math.floor(points.length * 0.75)).map((p) => p.mean));
  const within = (x: number) => Math.abs(x - finalMedian) <= 0.2 * finalMedian;
  let settleIdx = points.length - 1;
  while (settleIdx > 0 && within(points[settleIdx - 1]!.mean)) settleIdx--;
  const settle = points[settleIdx]!;
  const last = points[points.length - 1]!;
  const missed = last.sample.defaults - settle.sample.defaults;
  const answered = last.sample.requests - settle.sample.requests;
  const missRate = missed / Math.max(1, answered);
  const totalDefaults = last.sample.defaults - samples[0]!.defaults;

  const shown = points.filter((p) => p.t < 2 || Math.round(p.t * 4) % 8 === 0);
  const series = shown.map((p) => [p.t.toFixed(2), p.policy, p.mean.toFixed(1)]);
  const budget = SLO_MS * 0.8;
  const fits = Math.floor((budget - FIXED_MS) / PER_INPUT_MS);
  return {
    name: 'batching',
    markdown: `## Adaptive batching

${machine()}. ${cpu.note()}

App \`batched\` (SLO ${SLO_MS} ms, cache off) linked to a js model whose batch of *n* busy-waits
${FIXED_MS} ms + ${PER_INPUT_MS} ms × *n*, one replica, adaptive batch size (starts at 1, +2 per full batch
in budget, ×0.75 on a batch over budget; budget = 80% of the SLO = ${budget} ms, which the model alone
would meet up to *n* = ${fits}). From a cold queue, autocannon sends ${CONNECTIONS} connections for ${SECONDS} s of
distinct inputs. Every ${TICK_MS} ms the bench reads the policy's batch size (GET /admin/status,
\`queues[].batchSizes\`) and the mean size of the batches sent in that interval (\`clipper_batch_size\`
sum / count from /metrics). *t* counts from the first interval with requests; rows every ${TICK_MS} ms for
the first 2 s, then every 2 s. With ${CONNECTIONS} connections at most ${CONNECTIONS} queries are ever waiting, so the
batch is capped by the offered concurrency, not the SLO. The 2 cores are shared by the load
generator, the server and the container.

${table(['t (s)', 'policy batch size', 'mean batch sent'], series)}

${table(['figure', 'measured', 'target', 'met'], [
  ['final batch size (median of the last quarter)', finalMedian.toFixed(1), '—', '—'],
  ['time to settle (stays within ±20% of it)', `${settle.t.toFixed(2)} s`, '≤ 5 s', settle.t <= 5 ? 'yes' : 'no'],
  ['SLO misses after settling (default answers)', `${missed.toLocaleString('en-US')} of ${answered.toLocaleString('en-US')} (${pct(missRate)})`, '< 1%', missRate < 0.01 ? 'yes' : 'no'],
  ['SLO misses over the whole run', String(totalDefaults), '—', '—'],
  ['throughput', `${Math.round(load.rps).toLocaleString('en-US')} req/s (p50 ${load.p50} ms, p99 ${load.p99} ms)`, '—', '—'],
  ['errors (non-2xx, timeouts)', String(load.errors), '0', load.errors === 0 ? 'yes' : 'no'],
])}
`,
  };
}
