/** Rows/s of SparkPipeline.transform on two real Spark pipelines, for batches of 1 and 100 rows. */
import { fileURLToPath } from 'node:url';
import { loadPipeline } from '../src/spark/index.ts';
import { FIXTURES_PRESENT, PIPELINE_INPUTS, pipelinePath, readTable } from '../test/spark/fixture-csv.ts';

export interface SparkRowsResult {
  pipeline: string;
  rowsPerSec: number;
  batch: number;
}

const PIPELINES = ['RandomForestIris', 'GBTAuto'];
const BATCHES = [1, 100];

export async function benchSparkRows(opts: { seconds?: number } = {}): Promise<SparkRowsResult[]> {
  const seconds = opts.seconds ?? 2;
  if (!FIXTURES_PRESENT) return [];
  const out: SparkRowsResult[] = [];
  for (const name of PIPELINES) {
    const pipeline = await loadPipeline(pipelinePath(name));
    const table = readTable('input', PIPELINE_INPUTS[name]);
    for (const batch of BATCHES) {
      const batches: Array<Array<Record<string, unknown>>> = [];
      for (let i = 0; i + batch <= table.length; i += batch) batches.push(table.slice(i, i + batch));
      // warm-up
      const warmEnd = performance.now() + 200;
      for (let k = 0; performance.now() < warmEnd; k++) pipeline.transform(batches[k % batches.length]);
      let rows = 0;
      let k = 0;
      const start = performance.now();
      const end = start + seconds * 1000;
      let now = start;
      while (now < end) {
        for (let j = 0; j < 20; j++) {
          const b = batches[k++ % batches.length];
          pipeline.transform(b);
          rows += b.length;
        }
        now = performance.now();
      }
      out.push({ pipeline: name, batch, rowsPerSec: Math.round((rows * 1000) / (now - start)) });
    }
  }
  return out;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const results = await benchSparkRows();
  if (results.length === 0) {
    console.log('shared Spark fixtures not found; nothing to measure');
  } else {
    console.log('pipeline            batch   rows/s');
    for (const r of results) {
      console.log(`${r.pipeline.padEnd(20)}${String(r.batch).padStart(5)}${String(r.rowsPerSec).padStart(12)}`);
    }
  }
}
