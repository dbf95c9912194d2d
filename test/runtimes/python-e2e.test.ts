/** The python runtime end to end: a scikit-learn model trained in the test, errors, refusals. */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { PYTHON } from '../../src/manager/launch.ts';
import { startTestServer, tempDir, type TestServer } from '../helpers/server.ts';

function hasSklearn(): boolean {
  if (!existsSync(PYTHON)) return false;
  try {
    execFileSync(PYTHON, ['-c', 'import sklearn, zmq, numpy']);
    return true;
  } catch {
    return false;
  }
}
const SKIP = hasSklearn() ? false : `${PYTHON} with sklearn, zmq and numpy is not installed (run scripts/setup.sh)`;

const TRAIN = `
import json, pickle, sys
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
X, y = load_digits(return_X_y=True)
clf = LogisticRegression(max_iter=2000).fit(X[:1500], y[:1500])
pickle.dump(clf, open(sys.argv[1] + "/clf.pkl", "wb"))
test = X[1500:1560]
json.dump({"inputs": test.tolist(), "expected": clf.predict(test).tolist(), "proba": clf.predict_proba(test[:3]).tolist()}, open(sys.argv[1] + "/expected.json", "w"))
`;

const MODEL = `
import os, pickle
import numpy as np
with open(os.path.join(os.path.dirname(__file__), "clf.pkl"), "rb") as f:
    CLF = pickle.load(f)

def predict(inputs):
    return [int(p) for p in CLF.predict(np.stack(inputs))]
`;

const FLAKY = `
def predict(inputs):
    if any(x == "boom" for x in inputs):
        raise ValueError("cannot handle boom")
    if any(x == "short" for x in inputs):
        return ["only one"] * (len(inputs) + 1)
    return [x[::-1] for x in inputs]
`;

describe('python runtime', { skip: SKIP }, () => {
  let s: TestServer;
  before(async () => {
    s = await startTestServer();
  });
  after(() => s.close());

  it('a scikit-learn model gives through the query API the same predictions sklearn gives directly', async () => {
    const dir = tempDir('clipper-sklearn-');
    execFileSync(PYTHON, ['-c', TRAIN, dir]);
    writeFileSync(join(dir, 'model.py'), MODEL);
    const { inputs, expected } = JSON.parse(readFileSync(join(dir, 'expected.json'), 'utf8')) as { inputs: number[][]; expected: number[] };
    await s.admin('add_app', { name: 'digits', input_type: 'doubles', default_output: '-1', latency_slo_micros: 10_000_000 });
    const dep = await s.admin('add_model', { model_name: 'digits-lr', model_version: '1', input_type: 'doubles', runtime: 'python', model_data_path: dir });
    assert.equal(dep.status, 200, JSON.stringify(dep.body));
    assert.equal(dep.body.ready, true);
    await s.admin('add_model_links', { app_name: 'digits', model_names: ['digits-lr'] });

    const batch = await s.predict('digits', { input_batch: inputs });
    assert.deepEqual(batch.body.batch_predictions.map((p: any) => p.output), expected);
    const single = await s.predict('digits', { input: inputs[7] });
    assert.equal(single.body.output, expected[7]);
    assert.deepEqual(single.body.models, ['digits-lr:1']);
  });

  it('a model that raises or returns the wrong count: a clear reason, the cause in the log, and it keeps serving', async () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'model.py'), FLAKY);
    await s.admin('add_app', { name: 'flaky', input_type: 'strings', default_output: 'DEFAULT', latency_slo_micros: 10_000_000 });
    await s.admin('add_model', { model_name: 'flaky', model_version: '1', input_type: 'strings', runtime: 'python', model_data_path: dir });
    await s.admin('add_model_links', { app_name: 'flaky', model_names: ['flaky'] });

    const boom = await s.predict('flaky', { input: 'boom' });
    assert.equal(boom.body.default, true);
    assert.equal(boom.body.output, 'DEFAULT');
    assert.match(boom.body.default_explanation, /ValueError: cannot handle boom/);
    const short = await s.predict('flaky', { input: 'short' });
    assert.match(short.body.default_explanation, /2 outputs for 1 input/);
    assert.equal((await s.predict('flaky', { input: 'abc' })).body.output, 'cba', 'the replica keeps serving');

    const logs = await s.admin('get_replica_logs', { model_name: 'flaky', tail: 200 });
    const text = logs.body.replicas[0].lines.join('\n');
    assert.match(text, /ValueError: cannot handle boom/);
    assert.match(text, /Traceback/);
  });

  it('refuses a Python file with a syntax error at deploy time, saying where', async () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'model.py'), 'def predict(inputs)\n    return inputs\n');
    const r = await s.admin('add_model', { model_name: 'broken-py', model_version: '1', input_type: 'strings', runtime: 'python', model_data_path: dir });
    assert.equal(r.status, 400);
    assert.equal(r.body.error, 'ARTIFACT_INVALID');
    assert.match(r.body.cause, /python artifact refused: .*(SyntaxError|syntax).*line 1/is);
    assert.equal((await s.admin('get_model', { model_name: 'broken-py' })).status, 404);
  });
});
