import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import type { StatusJson } from '../../src/cli/status-types.ts';
import { renderTop } from '../../src/cli/top-render.ts';
import { ECHO_MODEL, startTestServer, waitFor, writeJsModel } from '../helpers/server.ts';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '../..');
const NOW = Date.parse('2026-11-25T10:00:10Z');

const STATUS: StatusJson = {
  at: '2026-11-25T10:00:09Z',
  backend: 'local',
  applications: [{ name: 'greet', linked_models: ['sentiment'] }],
  models: [
    { model_name: 'sentiment', model_version: '1', replicas: 1, cpus: 0, memory_mb: 0, is_current_version: false },
    { model_name: 'sentiment', model_version: '2', replicas: 2, cpus: 0.5, memory_mb: 256, is_current_version: true },
    { model_name: 'sentiment', model_version: '0', replicas: 1, is_current_version: false },
  ],
  scaling: {
    sentiment: {
      autoscaling: { min_replicas: 1, max_replicas: 4, upscale_delay_s: 2, downscale_delay_s: 30, target_utilization: 0.7 },
      desired_replicas: 2,
      decision: { at: '2026-11-25T10:00:08Z', desired: 2, demand: 3, reason: 'hold: cpu saturated', limited_by: 'cpu saturated' },
      warm_versions: ['1'],
      on_demand_versions: [],
    },
  },
  containers: [
    {
      replica_id: 'sentiment:2#0', model_name: 'sentiment', model_version: '2', state: 'READY', machine: 'node-a', restarts: 0, last_exit: null,
      usage: { cpu_cores: 0.125, rss_bytes: 90 * 2 ** 20, batches_per_s: 41.5, mean_batch_ms: 3, busy_fraction: 0.42 },
    },
    {
      replica_id: 'sentiment:2#1', model_name: 'sentiment', model_version: '2', state: 'BACKOFF', machine: 'node-a', restarts: 3,
      last_exit: { reason: `out of memory (limit 256 MiB)\nthen a very long explanation ${'x'.repeat(200)}`, at: '2026-11-25T10:00:00Z' },
      usage: null,
    },
    { replica_id: 'sentiment:1#0', model_name: 'sentiment', model_version: '1', state: 'READY', machine: 'node-a', restarts: 0, last_exit: null },
  ],
  load: [{
    model: 'sentiment:2', arrival_rate: 120.25, shed_rate: 1.5, late_rate: 0, slo_attainment: 0.987,
    queue_delay_p50_ms: 0.4, queue_delay_p99_ms: 12.3, service_ms_per_input: 0.35, depth: 4, ready_replicas: 1,
  }],
  machines: [{ name: 'node-a', cores: 4, cpu_busy_cores: 1, load1: 0.75, memory_total_bytes: 8 * 2 ** 30, memory_available_bytes: 6 * 2 ** 30 }],
  scaling_events: [{ at: '2026-11-25T10:00:05Z', model: 'sentiment', version: '2', from: 1, to: 2, reason: 'scale up: demand 2 → 2' }],
};

describe('renderTop', () => {
  it('shows machines, the model, its versions, load, scaling and replicas within the width', () => {
    const lines = renderTop(STATUS, { width: 140, now: NOW, server: 'http://127.0.0.1:1338' });
    const frame = lines.join('\n');
    assert.ok(lines.every((l) => l.length <= 140), 'every line fits');
    assert.ok(lines.every((l) => !/[\x00-\x1f]/.test(l)), 'no control characters (the exit reason held a newline)');
    assert.match(lines[0]!, /clipper top\s+http:\/\/127\.0\.0\.1:1338\s+backend local/);
    assert.match(frame, /node-a\s+CPU \[\|\|\|\s+\]\s+25% 1\.0\/4 cores\s+MEM \[\|\|\|\s+\] 2\.0\/8\.0 GiB\s+load1 0\.75/);
    assert.match(frame, /MODEL sentiment\s+autoscale 1\.\.4 \(up 2s, down 30s, util 0\.7\)\s+desired 2\s+decision: hold: cpu saturated \(demand 3, 2s ago\)/);
    const current = lines.find((l) => /^\s+2\s+current/.test(l));
    assert.ok(current, frame);
    assert.match(current, /current\s+1\/2\s+120\.3\s+1\.5\s+0\.0\s+98\.7\s+0\.4\s+12\.3\s+4\s+0\.35\s+0\.5 cpu, 256 MiB/);
    assert.match(frame, /sentiment:2#0\s+READY\s+node-a\s+12\.5\s+90\.0\s+41\.5\s+42\.0\s+0\s+-/);
    assert.match(frame, /sentiment:2#1\s+BACKOFF\s+node-a\s+-\s+-\s+-\s+-\s+3\s+out of memory \(limit 256 MiB\) then/);
    assert.match(frame, /^\s+1\s+warm\s+1\/1/m);
    assert.match(frame, /1 more version without replicas or load/, 'the idle version 0 is folded');
    assert.ok(frame.indexOf(' current ') < frame.indexOf(' warm '), 'the current version comes first');
    assert.match(frame, /SCALING EVENTS\n\s+\d\d:\d\d:\d\d\s+sentiment:2\s+1 → 2\s+scale up/);
  });

  it('aligns the columns of every row under their headers', () => {
    const lines = renderTop(STATUS, { width: 200, now: NOW });
    const head = lines.find((l) => l.includes('REPLICA'))!;
    for (const l of lines.filter((x) => x.includes('sentiment:2#'))) {
      assert.equal(l.indexOf('node-a'), head.indexOf('MACHINE'));
      assert.equal(l.indexOf(l.includes('BACKOFF') ? 'BACKOFF' : 'READY'), head.indexOf('STATE'));
    }
    const vhead = lines.find((l) => l.includes('VERSION'))!;
    const v2 = lines.find((l) => /^\s+2\s+current/.test(l))!;
    assert.equal(v2.indexOf('98.7') + 4, vhead.indexOf('SLO%') + 4, 'numbers are right-aligned under their header');
  });

  it('cuts lines to a narrow width and the model section to the height', () => {
    const lines = renderTop(STATUS, { width: 40, height: 12, now: NOW });
    assert.ok(lines.length <= 12);
    assert.ok(lines.every((l) => l.length <= 40));
    assert.ok(lines.some((l) => l.startsWith('… ') && l.includes('more lines')));
    assert.ok(lines.some((l) => l.startsWith('SCALING EVENTS')), 'events stay visible');
  });

  it('renders an empty status and a status full of nulls without throwing', () => {
    assert.match(renderTop({}, { width: 80, now: NOW }).join('\n'), /machines: not measured yet[\s\S]*no models deployed[\s\S]*SCALING EVENTS\s+none yet/);
    const nulls: StatusJson = {
      at: 'not a date',
      models: [{ model_name: 'm', model_version: '1', is_current_version: true }],
      scaling: { m: { autoscaling: null, desired_replicas: 1, decision: null } },
      containers: [{ replica_id: 'm:1#0', model_name: 'm', model_version: '1', usage: null, last_exit: null }],
      load: [{ model: 'm:1', arrival_rate: null, slo_attainment: null, queue_delay_p99_ms: null, depth: null }],
      machines: [{ name: 'x', cores: 0, cpu_busy_cores: null, load1: null, memory_total_bytes: null, memory_available_bytes: null }],
      scaling_events: [],
    };
    const frame = renderTop(nulls, { width: 120, now: NOW }).join('\n');
    assert.match(frame, /MODEL m\s+autoscale off\s+desired 1\n/);
    assert.match(frame, /m:1#0\s+-\s+-\s+-\s+-/);
    assert.match(frame, /x\s+CPU \[\s+\]\s+-% -\/0 cores/);
    assert.doesNotMatch(frame, /NaN|undefined|null/);
  });

  it('says the server is unreachable, with or without a last good status', () => {
    const none = renderTop(undefined, { width: 100, now: NOW, error: 'server unreachable (cannot reach http://127.0.0.1:1)' });
    assert.equal(none.length, 2);
    assert.match(none[1]!, /^! server unreachable \(cannot reach http:\/\/127\.0\.0\.1:1\) — retrying$/);
    const stale = renderTop(STATUS, { width: 100, now: NOW, error: 'server unreachable', lastOkAt: NOW - 5000 });
    assert.match(stale[1]!, /^! server unreachable — retrying; showing the update of \d\d:\d\d:\d\d$/);
    assert.ok(stale.some((l) => l.includes('MODEL sentiment')));
  });
});

function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], { cwd: ROOT, timeout: 60_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr });
    });
  });
}

it('clipper top --once, model autoscale and status against a real server', async () => {
  const server = await startTestServer();
  try {
    const url = ['--admin-url', server.app.adminUrl];
    assert.equal((await server.admin('add_app', { name: 'greet', input_type: 'strings' })).status, 200);
    const deployed = await server.admin('add_model', {
      model_name: 'hello', model_version: '1', runtime: 'js', model_data_path: writeJsModel(ECHO_MODEL('hi')), input_type: 'strings', replicas: 1,
    });
    assert.equal(deployed.body.ready, true, JSON.stringify(deployed.body));
    await server.admin('add_model_links', { app_name: 'greet', model_names: ['hello'] });
    // The first measurement comes one interval after start; wait for it instead of sleeping.
    const machine = await waitFor(async () => (await (await fetch(`${server.app.adminUrl}/admin/status`)).json()).machines[0]?.name as string | undefined, 10_000, 'a machine measurement');

    let r = await cli(['top', '--once', '--width', '160', ...url]);
    assert.equal(r.code, 0, r.stderr);
    assert.doesNotMatch(r.stdout, /\x1b/, '--once writes no terminal control codes');
    assert.match(r.stdout, /^clipper top\s+http:\/\/127\.0\.0\.1:\d+\s+backend local/);
    assert.match(r.stdout, new RegExp(`\\n${machine}\\s+CPU \\[[| ]{10}\\]\\s+\\d+% [\\d.]+/\\d+ cores\\s+MEM`));
    assert.match(r.stdout, /MODEL hello\s+autoscale off/);
    assert.match(r.stdout, /hello:1#0\s+READY\s/);

    r = await cli(['model', 'autoscale', 'hello', '--min', '1', '--max', '3', '--downscale-delay', '120', ...url]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /model hello autoscales 1\.\.3 \(up 2s, down 120s, util 0\.7\)/);
    r = await cli(['status', '--json', ...url]);
    assert.equal(r.code, 0, r.stderr);
    const status = JSON.parse(r.stdout) as StatusJson;
    assert.deepEqual(status.scaling?.hello?.autoscaling, { min_replicas: 1, max_replicas: 3, upscale_delay_s: 2, downscale_delay_s: 120, target_utilization: 0.7 });

    r = await cli(['status', ...url]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /SCALING\nMODEL\s+AUTOSCALING\s+DESIRED\s+DECISION\nhello\s+1\.\.3 \(up 2s, down 120s, util 0\.7\)/);
    assert.match(r.stdout, /REPLICAS\nREPLICA_ID\s+STATE\s+MACHINE\s+CPU%\s+RSS_MIB\s+RESTARTS\s+LAST_EXIT\nhello:1#0\s+READY\s+\S+/);

    r = await cli(['model', 'autoscale', 'hello', '--min', '3', '--max', '2', ...url]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /error: INVALID_INPUT: max_replicas must be ≥ min_replicas \(got 2 < 3\)/);
  } finally {
    await server.close();
  }
});
