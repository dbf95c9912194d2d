/** Spark format variants, zips, and load-time refusals, on small models written in Spark's layout. */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { after, test } from 'node:test';
import { zipSync } from 'fflate';
import { loadPipeline, NotASparkModelError, UnsupportedStageError } from '../../src/spark/index.ts';
import {
  listOfStringLists,
  listOfStrings,
  nodeSchema,
  treeColumns,
  int32,
  str,
  double,
  writePipeline,
  type StageSpec,
  type TestNode,
} from './spark-writer.ts';

const root = mkdtempSync(join(tmpdir(), 'spark-formats-'));
after(() => rmSync(root, { recursive: true, force: true }));

const F = 'org.apache.spark.ml.feature.';

function labelIndexer(uid: string, input: string, output: string, labels: string[], legacy: boolean, mode = 'error'): StageSpec {
  return {
    cls: `${F}StringIndexerModel`,
    uid,
    params: { inputCol: input, outputCol: output, handleInvalid: mode },
    data: legacy
      ? { data: { schema: listOfStrings('labels'), columns: { labels: [labels] } } }
      : { data: { schema: listOfStringLists('labelsArray'), columns: { labelsArray: [[labels]] } } },
  };
}

// root: categorical split on feature 0 (colorIdx in {0, 2} goes left), then x <= 0.5
const TREE: TestNode[] = [
  { id: 0, prediction: 0, stats: [6, 6], left: 1, right: 2, feature: 0, categories: [0, 2], numCategories: 4 },
  { id: 1, prediction: 0, stats: [3, 1] },
  { id: 2, prediction: 1, stats: [3, 5], left: 3, right: 4, feature: 1, threshold: 0.5 },
  { id: 3, prediction: 1, stats: [0, 4] },
  { id: 4, prediction: 0, stats: [1, 1] },
];

function treePipeline(dir: string, sparkVersion: string, legacy: boolean): void {
  writePipeline(
    dir,
    [
      labelIndexer('StringIndexer_label', 'answer', 'label', ['no', 'yes'], legacy),
      labelIndexer('StringIndexer_color', 'color', 'colorIdx', ['red', 'green', 'blue'], legacy, 'keep'),
      { cls: `${F}VectorAssembler`, uid: 'VectorAssembler_1', params: { inputCols: ['colorIdx', 'x'], outputCol: 'features' } },
      {
        cls: 'org.apache.spark.ml.classification.DecisionTreeClassificationModel',
        uid: 'DecisionTreeClassifier_1',
        params: { featuresCol: 'features', labelCol: 'label' },
        extra: { numFeatures: 2, numClasses: 2 },
        data: { data: { schema: nodeSchema(null, !legacy), columns: treeColumns(TREE, !legacy) } },
      },
    ],
    sparkVersion,
  );
}

const ROWS = [
  { color: 'red', x: 1 },
  { color: 'green', x: 0.2 },
  { color: 'purple', x: 0.9 },
  { color: 'red' },
  { color: 'blue', x: null },
];

function checkTreeResults(results: ReturnType<Awaited<ReturnType<typeof loadPipeline>>['transform']>): void {
  assert.deepEqual(results[0], { prediction: 'no', probability: { no: 0.75, yes: 0.25 } });
  assert.deepEqual(results[1], { prediction: 'yes', probability: { no: 0, yes: 1 } });
  // unseen color -> handleInvalid=keep index 3 -> right branch; tie -> first class
  assert.deepEqual(results[2], { prediction: 'no', probability: { no: 0.5, yes: 0.5 } });
  assert.deepEqual(results[3], { error: 'missing column "x"' });
  assert.ok('error' in results[4] && /null value in column "x"/.test(results[4].error), JSON.stringify(results[4]));
}

test('Spark 2.4 layout: StringIndexer `labels`, tree nodes without rawCount', async () => {
  const dir = join(root, 'tree24');
  treePipeline(dir, '2.4.8', true);
  const p = await loadPipeline(dir);
  assert.deepEqual(p.inputColumns, ['color', 'x']); // the label indexer is not needed to predict
  checkTreeResults(p.transform(ROWS));
});

test('Spark 3.x layout: StringIndexer `labelsArray`, tree nodes with rawCount', async () => {
  const dir = join(root, 'tree35');
  treePipeline(dir, '3.5.1', false);
  const p = await loadPipeline(dir);
  checkTreeResults(p.transform(ROWS));
});

function zipDir(dir: string, prefix: string): Uint8Array {
  const files: Record<string, Uint8Array> = {};
  const walk = (d: string): void => {
    for (const name of readdirSync(d)) {
      const abs = join(d, name);
      if (statSync(abs).isDirectory()) walk(abs);
      else files[prefix + relative(dir, abs).split('\\').join('/')] = readFileSync(abs);
    }
  };
  walk(dir);
  return zipSync(files);
}

test('a zip of the saved directory loads, with or without a top folder', async () => {
  const dir = join(root, 'tree-zip');
  treePipeline(dir, '3.5.1', false);
  for (const prefix of ['', 'model/']) {
    const zip = join(root, `model-${prefix ? 'nested' : 'flat'}.zip`);
    writeFileSync(zip, zipDir(dir, prefix));
    checkTreeResults((await loadPipeline(zip)).transform(ROWS));
  }
});

test('GBT classifier with named treesMetadata columns (Spark 2.x) and weighted trees', async () => {
  const dir = join(root, 'gbt');
  const stump = (left: number, right: number, thr: number): TestNode[] => [
    { id: 0, prediction: 0, stats: [4, 0, 0], left: 1, right: 2, feature: 0, threshold: thr },
    { id: 1, prediction: left, stats: [2, 0, 0] },
    { id: 2, prediction: right, stats: [2, 0, 0] },
  ];
  const trees = [stump(-1, 1, 0), stump(-0.5, 2, 1)];
  const nodeCols = trees.flatMap((t) => t.map((n) => treeColumns([n], false)));
  const dataCols: Record<string, unknown[]> = {
    treeID: trees.flatMap((t, i) => t.map(() => i)),
    nodeData: nodeCols.map((c) => Object.fromEntries(Object.entries(c).map(([k, v]) => [k, v[0]]))),
  };
  writePipeline(
    dir,
    [
      labelIndexer('StringIndexer_y', 'y', 'label', ['neg', 'pos'], true),
      { cls: `${F}VectorAssembler`, uid: 'VectorAssembler_g', params: { inputCols: ['a'], outputCol: 'features' } },
      {
        cls: 'org.apache.spark.ml.classification.GBTClassificationModel',
        uid: 'GBTClassifier_1',
        params: { featuresCol: 'features', labelCol: 'label' },
        extra: { numFeatures: 1, numTrees: 2 },
        data: {
          data: { schema: [int32('treeID'), ...nodeSchema('nodeData', false)], columns: dataCols },
          treesMetadata: {
            schema: [int32('treeID'), str('metadata'), double('weights')],
            columns: { treeID: [0, 1], metadata: ['{}', '{}'], weights: [1, 0.1] },
          },
        },
      },
    ],
    '2.4.8',
  );
  const p = await loadPipeline(dir);
  const [lo, mid, hi] = p.transform([{ a: -3 }, { a: 0.5 }, { a: 7 }]) as Array<{ prediction: string; probability: Record<string, number> }>;
  const check = (r: typeof lo, margin: number): void => {
    const p0 = 1 / (1 + Math.exp(2 * margin));
    assert.equal(r.prediction, margin > 0 ? 'pos' : 'neg');
    assert.ok(Math.abs(r.probability.neg - p0) < 1e-15);
    assert.ok(Math.abs(r.probability.pos - (1 - p0)) < 1e-15);
  };
  check(lo, -1 + 0.1 * -0.5);
  check(mid, 1 + 0.1 * -0.5);
  check(hi, 1 + 0.1 * 2);
});

test('an unsupported stage is refused at load time, naming its Spark class', async () => {
  const dir = join(root, 'unsupported');
  writePipeline(dir, [
    { cls: `${F}VectorAssembler`, uid: 'VectorAssembler_u', params: { inputCols: ['a'], outputCol: 'features' } },
    { cls: 'org.apache.spark.ml.feature.Foo', uid: 'Foo_1', params: { inputCol: 'features' } },
  ]);
  await assert.rejects(loadPipeline(dir), (e: unknown) => {
    assert.ok(e instanceof UnsupportedStageError);
    assert.match(e.message, /org\.apache\.spark\.ml\.feature\.Foo/);
    return true;
  });
});

test('paths that are not Spark models are refused with NotASparkModelError saying why', async () => {
  const empty = join(root, 'empty');
  mkdirSync(empty);
  const other = join(root, 'other');
  mkdirSync(join(other, 'metadata'), { recursive: true });
  writeFileSync(join(other, 'metadata', 'part-00000'), 'hello, not json\n');
  const notZip = join(root, 'notes.txt');
  writeFileSync(notZip, 'just text');
  const foreignZip = join(root, 'foreign.zip');
  writeFileSync(foreignZip, zipSync({ 'readme.md': new TextEncoder().encode('# hi') }));
  const cases: Array<[string, RegExp]> = [
    [empty, /no metadata\/part-\* file/],
    [other, /not Spark model metadata/],
    [notZip, /neither a directory nor a zip/],
    [foreignZip, /zip archive but not of a saved Spark ML model/],
    [join(root, 'does-not-exist'), /no such file or directory/],
  ];
  for (const [path, why] of cases) {
    await assert.rejects(loadPipeline(path), (e: unknown) => {
      assert.ok(e instanceof NotASparkModelError, `${path}: ${String(e)}`);
      assert.match(e.message, why);
      return true;
    });
  }
});

test('CrossValidatorModel and TrainValidationSplitModel evaluate their bestModel', async () => {
  for (const cls of ['CrossValidatorModel', 'TrainValidationSplitModel']) {
    const dir = join(root, cls);
    mkdirSync(join(dir, 'metadata'), { recursive: true });
    writeFileSync(
      join(dir, 'metadata', 'part-00000'),
      `${JSON.stringify({ class: `org.apache.spark.ml.tuning.${cls}`, sparkVersion: '3.5.1', uid: `${cls}_1`, paramMap: {}, avgMetrics: [0.5] })}\n`,
    );
    treePipeline(join(dir, 'bestModel'), '3.5.1', false);
    checkTreeResults((await loadPipeline(dir)).transform(ROWS));
  }
});
