/** The nine real Spark 4.1 pipelines in the shared fixtures, row by row against Spark's own outputs. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadPipeline, type SparkResult } from '../../src/spark/index.ts';
import { FIXTURES_PRESENT, FIXTURE_DIR, PIPELINE_INPUTS, pipelinePath, readTable } from './fixture-csv.ts';

const SKIP = FIXTURES_PRESENT ? false : `shared Spark fixtures not found at ${FIXTURE_DIR}; conformance tests skipped`;
const REL = 1e-9;
const ABS = 1e-12;

function relErr(a: number, b: number): number {
  const d = Math.abs(a - b);
  return d === 0 ? 0 : d / Math.max(Math.abs(a), Math.abs(b));
}

for (const [name, input] of Object.entries(PIPELINE_INPUTS)) {
  test(`Spark fixture ${name} matches Spark's outputs`, { skip: SKIP }, async (t) => {
    const pipeline = await loadPipeline(pipelinePath(name));
    const rows = readTable('input', input);
    const expected = readTable('expected', name);
    assert.equal(rows.length, expected.length, 'input and expected row counts');
    const results = pipeline.transform(rows);
    assert.equal(results.length, rows.length);
    let maxRel = 0;
    for (let i = 0; i < rows.length; i++) {
      const got = results[i];
      if ('error' in got) assert.fail(`row ${i}: ${got.error}`);
      const res = got as SparkResult;
      for (const [col, want] of Object.entries(expected[i])) {
        const pm = /^probability\((.*)\)$/.exec(col);
        const actual = pm ? res.probability?.[pm[1]] : res.prediction;
        if (typeof want === 'number' && typeof actual === 'number') {
          const e = relErr(actual, want);
          if (Math.max(Math.abs(actual), Math.abs(want)) > ABS) maxRel = Math.max(maxRel, e);
          assert.ok(e <= REL || Math.abs(actual - want) <= ABS, `row ${i} ${col}: got ${actual}, want ${want} (relative error ${e})`);
        } else {
          assert.equal(String(actual), String(want), `row ${i} ${col}`);
        }
      }
    }
    t.diagnostic(`${name}: ${rows.length} rows, inputs [${pipeline.inputColumns.join(', ')}], max relative error ${maxRel}`);
  });
}
