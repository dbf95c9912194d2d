/** Stages the shared fixtures do not exercise, on small models written in Spark's layout. */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { loadPipeline, type SparkResult } from '../../src/spark/index.ts';
import { hashBytes, hashTerm, nonNegativeMod } from '../../src/spark/murmur3.ts';
import { compileExpr } from '../../src/spark/stages/sql.ts';
import { parseSelect } from '../../src/spark/sql-expression.ts';
import { dense, double, listOf, str, vectorSchema, writePipeline, type StageSpec } from './spark-writer.ts';

const root = mkdtempSync(join(tmpdir(), 'spark-stages-'));
after(() => rmSync(root, { recursive: true, force: true }));

const F = 'org.apache.spark.ml.feature.';
const R = 'org.apache.spark.ml.regression.';

const close = (a: unknown, b: number): void => {
  assert.equal(typeof a, 'number');
  assert.ok(Math.abs((a as number) - b) <= 1e-12 * Math.max(1, Math.abs(b)), `${a} != ${b}`);
};

test('Binarizer -> VectorAssembler -> Normalizer(p=1) -> LinearSVC', async () => {
  const dir = join(root, 'svc');
  writePipeline(dir, [
    { cls: `${F}Binarizer`, uid: 'Binarizer_1', params: { inputCol: 'a', outputCol: 'a_bin', threshold: 0.5 } },
    { cls: `${F}VectorAssembler`, uid: 'VectorAssembler_1', params: { inputCols: ['a_bin', 'b', 'c'], outputCol: 'raw' } },
    { cls: `${F}Normalizer`, uid: 'Normalizer_1', params: { inputCol: 'raw', outputCol: 'norm', p: 1 } },
    {
      cls: 'org.apache.spark.ml.classification.LinearSVCModel',
      uid: 'LinearSVC_1',
      params: { featuresCol: 'norm' },
      defaults: { threshold: 0, labelCol: 'label' },
      data: { data: { schema: [...vectorSchema('coefficients'), double('intercept')], columns: { coefficients: [dense([1, -2, 0.5])], intercept: [0.1] } } },
    },
  ]);
  const p = await loadPipeline(dir);
  assert.deepEqual(p.inputColumns, ['a', 'b', 'c']);
  const [r1, r2] = p.transform([
    { a: 0.7, b: 1, c: 2 }, // [1,1,2]/4 -> margin 0.25 - 0.5 + 0.25 + 0.1 > 0
    { a: 0.2, b: 3, c: 1 }, // [0,3,1]/4 -> margin -1.5 + 0.125 + 0.1 < 0
  ]);
  assert.deepEqual(r1, { prediction: 1 });
  assert.deepEqual(r2, { prediction: 0 });
});

function hashingPipeline(dir: string, sparkVersion: string, coefficients: number[]): void {
  const stages: StageSpec[] = [
    { cls: `${F}Tokenizer`, uid: 'Tokenizer_1', params: { inputCol: 'text', outputCol: 'words' } },
    { cls: `${F}HashingTF`, uid: 'HashingTF_1', params: { inputCol: 'words', outputCol: 'tf', numFeatures: 10 }, defaults: { binary: false } },
    {
      cls: `${R}GeneralizedLinearRegressionModel`,
      uid: 'GLR_1',
      params: { featuresCol: 'tf', family: 'poisson' },
      data: { data: { schema: [double('intercept'), ...vectorSchema('coefficients')], columns: { intercept: [0.1], coefficients: [dense(coefficients)] } } },
    },
  ];
  writePipeline(dir, stages, sparkVersion);
}

test("murmur3 matches Spark's HashingTF (3.x standard, 2.x legacy tail) and the reference vectors", () => {
  // pyspark docs: HashingTF(numFeatures=10) on [a, b, c] -> {5, 7, 8}; numFeatures=5 -> {0, 2, 3}
  assert.deepEqual(['a', 'b', 'c'].map((t) => nonNegativeMod(hashTerm(t, false), 10)).sort(), [5, 7, 8]);
  assert.deepEqual(['a', 'b', 'c'].map((t) => nonNegativeMod(hashTerm(t, false), 5)).sort(), [0, 2, 3]);
  assert.deepEqual(['a', 'b', 'c'].map((t) => nonNegativeMod(hashTerm(t, true), 10)).sort(), [0, 1, 2]);
  assert.equal(hashBytes(new TextEncoder().encode('hello'), 0) >>> 0, 0x248bfa47);
  assert.equal(hashBytes(new TextEncoder().encode('The quick brown fox jumps over the lazy dog'), 0) >>> 0, 0x2e4ff723);
});

test('Tokenizer -> HashingTF -> GeneralizedLinearRegression (poisson, log link)', async () => {
  const coef = [0, 0, 0, 0, 0, 0.1, 0, 0.2, 0.3, 0];
  const dir = join(root, 'glr3');
  hashingPipeline(dir, '3.5.1', coef);
  const p = await loadPipeline(dir);
  assert.deepEqual(p.inputColumns, ['text']);
  const [abc, aa, none, missing] = p.transform([{ text: 'A b C' }, { text: 'a a' }, { text: 'zzz' }, {}]);
  // 3.x hashing: a -> 7, b -> 5, c -> 8
  close((abc as SparkResult).prediction, Math.exp(0.1 + 0.2 + 0.1 + 0.3));
  close((aa as SparkResult).prediction, Math.exp(0.1 + 2 * 0.2));
  assert.ok('prediction' in none);
  assert.deepEqual(missing, { error: 'missing column "text"' });

  const legacyDir = join(root, 'glr2');
  hashingPipeline(legacyDir, '2.4.8', [1, 2, 4, 0, 0, 0, 0, 0, 0, 0]);
  const [legacy] = (await loadPipeline(legacyDir)).transform([{ text: 'a b c' }]);
  close((legacy as SparkResult).prediction, Math.exp(0.1 + 7)); // 2.x hashing: a, b, c -> 0, 1, 2
});

test('SQL expressions: arithmetic, comparisons, IF, CASE, CONCAT, IN, BETWEEN, null semantics', () => {
  const cols = ['a', 'b', 's', 'n'];
  const row = [6, 4, 'x', null];
  const ev = (expr: string): unknown => {
    const stmt = parseSelect(`SELECT *, ${expr} AS out FROM __THIS__`);
    return compileExpr(stmt.items[1].expr!, (name) => cols.indexOf(name))(row as never);
  };
  assert.equal(ev('(a + b) * 2 - a / b'), 18.5);
  assert.equal(ev('a % 4'), 2);
  assert.equal(ev('a DIV 4'), 1);
  assert.equal(ev('a / 0'), null);
  assert.equal(ev('-a + 1'), -5);
  assert.equal(ev('a > b AND NOT b >= a'), true);
  assert.equal(ev('a = 6 OR n = 1'), true);
  assert.equal(ev('n = 1 AND a = 6'), null);
  assert.equal(ev('IF(a < b, 1, 0)'), 0);
  assert.equal(ev("CASE WHEN a > 10 THEN 'big' WHEN a > 5 THEN 'mid' ELSE 'small' END"), 'mid');
  assert.equal(ev("CASE s WHEN 'y' THEN 1 WHEN 'x' THEN 2 END"), 2);
  assert.equal(ev("CONCAT(s, '-', a)"), 'x-6');
  assert.equal(ev("CONCAT(s, n)"), null);
  assert.equal(ev('a IN (1, 6)'), true);
  assert.equal(ev('b BETWEEN 1 AND 3'), false);
  assert.equal(ev('n IS NULL'), true);
  assert.equal(ev('COALESCE(n, b)'), 4);
  assert.equal(ev('CAST(a / b AS INT)'), 1);
  assert.equal(ev("'it''s'"), "it's");
});

test('SQLTransformer -> VectorAssembler -> LinearRegression', async () => {
  const dir = join(root, 'sql');
  writePipeline(dir, [
    {
      cls: `${F}SQLTransformer`,
      uid: 'SQLTransformer_1',
      params: { statement: "SELECT *, IF(kind = 'big', 1.0, 0.0) AS isBig, (w / (h * 2)) AS ratio FROM __THIS__" },
    },
    { cls: `${F}VectorAssembler`, uid: 'VectorAssembler_s', params: { inputCols: ['isBig', 'ratio'], outputCol: 'features', handleInvalid: 'error' } },
    {
      cls: `${R}LinearRegressionModel`,
      uid: 'LinearRegression_s',
      params: { featuresCol: 'features' },
      data: {
        data: {
          schema: [double('intercept'), ...vectorSchema('coefficients'), double('scale')],
          columns: { intercept: [1], coefficients: [dense([10, 2])], scale: [1] },
        },
      },
    },
  ]);
  const p = await loadPipeline(dir);
  assert.deepEqual(p.inputColumns, ['kind', 'w', 'h']);
  const [big, small, zero] = p.transform([
    { kind: 'big', w: 8, h: 2 },
    { kind: 'tiny', w: 3, h: 3 },
    { kind: 'big', w: 1, h: 0 },
  ]);
  assert.deepEqual(big, { prediction: 1 + 10 + 2 * 2 });
  assert.deepEqual(small, { prediction: 1 + 2 * 0.5 });
  assert.ok('error' in zero && /null value in column "ratio"/.test(zero.error)); // division by zero is null
});

test('RegexTokenizer -> StopWordsRemover -> Word2Vec (average of word vectors) -> KMeans', async () => {
  const dir = join(root, 'w2v');
  writePipeline(dir, [
    { cls: `${F}RegexTokenizer`, uid: 'RegexTokenizer_w', params: { inputCol: 'text', outputCol: 'tokens', pattern: '\\W+' } },
    { cls: `${F}StopWordsRemover`, uid: 'StopWordsRemover_w', params: { inputCol: 'tokens', outputCol: 'words', stopWords: ['the'], caseSensitive: false } },
    {
      cls: `${F}Word2VecModel`,
      uid: 'Word2Vec_w',
      params: { inputCol: 'words', outputCol: 'vec', vectorSize: 2 },
      data: {
        data: {
          schema: [str('word'), ...listOf('vector', { type: 'FLOAT', repetition_type: 'REQUIRED' })],
          columns: { word: ['cat', 'dog', 'car'], vector: [[1, 0], [0.5, 0.5], [-1, 2]] },
        },
      },
    },
    {
      cls: 'org.apache.spark.ml.clustering.KMeansModel',
      uid: 'KMeans_w',
      params: { featuresCol: 'vec', k: 2 },
      data: {
        data: {
          schema: [{ name: 'clusterIdx', type: 'INT32', repetition_type: 'REQUIRED' }, ...vectorSchema('clusterCenter')],
          columns: { clusterIdx: [1, 0], clusterCenter: [dense([-1, 2]), dense([0.75, 0.25])] },
        },
      },
    },
  ]);
  const p = await loadPipeline(dir);
  // "The cat, the dog!" -> [cat, dog] -> mean (0.75, 0.25) -> cluster 0; "car" -> (-1, 2) -> cluster 1
  assert.deepEqual(p.transform([{ text: 'The cat, the dog!' }, { text: 'car' }, { text: null }]), [
    { prediction: 0 },
    { prediction: 1 },
    { error: 'null value in column "text" (RegexTokenizer RegexTokenizer_w)' },
  ]);
});
