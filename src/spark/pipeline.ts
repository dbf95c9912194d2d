/** Loading a saved PipelineModel into flat compiled stages, pruning to what the predictor needs, and row evaluation. */
import { NotASparkModelError, RowError, UnsupportedStageError } from './errors.ts';
import { StageMeta } from './meta.ts';
import { PIPELINE_CLASS, STAGE_LOADERS, TUNING_CLASSES } from './registry.ts';
import { Columns, type LoadCtx, type PredictorInfo, type Stage, type Value } from './runtime.ts';
import { ModelFiles } from './source.ts';
import { DenseVector } from './vector.ts';

export type SparkResult = { prediction: string | number; probability?: Record<string, number> };

export interface SparkPipeline {
  inputColumns: string[];
  transform(rows: Array<Record<string, unknown>>): Array<SparkResult | { error: string }>;
}

const sub = (dir: string, name: string): string => (dir ? `${dir}/${name}` : name);

async function loadModel(files: ModelFiles, dir: string, cols: Columns): Promise<Stage[]> {
  const meta = new StageMeta(files.readMetadata(dir));
  const cls = meta.className;
  if (cls === PIPELINE_CLASS) {
    const uids = meta.strArr('stageUids') ?? [];
    const stagesDir = sub(dir, 'stages');
    const byIndex = new Map<number, string>();
    for (const name of files.children(stagesDir)) {
      const m = /^(\d+)_/.exec(name);
      if (m) byIndex.set(Number(m[1]), name);
    }
    const out: Stage[] = [];
    for (let i = 0; i < uids.length; i++) {
      const name = byIndex.get(i);
      if (!name) throw new NotASparkModelError(`${files.origin}: ${stagesDir}/ lacks the folder of stage ${i} (${uids[i]})`);
      out.push(...(await loadModel(files, sub(stagesDir, name), cols)));
    }
    return out;
  }
  if (TUNING_CLASSES.has(cls)) return loadModel(files, sub(dir, 'bestModel'), cols);
  const loader = STAGE_LOADERS[cls];
  if (!loader) throw new UnsupportedStageError(cls);
  const ctx: LoadCtx = {
    files,
    dir,
    meta,
    cols,
    readData: (name = 'data') => files.readParquet(sub(dir, name)),
    loadNested: (name) => loadModel(files, sub(dir, name), cols),
  };
  const r = await loader(ctx);
  return Array.isArray(r) ? r : [r];
}

export async function loadPipeline(pathToDirOrZip: string): Promise<SparkPipeline> {
  const files = ModelFiles.open(pathToDirOrZip);
  const cols = new Columns();
  const stages = await loadModel(files, '', cols);
  return buildPipeline(stages, cols);
}

function buildPipeline(all: Stage[], cols: Columns): SparkPipeline {
  let p = -1;
  for (let i = all.length - 1; i >= 0; i--) {
    if (all[i].predictor) {
      p = i;
      break;
    }
  }
  if (p < 0) {
    throw new UnsupportedStageError(
      all.map((s) => s.className).join(', ') || 'empty pipeline',
      'the pipeline has no prediction stage (classifier, regressor or clustering model)',
    );
  }
  const predictor = all[p].predictor as PredictorInfo;
  // keep only the stages the predictor's inputs depend on (label indexers etc. drop out)
  const needed = new Set(all[p].inputs);
  const keep: Stage[] = [all[p]];
  for (let i = p - 1; i >= 0; i--) {
    const st = all[i];
    if (!st.outputs.some((o) => needed.has(o))) continue;
    keep.unshift(st);
    for (const o of st.outputs) if (!st.inputs.includes(o)) needed.delete(o);
    for (const c of st.inputs) needed.add(c);
  }
  let labels = predictor.labels;
  for (let i = p + 1; i < all.length; i++) {
    const its = all[i].indexToString;
    if (its && its.inputCol === predictor.predictionCol && its.labels) labels = its.labels;
  }
  const produced = new Set<string>();
  const inputColumns: string[] = [];
  for (const st of keep) {
    for (const c of st.inputs) if (!produced.has(c) && !inputColumns.includes(c)) inputColumns.push(c);
    for (const o of st.outputs) produced.add(o);
  }
  return new CompiledPipeline(keep, cols, inputColumns, predictor, labels);
}

class CompiledPipeline implements SparkPipeline {
  private readonly inputSlots: Int32Array;
  private keys: string[] = [];

  constructor(
    private readonly stages: Stage[],
    private readonly cols: Columns,
    readonly inputColumns: string[],
    private readonly predictor: PredictorInfo,
    private readonly labels: string[] | undefined,
  ) {
    this.inputSlots = Int32Array.from(inputColumns, (c) => cols.slot(c));
  }

  transform(rows: Array<Record<string, unknown>>): Array<SparkResult | { error: string }> {
    const slots: Value[] = new Array(this.cols.count).fill(null);
    const out: Array<SparkResult | { error: string }> = new Array(rows.length);
    const { inputColumns, inputSlots, stages } = this;
    const nIn = inputSlots.length;
    const nStages = stages.length;
    for (let r = 0; r < rows.length; r++) {
      const row = rows[r];
      try {
        if (row === null || typeof row !== 'object') throw new RowError('row is not an object');
        for (let k = 0; k < nIn; k++) {
          const v = row[inputColumns[k]];
          slots[inputSlots[k]] = v === undefined ? null : (v as Value);
        }
        for (let i = 0; i < nStages; i++) stages[i].run(slots);
        out[r] = this.result(slots);
      } catch (e) {
        out[r] = { error: this.describeError(e, row) };
      }
    }
    return out;
  }

  private result(slots: Value[]): SparkResult {
    const pi = this.predictor;
    const pred = slots[pi.predictionSlot] as number;
    if (pi.kind !== 'classification') return { prediction: pred };
    const labels = this.labels;
    const res: SparkResult = { prediction: labels && pred < labels.length ? labels[pred] : pred };
    if (pi.probabilitySlot >= 0) {
      const prob = (slots[pi.probabilitySlot] as DenseVector).values;
      if (this.keys.length !== prob.length) {
        this.keys = Array.from(prob, (_, i) => (labels && i < labels.length ? labels[i] : String(i)));
      }
      const obj: Record<string, number> = {};
      for (let i = 0; i < prob.length; i++) obj[this.keys[i]] = prob[i];
      res.probability = obj;
    }
    return res;
  }

  private describeError(e: unknown, row: unknown): string {
    if (e instanceof RowError) {
      const col = e.column;
      if (col && this.inputColumns.includes(col) && row && typeof row === 'object' && !(col in row)) {
        return `missing column "${col}"`;
      }
      return e.message;
    }
    return e instanceof Error ? e.message : String(e);
  }
}
