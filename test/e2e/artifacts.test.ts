/**
 * What a deploy may read and run (issue 11, findings 1 and 2): the command runtime only when the
 * operator allows it, artifacts only from under the artifact root, only regular files and
 * directories, within a byte limit, copied off the event loop, and refusals that never quote
 * a file's contents.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { startApp } from '../../src/app.ts';
import { ECHO_MODEL, send, startTestServer, tempDir, writeJsModel, type TestServer } from '../helpers/server.ts';

const deployJs = (s: TestServer, name: string, path: string) =>
  s.admin('add_model', { model_name: name, model_version: '1', input_type: 'strings', runtime: 'js', model_data_path: path, replicas: 0 });

function expectRefused(r: { status: number; body: any }, status: number, code: string, mention?: RegExp): void {
  assert.equal(r.status, status, JSON.stringify(r.body));
  assert.equal(r.body.error, code);
  if (mention) assert.match(r.body.cause, mention);
}

/** Pings the admin API while `work` runs; returns the slowest ping (ms) and what `work` answered. */
async function pingDuring<T>(s: TestServer, work: Promise<T>): Promise<{ slowestPingMs: number; result: T; tookMs: number }> {
  const started = Date.now();
  let done = false;
  let slowest = 0;
  const result = work.finally(() => { done = true; });
  do {
    const t = Date.now();
    const ping = await fetch(`${s.app.adminUrl}/admin/ping`, { signal: AbortSignal.timeout(5000) });
    assert.equal(ping.status, 200);
    slowest = Math.max(slowest, Date.now() - t);
    await new Promise((r) => setTimeout(r, 20));
  } while (!done && Date.now() - started < 10_000);
  return { slowestPingMs: slowest, result: await result, tookMs: Date.now() - started };
}

describe('the command runtime', () => {
  const command = { model_name: 'cmd', model_version: 'v1', input_type: 'strings', runtime: 'command', container_name: 'sh -c true', replicas: 0 };

  it('is refused unless the server was started with allowCommandRuntime', async () => {
    const s = await startTestServer();
    try {
      expectRefused(await s.admin('add_model', command), 403, 'FORBIDDEN', /--allow-command-runtime/);
      expectRefused(await s.admin('get_model', { model_name: 'cmd' }), 404, 'MODEL_NOT_FOUND');
    } finally {
      await s.close();
    }
  });

  it('is allowed with the flag, and every use is logged with the model, version and command', async () => {
    const logs: string[] = [];
    const app = await startApp({ dataDir: tempDir(), queryPort: 0, adminPort: 0, rpcPort: 0, grpcPort: 0, allowCommandRuntime: true }, (m) => logs.push(m));
    try {
      const r = await send(`${app.adminUrl}/admin/add_model`, command);
      assert.equal(r.status, 200, JSON.stringify(r.body));
      const line = logs.find((l) => l.includes('runtime command'));
      assert.ok(line, `a log line about the command runtime in ${JSON.stringify(logs)}`);
      assert.match(line, /cmd:v1/);
      assert.match(line, /sh -c true/);
    } finally {
      await app.close();
    }
  });
});

describe('artifacts are read only from under the artifact root', () => {
  it('refuses paths outside the root, .. traversal, symlinks leading out, and /etc/passwd', async () => {
    const root = tempDir('clipper-root-');
    const outside = writeJsModel(ECHO_MODEL('out'));
    const s = await startTestServer({ artifactRoot: root });
    try {
      const inside = writeJsModel(ECHO_MODEL('in'), join(root, 'good'));
      assert.equal((await deployJs(s, 'good', inside)).status, 200, 'a model under the root deploys');

      const refusedOutside = await deployJs(s, 'outside', outside);
      expectRefused(refusedOutside, 403, 'FORBIDDEN');
      assert.ok(refusedOutside.body.cause.includes(outside) && refusedOutside.body.cause.includes(root), refusedOutside.body.cause);

      expectRefused(await deployJs(s, 'dotdot', `${root}/../${outside.split('/').pop()}`), 403, 'FORBIDDEN', /\.\./);
      expectRefused(await deployJs(s, 'passwd', '/etc/passwd'), 403, 'FORBIDDEN', /artifact root/);

      symlinkSync(outside, join(root, 'link-out'));
      expectRefused(await deployJs(s, 'link', join(root, 'link-out')), 403, 'FORBIDDEN', /outside the artifact root/);
      const tree = writeJsModel(ECHO_MODEL('tree'), join(root, 'tree'));
      symlinkSync('/etc/passwd', join(tree, 'passwd'));
      expectRefused(await deployJs(s, 'tree', tree), 400, 'ARTIFACT_INVALID', /passwd.*points outside/);

      assert.deepEqual((await s.admin('get_all_models')).body, ['good:1'], 'nothing refused was registered');
    } finally {
      await s.close();
    }
  });
});

describe('only regular files and directories, without blocking the server', () => {
  // Root '/': the type check, not the root check, is what refuses these.
  for (const path of ['/dev/zero', '/proc/self/mem', '/sys/kernel/mm/transparent_hugepage/enabled', '/proc/self']) {
    it(`refuses ${path} quickly while /admin/ping keeps answering`, async () => {
      const s = await startTestServer({ artifactRoot: '/' });
      try {
        const { slowestPingMs, result, tookMs } = await pingDuring(s, deployJs(s, 'special', path));
        expectRefused(result, 400, 'ARTIFACT_INVALID', /regular files and directories|pseudo-filesystem/);
        assert.ok(tookMs < 2000, `refused in ${tookMs} ms`);
        assert.ok(slowestPingMs < 1000, `slowest ping ${slowestPingMs} ms`);
      } finally {
        await s.close();
      }
    });
  }

  it('refuses a FIFO (alone or in a tree) without blocking: ping answers within 1 s', async () => {
    const root = tempDir('clipper-root-');
    const s = await startTestServer({ artifactRoot: root });
    try {
      execFileSync('mkfifo', [join(root, 'pipe')]);
      const tree = writeJsModel(ECHO_MODEL('x'), join(root, 'tree'));
      execFileSync('mkfifo', [join(tree, 'pipe')]);
      for (const path of [join(root, 'pipe'), tree]) {
        const { slowestPingMs, result } = await pingDuring(s, deployJs(s, 'fifo', path));
        expectRefused(result, 400, 'ARTIFACT_INVALID', /FIFO/);
        assert.ok(slowestPingMs < 1000, `slowest ping ${slowestPingMs} ms`);
      }
    } finally {
      await s.close();
    }
  });

  it('refuses an artifact over maxArtifactBytes, naming the limit', async () => {
    const s = await startTestServer({ maxArtifactBytes: 4096 });
    try {
      const dir = writeJsModel(ECHO_MODEL('big'));
      writeFileSync(join(dir, 'weights.bin'), Buffer.alloc(8192, 1));
      expectRefused(await deployJs(s, 'big', dir), 400, 'ARTIFACT_INVALID', /4096/);
      const small = writeJsModel(ECHO_MODEL('small'));
      assert.equal((await deployJs(s, 'small', small)).status, 200, 'one under the limit deploys');
    } finally {
      await s.close();
    }
  });
});

describe('refusals never quote file contents', () => {
  it('a non-JS file deployed as js is refused by error class and line only', async () => {
    const s = await startTestServer();
    try {
      const dir = tempDir();
      const cases: Array<[string, string, RegExp]> = [
        ['ident', 'leakme\n', /ReferenceError at line 1/],
        ['syntax', 'root:x:0:0:secretive-content:/root:/bin/bash\n', /SyntaxError at line 1/],
        ['later', '// fine\nconst a = 1;\nhushhush(a);\n', /ReferenceError at line 3/],
      ];
      for (const [name, text, expected] of cases) {
        mkdirSync(join(dir, name));
        writeFileSync(join(dir, name, 'index.mjs'), text);
        const r = await deployJs(s, name, join(dir, name));
        expectRefused(r, 400, 'ARTIFACT_INVALID', /not a valid js model/);
        assert.match(r.body.cause, expected);
        for (const word of ['leakme', 'root:x', 'secretive', 'hushhush']) assert.ok(!r.body.cause.includes(word), `${JSON.stringify(r.body.cause)} quotes ${word}`);
      }
      writeFileSync(join(dir, 'hostname'), 'vm\n');
      const plain = await deployJs(s, 'hostname', join(dir, 'hostname'));
      expectRefused(plain, 400, 'ARTIFACT_INVALID');
      assert.ok(!/\bvm\b/.test(plain.body.cause), plain.body.cause);
    } finally {
      await s.close();
    }
  });
});
