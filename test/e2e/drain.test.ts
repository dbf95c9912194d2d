/**
 * SIGTERM under load (finding 10: 13 of 300 connections were closed with no answer): `clipper
 * start` drains — every query in flight gets its answer — then stops replicas and exits 0.
 */
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { startClipper } from '../helpers/cli-server.ts';
import { processAlive, replicaPid } from '../helpers/replica-pid.ts';
import { send, tempDir, waitFor, writeJsModel } from '../helpers/server.ts';

const SLOW_MODEL = `export function predict(inputs) {
  const end = Date.now() + 200;
  while (Date.now() < end) {}
  return inputs.map((x) => 'slow:' + x);
}
`;
const DRAIN_MS = 10_000;

const alive = processAlive;

it('SIGTERM with 300 queries in flight: every one is answered, then replicas stop and the server exits 0', async () => {
  const server = await startClipper(tempDir(), ['--drain-timeout-ms', String(DRAIN_MS)]);
  try {
    const admin = (ep: string, body: unknown) => send(`${server.adminUrl}/admin/${ep}`, body);
    assert.equal((await admin('add_app', { name: 'slow', input_type: 'strings', default_output: 'default', latency_slo_micros: 8_000_000 })).status, 200);
    const deploy = await admin('add_model', { model_name: 'slow', model_version: '1', input_type: 'strings', model_data_path: writeJsModel(SLOW_MODEL), replicas: 2, batch_size: 20 });
    assert.equal(deploy.status, 200, JSON.stringify(deploy.body));
    assert.equal((await admin('add_model_links', { app_name: 'slow', model_names: ['slow'] })).status, 200);
    await waitFor(async () => (await send(`${server.queryUrl}/slow/predict`, { input: 'warm' })).body.output === 'slow:warm', 20_000, 'the model to serve');
    // Full batches teach admission control what a batch of 20 costs (else it extrapolates from batches of 1 and sheds).
    await Promise.all(Array.from({ length: 60 }, (_, i) => send(`${server.queryUrl}/slow/predict`, { input: `w${i}` })));
    const pids = ['slow:1#0', 'slow:1#1'].map((id) => replicaPid(id)!);
    assert.ok(pids.every((p) => p !== undefined && alive(p)));

    const asked = async () => Number(/clipper_app_requests_total\{app="slow"\} (\d+)/.exec(await (await fetch(`${server.queryUrl}/metrics`)).text())?.[1] ?? 0);
    const before = await asked();
    const answers = Array.from({ length: 300 }, (_, i) => send(`${server.queryUrl}/slow/predict`, { input: `q${i}` })
      .then((r) => ({ i, at: Date.now(), status: r.status, output: r.body?.output as unknown, body: r.body }),
        (e: Error) => ({ i, at: Date.now(), status: 0, output: undefined, body: `${e.message}: ${String((e as { cause?: unknown }).cause)}` })));
    // Every query must have reached the server before SIGTERM (a loaded machine may take a while to accept 300 connections).
    await waitFor(async () => (await asked()) >= before + 300, 30_000, 'all 300 queries to reach the server');
    const sent = Date.now();
    server.proc.kill('SIGTERM');
    const results = await Promise.all(answers);
    const code = await server.exited;
    const took = Date.now() - sent;

    const failed = results.filter((r) => r.status !== 200 || (r.output !== `slow:q${r.i}` && r.output !== 'default'));
    assert.deepEqual(failed.slice(0, 5), [], `${failed.length} of 300 queries got no proper answer`);
    const inFlight = results.filter((r) => r.at > sent);
    assert.ok(inFlight.length >= 20, `only ${inFlight.length} queries were still in flight at SIGTERM`);
    assert.ok(inFlight.some((r) => r.output === `slow:q${r.i}`), 'queries in flight finished with their output');
    assert.equal(code, 0, server.output());
    assert.ok(took < DRAIN_MS + 5_000, `exited ${took} ms after SIGTERM`);
    assert.match(server.output(), /SIGTERM: draining/);
    await waitFor(() => pids.every((p) => !alive(p)), 5_000, 'replicas to be gone');
  } finally {
    if (server.proc.exitCode === null) server.proc.kill('SIGKILL');
  }
});
