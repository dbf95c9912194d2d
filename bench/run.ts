/**
 * `npm run bench [-- scenario ...]`: runs the benchmark scenarios, prints each table, and writes
 * the figures into docs/performance.md.
 */
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeReport, type Section } from './lib/report.ts';
import { benchAutoscale } from './autoscale.ts';
import { benchBatching } from './batching.ts';
import { benchCache } from './cache.ts';
import { benchFastpath } from './fastpath.ts';
import { benchFrontend } from './frontend.ts';
import { benchMlp } from './mlp.ts';
import { benchSoak } from './soak.ts';
import { benchSpark } from './spark.ts';

const SCENARIOS: Record<string, () => Promise<Section>> = {
  spark: benchSpark,
  frontend: benchFrontend,
  mlp: benchMlp,
  cache: benchCache,
  batching: benchBatching,
  autoscale: benchAutoscale,
  soak: benchSoak,
  fastpath: benchFastpath,
};

const wanted = process.argv.slice(2);
const unknown = wanted.filter((w) => !(w in SCENARIOS));
if (unknown.length) {
  console.error(`unknown scenario(s): ${unknown.join(', ')}; known: ${Object.keys(SCENARIOS).join(', ')}`);
  process.exit(2);
}
const REPORT = join(dirname(fileURLToPath(import.meta.url)), '../docs/performance.md');
for (const name of wanted.length ? wanted : Object.keys(SCENARIOS)) {
  console.error(`bench: ${name} ...`);
  const section = await SCENARIOS[name]!();
  console.log(`${section.markdown}\n`);
  writeReport(REPORT, [section]);
}
console.error(`bench: figures written to ${REPORT}`);
process.exit(0);
