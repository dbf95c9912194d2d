import assert from 'node:assert/strict';
import { processAlive, replicaPid } from '../helpers/replica-pid.ts';
import { execFile, spawn } from 'node:child_process';
import { tmpdir } from 'node:os';
import { once } from 'node:events';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { it } from 'node:test';
import { ECHO_MODEL, tempDir, writeJsModel } from '../helpers/server.ts';

const CLI = join(dirname(fileURLToPath(import.meta.url)), '../../bin/clipper.js');

function clipper(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { timeout: 60_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr });
    });
  });
}

const alive = processAlive;

it('the clipper CLI drives a started server, and SIGTERM stops it cleanly', async () => {
  const dataDir = tempDir();
  const server = spawn(process.execPath, [CLI, 'start', '--data-dir', dataDir, '--query-port', '0', '--admin-port', '0', '--rpc-port', '0', '--grpc-port', '0', '--artifact-root', tmpdir()], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  server.stdout.on('data', (d) => { out += d; });
  server.stderr.on('data', (d) => { out += d; });
  const started = Date.now();
  while (!/admin API (\S+),/.test(out)) {
    assert.ok(Date.now() - started < 30_000, `server did not start: ${out}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  const adminUrl = /admin API (\S+),/.exec(out)![1]!;
  const queryUrl = /query API (\S+),/.exec(out)![1]!;
  const urls = ['--admin-url', adminUrl, '--query-url', queryUrl];
  try {
    let r = await clipper(['app', 'add', 'greet', '--input-type', 'str', '--slo-micros', '2000000', ...urls]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /application greet added/);

    r = await clipper(['model', 'deploy', 'hello', '--version', '1', '--runtime', 'js', '--path', writeJsModel(ECHO_MODEL('hi')), '--input-type', 'strings', '--replicas', '2', '--json', ...urls]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(JSON.parse(r.stdout).ready, true);

    r = await clipper(['link', 'greet', 'hello', ...urls]);
    assert.equal(r.code, 0, r.stderr);

    r = await clipper(['predict', 'greet', '"bob"', '--json', ...urls]);
    assert.equal(JSON.parse(r.stdout).output, 'hi:bob');

    r = await clipper(['app', 'ls', ...urls]);
    assert.match(r.stdout, /NAME\s+INPUT_TYPE/);
    assert.match(r.stdout, /greet\s+strings\s+2000000/);

    r = await clipper(['status', '--json', ...urls]);
    const status = JSON.parse(r.stdout);
    const pids: number[] = status.containers.map((c: any) => replicaPid(c.replica_id));
    assert.equal(pids.length, 2);
    assert.ok(pids.every(alive));

    r = await clipper(['logs', 'hello', '--tail', '5', ...urls]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /==> hello:1#0 <==/);

    r = await clipper(['app', 'add', 'Bad', '--input-type', 'strings', ...urls]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /INVALID_NAME/);

    server.kill('SIGTERM');
    const [code] = await once(server, 'exit');
    assert.equal(code, 0, out);
    assert.ok(pids.every((p) => !alive(p)), 'replicas were stopped');
  } finally {
    if (server.exitCode === null) server.kill('SIGKILL');
  }
});
