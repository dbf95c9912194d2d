/** Spark runtime: rows/s of the evaluator in-process, and through the full stack (HTTP → RPC → container). */
import { FIXTURES_PRESENT, PIPELINE_INPUTS, pipelinePath, readTable } from '../test/spark/fixture-csv.ts';
import { runLoad } from './lib/load.ts';
import { machine, table, type Section } from './lib/report.ts';
import { admin, benchServer } from './lib/server.ts';
import { benchSparkRows } from './spark-rows.ts';

const BATCH = 100;

export async function benchSpark(): Promise<Section> {
  if (!FIXTURES_PRESENT) return { name: 'spark', markdown: '## Spark pipelines\n\nSkipped: the shared Spark fixtures are absent.' };
  const inProcess = await benchSparkRows({ seconds: 3 });
  const rows: Array<Array<string | number>> = [];
  const app = await benchServer();
  try {
    for (const name of ['RandomForestIris', 'GBTAuto']) {
      const model = name.toLowerCase();
      await admin(app, 'add_app', { name: model, input_type: 'strings', latency_slo_micros: 5_000_000 });
      await admin(app, 'add_model', { model_name: model, model_version: '1', input_type: 'strings', runtime: 'spark', model_data_path: pipelinePath(name) });
      await admin(app, 'add_model_links', { app_name: model, model_names: [model] });
      const table_ = readTable('input', PIPELINE_INPUTS[name]!);
      const bodies: string[] = [];
      for (let i = 0; i + BATCH <= table_.length; i += BATCH) bodies.push(JSON.stringify({ input_batch: table_.slice(i, i + BATCH) }));
      const load = await runLoad({ url: `${app.queryUrl}/${model}/predict`, connections: 4, durationSec: 10, bodies });
      const stack = Math.round(load.rps * BATCH);
      const r1 = inProcess.find((r) => r.pipeline === name && r.batch === 1)!.rowsPerSec;
      const r100 = inProcess.find((r) => r.pipeline === name && r.batch === 100)!.rowsPerSec;
      rows.push([name, r1, r100, stack, `${((stack / r100) * 100).toFixed(1)}%`, load.errors]);
    }
  } finally {
    await app.close();
  }
  return {
    name: 'spark',
    markdown: `## Spark pipelines (runtime \`spark\`)

${machine()}

Rows per second. *In-process* is \`SparkPipeline.transform\` in a tight loop (the pipeline read once).
*Full stack* sends \`input_batch\` requests of ${BATCH} rows (JSON) over HTTP from 4 connections: parse, route,
queue, RPC to the container, evaluate, answer — with the load generator on the same 2 cores.

${table(['pipeline', 'in-process, batch 1', 'in-process, batch 100', 'full stack, 100-row requests', 'full stack / in-process', 'errors'], rows)}
`,
  };
}
