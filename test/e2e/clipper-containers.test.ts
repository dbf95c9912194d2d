/**
 * Clipper's own Python containers, unmodified, served through the `command` runtime on a loopback
 * server (plain v3): Clipper's `rpc.py` with its `noop_container.py` and
 * `python_closure_container.py` (../shared/fixtures/clipper, see its README), queried with single
 * inputs and batches of every input type.
 *
 * What the test supplies around the unmodified files, as Clipper's py-rpc image did:
 * - The image's layout: rpc.py and the containers copied byte for byte (checked) into one folder
 *   beside a `metrics_config.yaml`, which rpc.py reads from its own folder at start.
 * - A stand-in for `clipper_admin.metrics`. Clipper's copy in the fixture cannot be imported as
 *   shipped (it imports `clipper_admin.version` and `clipper_admin.exceptions`, which the fixture
 *   lacks) and would start `redis-server` and a Prometheus server on port 1390 for the whole
 *   machine; rpc.py only calls its add_metric/report_metric.
 * - `python` on PATH: rpc.py starts the metrics server with `python -m ...`.
 * - For the closure container, a `func.pkl` made with Debian's python3-cloudpickle.
 * rpc.py writes /model_is_ready.check, so the test needs a writable `/` (it runs as root here).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { accessSync, constants, copyFileSync, existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { startTestServer, tempDir, type TestServer } from '../helpers/server.ts';

const FIXTURE = join(dirname(fileURLToPath(import.meta.url)), '../../../shared/fixtures/clipper');
const PY = '/usr/bin/python3';
const CLIPPER_FILES = ['rpc.py', 'noop_container.py', 'python_closure_container.py'];

function pythonHas(modules: string): boolean {
  return existsSync(PY) && spawnSync(PY, ['-c', `import ${modules}`], { stdio: 'ignore' }).status === 0;
}
function skipReason(): string | false {
  if (!existsSync(join(FIXTURE, 'containers/python/rpc.py'))) return `Clipper's containers are not at ${FIXTURE}`;
  if (!pythonHas('zmq, numpy, yaml, prometheus_client')) return 'needs python3-zmq, python3-numpy, python3-yaml and python3-prometheus-client (Debian) under /usr/bin/python3';
  try {
    accessSync('/', constants.W_OK);
  } catch {
    return "Clipper's rpc.py writes /model_is_ready.check: run as a user who may write /";
  }
  return false;
}
const skip = skipReason();
const skipClosure = skip || (pythonHas('cloudpickle') ? false : 'the closure container needs python3-cloudpickle (Debian)');

const METRICS_CONFIG = `Model Container:
  prefix: mc
  pred_total: {type: Counter, description: Total number of predictions}
  recv_time_ms: {type: Histogram, description: Time to receive a request, bucket: [1, 5, 10, 50]}
  parse_time_ms: {type: Histogram, description: Time to parse a request, bucket: [1, 5, 10, 50]}
  handle_time_ms: {type: Histogram, description: Time to predict, bucket: [1, 5, 10, 50]}
  end_to_end_latency_ms: {type: Histogram, description: Whole request, bucket: [1, 5, 10, 50]}
`;
const METRICS_STANDIN = `"""Stand-in for clipper_admin.metrics: names must be added before they are reported, as in Clipper."""
_added = set()

def add_metric(name, metric_type, description, buckets=None):
    _added.add(name)

def report_metric(name, val):
    if name not in _added:
        raise KeyError("%s has not been added" % name)
    float(val)
`;
/** The closure: describes each input as the container received it (dtype and values, or text). */
const MAKE_CLOSURE = `
import json, sys, cloudpickle
def describe(inputs):
    out = []
    for x in inputs:
        if isinstance(x, bytes):
            out.append(json.dumps({"text": x.decode("utf-8")}))
        else:
            out.append(json.dumps({"dtype": str(x.dtype), "values": x.tolist()}))
    return out
with open(sys.argv[1], "wb") as f:
    cloudpickle.dump(describe, f)
`;

/** Builds the image folder: unmodified Clipper files, the config and the metrics stand-in. */
function buildImage(): string {
  const img = tempDir('clipper-image-');
  const container = join(img, 'container');
  mkdirSync(container);
  for (const f of CLIPPER_FILES) {
    copyFileSync(join(FIXTURE, 'containers/python', f), join(container, f));
    const sha = (p: string) => createHash('sha256').update(readFileSync(p)).digest('hex');
    assert.equal(sha(join(container, f)), sha(join(FIXTURE, 'containers/python', f)), `${f} is Clipper's, unmodified`);
  }
  writeFileSync(join(container, 'metrics_config.yaml'), METRICS_CONFIG);
  mkdirSync(join(img, 'site/clipper_admin/metrics'), { recursive: true });
  writeFileSync(join(img, 'site/clipper_admin/__init__.py'), '');
  writeFileSync(join(img, 'site/clipper_admin/metrics/__init__.py'), METRICS_STANDIN);
  writeFileSync(join(img, 'site/clipper_admin/metrics/server.py'), '"""Clipper runs this as its metrics process; the stand-in has nothing to serve."""\n');
  mkdirSync(join(img, 'bin'));
  symlinkSync(PY, join(img, 'bin/python'));
  return img;
}

function command(img: string, script: string): string {
  const env = `PATH=${join(img, 'bin')}:/usr/bin:/bin PYTHONPATH=${join(img, 'container')}:${join(img, 'site')}`;
  return `env ${env} ${PY} ${JSON.stringify(join(img, 'container', script))}`;
}

const TYPES = ['bytes', 'ints', 'floats', 'doubles', 'strings'] as const;
type Type = (typeof TYPES)[number];
/** Per type: one single input, a batch of equal-length inputs and one of unequal lengths, and what the container decodes. */
const INPUTS: Record<Type, { single: unknown; same: unknown[]; mixed: unknown[]; dtype?: string; decoded: (x: any) => unknown }> = {
  bytes: { single: 'AQID', same: ['AQI=', '/wA='], mixed: ['AQID', 'BA=='], dtype: 'int8', decoded: (x: string) => [...Buffer.from(x, 'base64')].map((b) => (b << 24) >> 24) },
  ints: { single: [1, -2, 3], same: [[1, 2], [3, 4]], mixed: [[5], [6, 7, 8]], dtype: 'int32', decoded: (x) => x },
  floats: { single: [0.5, -1.25], same: [[1.5, 2], [3, 4.5]], mixed: [[0.25], [8, 16, 32]], dtype: 'float32', decoded: (x) => x },
  doubles: { single: [0.1, 2.5], same: [[1, 2], [3, 4]], mixed: [[0.3], [1e300, -7]], dtype: 'float64', decoded: (x) => x },
  strings: { single: 'hello', same: ['ab', 'cd'], mixed: ['a', 'héllo wörld'], decoded: (x) => x },
};

async function deployAll(s: TestServer, kind: string, img: string, script: string, modelDataPath?: string): Promise<void> {
  const results = await Promise.all(TYPES.map(async (t) => {
    const name = `${kind}-${t}`;
    await s.admin('add_app', { name, input_type: t, default_output: 'DEFAULT', latency_slo_micros: 10_000_000 });
    const r = await s.admin('add_model', {
      model_name: name, model_version: '1', input_type: t, runtime: 'command', container_name: command(img, script),
      ...(modelDataPath ? { model_data_path: modelDataPath } : {}),
    });
    await s.admin('add_model_links', { app_name: name, model_names: [name] });
    return [name, r] as const;
  }));
  for (const [name, r] of results) {
    assert.equal(r.status, 200, `${name}: ${JSON.stringify(r.body)}`);
    assert.equal(r.body.ready, true, `${name} registered`);
  }
}

describe("Clipper's own Python containers, unmodified, through the command runtime", { skip }, () => {
  let s: TestServer;
  let img: string;
  before(async () => {
    img = buildImage();
    s = await startTestServer({ allowCommandRuntime: true, artifactRoot: tmpdir(), readyTimeoutMs: 60_000 });
  });
  after(() => s?.close());

  it('noop_container.py answers single inputs and batches of every input type', async () => {
    await deployAll(s, 'noop', img, 'noop_container.py');
    for (const t of TYPES) {
      const one = await s.predict(`noop-${t}`, { input: INPUTS[t].single });
      assert.equal(one.status, 200, `${t}: ${JSON.stringify(one.body)}`);
      assert.deepEqual([one.body.output, one.body.default], [1, false], `${t}: the noop's "1.0"`);
      for (const batch of [INPUTS[t].same, INPUTS[t].mixed]) {
        const r = await s.predict(`noop-${t}`, { input_batch: batch });
        assert.equal(r.status, 200, `${t}: ${JSON.stringify(r.body)}`);
        assert.deepEqual(r.body.batch_predictions.map((p: any) => [p.output, p.default]), batch.map(() => [1, false]), t);
      }
    }
    const replicas = s.app.rpc.readyReplicas().filter((r) => r.modelName.startsWith('noop-'));
    assert.equal(replicas.length, 5);
    assert.ok(replicas.every((r) => !r.authenticated && r.extensions.size === 0), 'plain v3 registrations');
  });

  it('python_closure_container.py runs a cloudpickled function on every input type', { skip: skipClosure }, async () => {
    const model = tempDir('clipper-closure-');
    mkdirSync(join(model, 'modules'));
    writeFileSync(join(model, 'modules/README'), 'modules the closure imports (none)\n');
    const made = spawnSync(PY, ['-c', MAKE_CLOSURE, join(model, 'func.pkl')], { encoding: 'utf8' });
    assert.equal(made.status, 0, made.stderr);
    await deployAll(s, 'closure', img, 'python_closure_container.py', model);
    for (const t of TYPES) {
      const { dtype, decoded } = INPUTS[t];
      const want = (x: unknown) => (dtype ? { dtype, values: decoded(x) } : { text: decoded(x) });
      const one = await s.predict(`closure-${t}`, { input: INPUTS[t].single });
      assert.equal(one.status, 200, `${t}: ${JSON.stringify(one.body)}`);
      assert.deepEqual(one.body.output, want(INPUTS[t].single), t);
      for (const batch of [INPUTS[t].same, INPUTS[t].mixed]) {
        const r = await s.predict(`closure-${t}`, { input_batch: batch });
        assert.equal(r.status, 200, `${t}: ${JSON.stringify(r.body)}`);
        assert.deepEqual(r.body.batch_predictions.map((p: any) => p.output), batch.map(want), `${t} batch`);
      }
    }
  });

  it('idle Clipper containers (a heartbeat every 5 s) stay registered: never evicted, never restarted', async () => {
    await new Promise((r) => setTimeout(r, 7000));
    const noop = s.app.manager.replicas().filter((r) => r.modelName.startsWith('noop-'));
    assert.equal(noop.length, 5);
    assert.deepEqual(noop.map((r) => [r.state, r.restarts]), noop.map(() => ['READY', 0]));
    assert.equal((await s.predict('noop-doubles', { input: [1] })).body.output, 1);
  });
});
