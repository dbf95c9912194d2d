/**
 * Faults an unlucky operator meets: a full or read-only data disk, a second server on the same
 * data directory, a port already taken, a server SIGKILLed under load. Disks are real (a small
 * tmpfs, remounted read-only or filled), so these tests need root and mount; they skip otherwise.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { it } from 'node:test';
import { send, startTestServer, tempDir, waitFor, writeJsModel, ECHO_MODEL, type TestServer } from '../helpers/server.ts';
import { replicaPid } from '../helpers/replica-pid.ts';
import { spawnClipper, startClipper } from '../helpers/cli-server.ts';
import { mountFailingExt4, mountTmpfs, needsDisk } from '../helpers/scratch-disk.ts';

const tmpfs = needsDisk('tmpfs');
const failing = needsDisk('failing-ext4');

async function deployEcho(s: TestServer, app: string, model: string): Promise<void> {
  assert.equal((await s.admin('add_app', { name: app, input_type: 'strings', default_output: 'default', latency_slo_micros: 5_000_000 })).status, 200);
  const r = await s.admin('add_model', { model_name: model, model_version: '1', input_type: 'strings', model_data_path: writeJsModel(ECHO_MODEL(model)) });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  assert.equal((await s.admin('add_model_links', { app_name: app, model_names: [model] })).status, 200);
  await waitFor(async () => (await s.predict(app, { input: 'warm' })).body.output === `${model}:warm`, 20_000, `${model} to serve`);
}

/** The one line `clipper start` printed before failing, and that it is one line and no stack. */
function oneFailureLine(output: string): string {
  const lines = output.trim().split('\n');
  assert.equal(lines.length, 1, `expected one line, got:\n${output}`);
  assert.doesNotMatch(output, /\n\s+at |Error:/, 'no stack trace');
  return lines[0]!;
}

/** The error of a start expected to fail (a start that succeeds is closed again, so the test ends). */
async function failedStart(cfg: Parameters<typeof startTestServer>[0]): Promise<Error> {
  const outcome = await startTestServer(cfg).then(async (s) => { await s.close(); return undefined; }, (e: Error) => e);
  assert.ok(outcome, 'the server started');
  return outcome;
}

const freePortHolder = (): Promise<Server> => new Promise((resolve) => {
  const srv = createServer();
  srv.listen(0, '127.0.0.1', () => resolve(srv));
});

it('a full data disk answers 507 STORAGE_FULL saying so, changes nothing, and queries keep being served', tmpfs, async () => {
  const fs = mountTmpfs('16m')!;
  const s = await startTestServer({ dataDir: join(fs.dir, 'data'), artifactRoot: tmpdir() });
  try {
    await deployEcho(s, 'full', 'fm');
    fs.fill();
    const r = await s.admin('add_app', { name: 'another', input_type: 'strings' });
    assert.equal(r.status, 507, JSON.stringify(r.body));
    assert.equal(r.body.error, 'STORAGE_FULL');
    assert.match(r.body.cause, /could not save application another: the disk holding .*registry\.sqlite is full \(SQLITE_FULL\)/);
    assert.equal((await s.admin('get_application', { name: 'another' })).status, 404, 'nothing half-written');

    const scale = await s.admin('set_num_replicas', { model_name: 'fm', model_version: '1', num_replicas: 2 });
    assert.equal(scale.status, 507, JSON.stringify(scale.body));
    for (let i = 0; i < 20; i++) assert.equal((await s.predict('full', { input: `q${i}` })).body.output, `fm:q${i}`);

    fs.unfill();
    assert.equal((await s.admin('add_app', { name: 'another', input_type: 'strings' })).status, 200, 'writes work again once there is space');
  } finally {
    await s.close().finally(() => fs.unmount());
  }
});

it('a data disk gone read-only under the server answers 503 STORAGE_UNAVAILABLE and leaves no replica slot stuck', failing, async () => {
  const fs = mountFailingExt4(64)!;
  const s = await startTestServer({ dataDir: join(fs.dir, 'data'), artifactRoot: tmpdir() });
  try {
    await deployEcho(s, 'ro', 'rm');
    fs.fail();

    const scale = await s.admin('set_num_replicas', { model_name: 'rm', model_version: '1', num_replicas: 2 });
    assert.equal(scale.status, 503, JSON.stringify(scale.body));
    assert.match(scale.body.cause, /^could not save the replica count of model rm version 1: .*registry\.sqlite is read-only \(SQLITE_\w+, EROFS\)$/);

    // A replica that dies now cannot reopen its log file; it restarts anyway, output kept in memory.
    const pid = replicaPid('rm:1#0')!;
    process.kill(pid, 'SIGKILL');
    await waitFor(async () => {
      const c = (await s.admin('get_all_containers', { verbose: true })).body as Array<{ replica_id: string; state: string; restarts: number }>;
      return c.length === 1 && c[0]!.state === 'READY' && c[0]!.restarts === 1;
    }, 20_000, 'the killed replica to be READY again');
    assert.notEqual(replicaPid('rm:1#0'), pid);
    assert.equal((await s.predict('ro', { input: 'after' })).body.output, 'rm:after');
    const logs = await s.admin('get_replica_logs', { model_name: 'rm', model_version: '1', tail: 50 });
    assert.match(JSON.stringify(logs.body), /kept in memory .*read-only \(EROFS\)/);
    const states = ((await s.admin('get_all_containers', { verbose: true })).body as Array<{ state: string }>).map((c) => c.state);
    assert.deepEqual(states, ['READY'], 'no slot left in STARTING or BACKOFF');

    // The artifact cannot be copied into the data directory: 503 saying why, and no version or replica.
    const deploy = await s.admin('add_model', { model_name: 'rm', model_version: '2', input_type: 'strings', model_data_path: writeJsModel(ECHO_MODEL('v2')) });
    assert.equal(deploy.status, 503, JSON.stringify(deploy.body));
    assert.equal(deploy.body.error, 'STORAGE_UNAVAILABLE');
    assert.match(deploy.body.cause, /read-only \(EROFS\)/);
    assert.equal((await s.admin('get_model', { model_name: 'rm', model_version: '2' })).status, 404);
  } finally {
    await s.close().finally(() => fs.unmount());
  }
});

it('clipper start on a read-only or full data directory prints one line and exits non-zero', tmpfs, async () => {
  const fs = mountTmpfs('4m')!;
  try {
    fs.readOnly();
    let run = spawnClipper(['--data-dir', join(fs.dir, 'data'), '--query-port', '0', '--admin-port', '0', '--rpc-port', '0', '--grpc-port', '0']);
    assert.equal(await run.exited, 1);
    assert.match(oneFailureLine(run.output()), /^clipper: cannot start: .*data.* is read-only \(EROFS\)$/);

    fs.writable();
    const used = await startClipper(join(fs.dir, 'used'));
    used.proc.kill('SIGTERM');
    assert.equal(await used.exited, 0);
    fs.readOnly();
    run = spawnClipper(['--data-dir', join(fs.dir, 'used'), '--query-port', '0', '--admin-port', '0', '--rpc-port', '0', '--grpc-port', '0']);
    assert.equal(await run.exited, 1);
    assert.match(oneFailureLine(run.output()), /^clipper: cannot start: .*used is read-only \(EROFS\)$/);

    fs.writable();
    fs.fill();
    run = spawnClipper(['--data-dir', join(fs.dir, 'fresh'), '--query-port', '0', '--admin-port', '0', '--rpc-port', '0', '--grpc-port', '0']);
    assert.equal(await run.exited, 1);
    assert.match(oneFailureLine(run.output()), /^clipper: cannot start: .*is full \((SQLITE_FULL|ENOSPC)\); free space and retry$/);
  } finally {
    fs.writable();
    fs.unmount();
  }
});

it('a second server on the same data directory fails at once naming the directory and the pid; the first is unaffected', async () => {
  const first = await startTestServer({ artifactRoot: tmpdir() });
  try {
    await deployEcho(first, 'one', 'om');
    const before = (await first.admin('get_all_models', { verbose: true })).body;

    const refused = await failedStart({ dataDir: first.dataDir });
    assert.equal((refused as { code?: string }).code, 'STORAGE_UNAVAILABLE');
    assert.match(refused.message, new RegExp(`data directory ${first.dataDir} is in use by another clipper server \\(pid ${process.pid}, started `));
    const run = spawnClipper(['--data-dir', first.dataDir, '--query-port', '0', '--admin-port', '0', '--rpc-port', '0', '--grpc-port', '0']);
    assert.equal(await run.exited, 1);
    assert.match(oneFailureLine(run.output()), new RegExp(`^clipper: cannot start: data directory ${first.dataDir} is in use by another clipper server \\(pid ${process.pid}, `));

    assert.deepEqual((await first.admin('get_all_models', { verbose: true })).body, before);
    assert.equal((await first.predict('one', { input: 'still' })).body.output, 'om:still');
    assert.ok(existsSync(join(first.dataDir, 'server.pid')));
  } finally {
    await first.close();
  }
  assert.ok(!existsSync(join(first.dataDir, 'server.pid')), 'released on close');
  const again = await startTestServer({ dataDir: first.dataDir });
  await again.close();
});

it('a port already in use gets one line, and a fresh data directory is not left behind', async () => {
  const holder = await freePortHolder();
  const port = (holder.address() as { port: number }).port;
  try {
    for (const [flag, what] of [['--query-port', 'query API'], ['--admin-port', 'admin API'], ['--rpc-port', 'RPC'], ['--grpc-port', 'V2 gRPC']] as const) {
      const dataDir = join(tempDir(), 'nested', 'data');
      const ports = { '--query-port': '0', '--admin-port': '0', '--rpc-port': '0', '--grpc-port': '0', [flag]: String(port) };
      const run = spawnClipper(['--data-dir', dataDir, ...Object.entries(ports).flat()]);
      assert.equal(await run.exited, 1);
      assert.equal(oneFailureLine(run.output()), `clipper: cannot start: port ${port} (${what}) is already in use on 127.0.0.1`);
      assert.ok(!existsSync(join(dataDir, '..', '..', 'nested')), `${what}: the data directory it created was removed`);
    }

    // On an existing data directory: nothing of it is removed, and the lock is released.
    const used = await startTestServer({ artifactRoot: tmpdir() });
    await deployEcho(used, 'kept', 'km');
    await used.close();
    assert.match((await failedStart({ dataDir: used.dataDir, queryPort: port })).message, /^port \d+ \(query API\) is already in use on 127\.0\.0\.1$/);
    const again = await startTestServer({ dataDir: used.dataDir, artifactRoot: tmpdir() });
    try {
      await waitFor(async () => (await again.predict('kept', { input: 'x' })).body.output === 'km:x', 20_000, 'the kept model to serve');
    } finally {
      await again.close();
    }
  } finally {
    holder.close();
  }
});

it('a server SIGKILLed under load comes back on the same data directory (its lock is taken over) and serves', async () => {
  const dataDir = tempDir();
  const first = await startClipper(dataDir);
  const model = writeJsModel(ECHO_MODEL('k'));
  const admin = (url: string, ep: string, body: unknown) => send(`${url}/admin/${ep}`, body);
  assert.equal((await admin(first.adminUrl, 'add_app', { name: 'k', input_type: 'strings', default_output: 'd', latency_slo_micros: 5_000_000 })).status, 200);
  assert.equal((await admin(first.adminUrl, 'add_model', { model_name: 'km', model_version: '1', input_type: 'strings', model_data_path: model, replicas: 2 })).status, 200);
  assert.equal((await admin(first.adminUrl, 'add_model_links', { app_name: 'k', model_names: ['km'] })).status, 200);

  let stop = false;
  const load = Array.from({ length: 20 }, async (_, w) => {
    for (let i = 0; !stop; i++) await send(`${first.queryUrl}/k/predict`, { input: `${w}-${i}` }).catch(() => undefined);
  });
  await new Promise((r) => setTimeout(r, 500));
  first.proc.kill('SIGKILL');
  assert.equal(await first.exited, 'SIGKILL');
  stop = true;
  await Promise.all(load);

  const second = await startClipper(dataDir);
  try {
    assert.match(second.output(), new RegExp(`took over data directory ${dataDir} from pid ${first.proc.pid}, which is no longer running`));
    await waitFor(async () => (await send(`${second.queryUrl}/k/predict`, { input: 'back' })).body.output === 'k:back', 30_000, 'the restarted server to serve');
  } finally {
    second.proc.kill('SIGTERM');
    assert.equal(await second.exited, 0);
  }
});
