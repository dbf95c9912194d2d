/**
 * ONNX MLPs (784→256→10 and 784→1024→1024→10, made in code) through the full stack, against a
 * per-request server (fastify + one session.run per request, child process) and against the
 * limit: the lower of the raw model's best tight-loop throughput and a bare node:http server
 * parsing the same 784-float JSON without a model.
 */
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ClipperApp } from '../src/app.ts';
import { BODIES, makeBodyFactory, type BodySpec } from './lib/bodies.ts';
import { runChild, startChildServer } from './lib/child.ts';
import { checkedQuery, deploy, metricTotal, mlpFile, pct, setReplicas, times, watchCpu } from './lib/fixtures.ts';
import { runLoad, type LoadResult } from './lib/load.ts';
import type { LoopResult } from './lib/mlp-loop.ts';
import { machine, table, type Section } from './lib/report.ts';
import { benchServer } from './lib/server.ts';

const HERE = dirname(fileURLToPath(import.meta.url));
const WIDTH = 784;
const CONNECTIONS = 64;
const SECONDS = 8;
const SPEC: BodySpec = { kind: 'floats', width: WIDTH, count: 200, seed: 1 };
const MODELS = [
  { name: 'small', layers: [WIDTH, 256, 10] },
  { name: 'large', layers: [WIDTH, 1024, 1024, 10] },
];
const THREADS = [1, 2];
const BATCHES = [1, 8, 32, 128];

async function load(url: string): Promise<LoadResult> {
  await runLoad({ url, connections: CONNECTIONS, durationSec: 2, generator: BODIES, generatorArg: SPEC }); // warm-up
  return runLoad({ url, connections: CONNECTIONS, durationSec: SECONDS, generator: BODIES, generatorArg: SPEC });
}

async function childLoad(script: string, args: string[]): Promise<LoadResult> {
  const server = await startChildServer(join(HERE, script), args);
  try {
    const url = `${server.url}/mlp/predict`;
    await checkedQuery(url, makeBodyFactory(SPEC)(0));
    return await load(url);
  } finally {
    await server.stop();
  }
}

interface FullRun { replicas: number; load: LoadResult; defaults: number }

async function fullStack(app: ClipperApp, name: string, path: string): Promise<FullRun[]> {
  const url = await deploy(app, { name, inputType: 'floats', sloMicros: 500_000, runtime: 'onnx', path, replicas: 1 });
  await checkedQuery(url, makeBodyFactory(SPEC)(0));
  const runs: FullRun[] = [];
  for (const replicas of [1, 2]) {
    if (replicas > 1) await setReplicas(app, name, replicas);
    const before = await metricTotal(app.queryUrl, 'clipper_app_default_outputs_total', `app="${name}"`);
    const result = await load(url);
    runs.push({ replicas, load: result, defaults: (await metricTotal(app.queryUrl, 'clipper_app_default_outputs_total', `app="${name}"`)) - before });
  }
  await setReplicas(app, name, 0); // its containers would otherwise take CPU from the next model
  return runs;
}

export async function benchMlp(): Promise<Section> {
  const cpu = watchCpu();
  const files = MODELS.map((m) => ({ ...m, path: mlpFile(m.layers) }));
  // The raw loop first, in a child process, before any server runs.
  const loops = new Map<string, LoopResult[]>();
  for (const m of files) loops.set(m.name, await runChild<LoopResult[]>(join(HERE, 'lib/mlp-loop.ts'), { path: m.path, width: WIDTH, threads: THREADS, batches: BATCHES, seconds: 1 }, 120_000));
  const bare = await childLoad('lib/bare-server.ts', ['head10']);

  const rows: Array<Array<string | number>> = [];
  const ratios: Array<Array<string | number>> = [];
  const loopRows: Array<Array<string | number>> = [];
  const app = await benchServer({ cacheBytes: 0 });
  try {
    for (const m of files) {
      const perRequest = await childLoad('lib/per-request-server.ts', [m.path, '1']);
      const full = await fullStack(app, m.name, m.path);
      const loop = loops.get(m.name)!;
      const best = loop.reduce((a, b) => (b.samplesPerSec > a.samplesPerSec ? b : a));
      const limit = Math.min(best.samplesPerSec, bare.rps);
      const limitBy = best.samplesPerSec < bare.rps ? `raw model (batch ${best.batch}, ${best.threads} thr)` : 'bare HTTP + JSON';
      for (const t of THREADS) loopRows.push([m.name, t, ...BATCHES.map((b) => Math.round(loop.find((r) => r.threads === t && r.batch === b)!.samplesPerSec))]);
      rows.push([m.name, 'per-request server (fastify + session.run)', Math.round(perRequest.rps), perRequest.p50, perRequest.p99, perRequest.errors, '—']);
      for (const f of full) rows.push([m.name, `full stack, ${f.replicas} replica${f.replicas > 1 ? 's' : ''}`, Math.round(f.load.rps), f.load.p50, f.load.p99, f.load.errors, f.defaults]);
      for (const f of full) {
        const vsPer = f.load.rps / perRequest.rps;
        const vsLimit = f.load.rps / limit;
        ratios.push([m.name, f.replicas, times(vsPer), m.name === 'large' ? (vsPer >= 4 ? 'yes (≥ 4×)' : 'no (≥ 4×)') : '—',
          `${Math.round(limit).toLocaleString('en-US')} (${limitBy})`, pct(vsLimit), vsLimit >= 0.6 ? 'yes' : 'no']);
      }
    }
  } finally {
    await app.close();
  }
  return {
    name: 'mlp',
    markdown: `## ONNX MLPs (runtime \`onnx\`)

${machine()}. ${cpu.note()}

Two MLPs built in code (Gemm + Relu, dynamic batch): *small* ${MODELS[0]!.layers.join('→')}, *large*
${MODELS[1]!.layers.join('→')}. Every request is \`{"input": [784 floats]}\`, cycling through ${SPEC.kind === 'floats' ? SPEC.count : 0}
pre-generated random bodies (≈ 5 KB each). Load: autocannon, ${CONNECTIONS} connections, ${SECONDS} s after a 2 s warm-up.
*Full stack*: app \`floats\`, SLO 500 ms, cache off, adaptive batching, onnx containers with 1 intra-op
thread, 1 then 2 replicas. *Per-request server*: fastify in a child process, one \`session.run\` on a
[1, 784] tensor per request (1 intra-op thread). *Limit*: the lower of the raw model's best tight loop
(below) and a bare \`node:http\` server in a child process that parses the same JSON into a
Float32Array and answers without a model (**${Math.round(bare.rps).toLocaleString('en-US')} req/s**, p50 ${bare.p50} ms, p99 ${bare.p99} ms).
The 2 cores are shared by the load generator, the server and the containers.

${table(['model', 'server', 'req/s', 'p50 ms', 'p99 ms', 'errors', 'defaults'], rows)}

${table(['model', 'replicas', 'full / per-request', 'target met', 'limit, req/s', 'full / limit', '≥ 60%'], ratios)}

Raw model, samples/s: \`loadOnnxModel(...).predict\` (the container's call) in a tight loop in a child
process with nothing else running, 1 s per cell.

${table(['model', 'intra-op threads', ...BATCHES.map((b) => `batch ${b}`)], loopRows)}
`,
  };
}
