/**
 * Frontend overhead: a no-op js model through the full stack (HTTP → queue → RPC → container →
 * back) versus a bare node:http server in a child process that parses the same JSON and answers
 * the same shape in-process. Throughput at 64 connections; latency at concurrency 1.
 */
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BODIES, makeBodyFactory, type BodySpec } from './lib/bodies.ts';
import { startChildServer } from './lib/child.ts';
import { checkedQuery, deploy, jsModelDir, metricTotal, ms, pct, watchCpu } from './lib/fixtures.ts';
import { probeLatency, type ProbeResult } from './lib/latency.ts';
import { runLoad, type LoadResult } from './lib/load.ts';
import { machine, table, type Section } from './lib/report.ts';
import { benchServer } from './lib/server.ts';

const HERE = dirname(fileURLToPath(import.meta.url));
const CONNECTIONS = 64;
const SECONDS = 10;
const SPEC: BodySpec = { kind: 'unique', width: 4 };
const NOOP = `export function predict(inputs) { return inputs.map(() => 'ok'); }\n`;

interface Measured { load: LoadResult; probe: ProbeResult }

async function measure(url: string): Promise<Measured> {
  await runLoad({ url, connections: CONNECTIONS, durationSec: 2, generator: BODIES, generatorArg: SPEC }); // warm-up
  const load = await runLoad({ url, connections: CONNECTIONS, durationSec: SECONDS, generator: BODIES, generatorArg: SPEC });
  const probe = await probeLatency(url, SPEC, SECONDS);
  return { load, probe };
}

export async function benchFrontend(): Promise<Section> {
  const cpu = watchCpu();
  const body = makeBodyFactory(SPEC)(0);
  const bare = await startChildServer(join(HERE, 'lib/bare-server.ts'), ['ok']);
  let bareM: Measured;
  try {
    await checkedQuery(`${bare.url}/noop/predict`, body);
    bareM = await measure(`${bare.url}/noop/predict`);
  } finally {
    await bare.stop();
  }

  const app = await benchServer({ cacheBytes: 0 });
  let fullM: Measured;
  let defaults: number;
  try {
    const url = await deploy(app, { name: 'noop', inputType: 'doubles', sloMicros: 1_000_000, runtime: 'js', path: jsModelDir(NOOP) });
    await checkedQuery(url, body);
    const before = await metricTotal(app.queryUrl, 'clipper_app_default_outputs_total');
    fullM = await measure(url);
    defaults = (await metricTotal(app.queryUrl, 'clipper_app_default_outputs_total')) - before;
  } finally {
    await app.close();
  }

  const row = (name: string, m: Measured, d: number | string) => [
    name, Math.round(m.load.rps), m.load.p50, m.load.p99, ms(m.probe.p50), ms(m.probe.p99), Math.round(m.probe.rps), m.load.errors + m.probe.errors, d,
  ];
  const ratio = fullM.load.rps / bareM.load.rps;
  const added = fullM.probe.p50 - bareM.probe.p50;
  const addedP99 = fullM.probe.p99 - bareM.probe.p99;
  return {
    name: 'frontend',
    markdown: `## Frontend overhead (no-op model)

${machine()}. ${cpu.note()}

*Full stack*: app \`noop\` (input_type \`doubles\`, SLO 1 s, cache off) linked to a js model whose
\`predict\` answers \`"ok"\` per input, one replica: HTTP → parse → queue → RPC → container → back.
*Bare*: a \`node:http\` server in a child process that parses the same JSON body and answers the same
shape \`{"query_id","output","default","models"}\` in-process. Every request carries a different
4-number input. Throughput and its latency: autocannon, ${CONNECTIONS} connections, ${SECONDS} s after a 2 s
warm-up (whole milliseconds). Latency at concurrency 1: one keep-alive connection, one request at a
time for ${SECONDS} s, timed with hrtime in its own process. The 2 cores are shared by the load generator,
the server and the model container (the bare server has no container, so it gets more CPU).

${table(['server', `req/s (${CONNECTIONS} conn)`, 'p50 ms', 'p99 ms', 'p50, conc. 1', 'p99, conc. 1', 'req/s, conc. 1', 'errors', 'defaults'], [
  row('bare node:http', bareM, '—'),
  row('full stack', fullM, defaults),
])}

${table(['ratio', 'measured', 'target', 'met'], [
  ['throughput full / bare', pct(ratio), '≥ 50%', ratio >= 0.5 ? 'yes' : 'no'],
  ['added p50 at concurrency 1', ms(added), '≤ 0.50 ms', added <= 0.5 ? 'yes' : 'no'],
  ['added p99 at concurrency 1', ms(addedP99), '—', '—'],
])}
`,
  };
}
