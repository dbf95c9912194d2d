import assert from 'node:assert/strict';
import { execFile, execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { startApp } from '../../src/app.ts';
import { ClipperClient, ClipperHttpError } from '../../src/client.ts';
import { ECHO_MODEL, send, startTestServer, tempDir, writeJsModel, type TestServer } from '../helpers/server.ts';

/** Authentication (docs/security.md): admin tokens and roles, application keys, HTTPS, start-up refusals. */
const ADMIN = 'admin-token-3f9a1c7e5b';
const READ = 'read-token-8d2e6a4f0c';
const CLI = join(dirname(fileURLToPath(import.meta.url)), '../../bin/clipper.js');
/** The environment of a child process, without any token the developer's shell may hold. */
const CLEAN_ENV = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^CLIPPER_(ADMIN_TOKEN|READ_TOKEN|TOKEN|APP_KEY)$/.test(k)));

function clipper(args: string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { timeout: 60_000, env: { ...CLEAN_ENV, ...env } }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr });
    });
  });
}

async function get(url: string, token?: string): Promise<{ status: number; body: any; headers: Headers }> {
  const res = await fetch(url, { headers: token === undefined ? {} : { authorization: token } });
  return { status: res.status, body: await res.json(), headers: res.headers };
}

const expectError = (r: { status: number; body: any }, status: number, code: string) => {
  assert.equal(r.status, status, JSON.stringify(r.body));
  assert.equal(r.body.error, code);
  assert.equal(typeof r.body.cause, 'string');
};

describe('admin API tokens', () => {
  let s: TestServer;
  before(async () => {
    s = await startTestServer({ adminToken: ADMIN, readToken: READ });
  });
  after(() => s.close());

  it('no token, a wrong one or another scheme gets 401 with WWW-Authenticate: Bearer', async () => {
    for (const auth of [undefined, 'Bearer wrong-token', `Bearer ${READ}x`, `Basic ${Buffer.from(`admin:${ADMIN}`).toString('base64')}`, `Bearer`, ADMIN]) {
      const status = await get(`${s.app.adminUrl}/admin/status`, auth);
      expectError(status, 401, 'UNAUTHORIZED');
      assert.equal(status.headers.get('www-authenticate'), 'Bearer');
      const headers: Record<string, string> = auth === undefined ? {} : { authorization: auth };
      expectError(await send(`${s.app.adminUrl}/admin/add_app`, { name: 'x', input_type: 'strings' }, false, headers), 401, 'UNAUTHORIZED');
      expectError(await send(`${s.app.adminUrl}/admin/get_all_applications`, {}, false, headers), 401, 'UNAUTHORIZED');
      expectError(await send(`${s.app.adminUrl}/admin/no_such_endpoint`, {}, false, headers), 401, 'UNAUTHORIZED');
    }
    assert.deepEqual((await s.admin('get_all_applications', {}, ADMIN)).body, [], 'nothing was added');
  });

  it('the admin token does everything', async () => {
    assert.equal((await s.admin('add_app', { name: 'echo', input_type: 'strings', latency_slo_micros: 2_000_000 }, ADMIN)).status, 200);
    const deployed = await s.admin('add_model', { model_name: 'echo-model', model_version: '1', input_type: 'strings', model_data_path: writeJsModel(ECHO_MODEL('v1')) }, ADMIN);
    assert.equal(deployed.status, 200, JSON.stringify(deployed.body));
    assert.equal((await s.admin('add_model_links', { app_name: 'echo', model_names: ['echo-model'] }, ADMIN)).status, 200);
    assert.equal((await get(`${s.app.adminUrl}/admin/status`, `Bearer ${ADMIN}`)).status, 200);
    assert.equal((await get(`${s.app.adminUrl}/admin/ping`, `bearer ${ADMIN}`)).status, 200, 'the scheme is case-insensitive');
    expectError(await s.admin('no_such_endpoint', {}, ADMIN), 404, 'ROUTE_NOT_FOUND');
    assert.equal((await s.predict('echo', { input: 'a' })).body.output, 'v1:a', 'the query API does not need the admin token');
  });

  it('the read token reads, and gets 403 on every write', async () => {
    assert.equal((await get(`${s.app.adminUrl}/admin/status`, `Bearer ${READ}`)).status, 200);
    assert.equal((await get(`${s.app.adminUrl}/admin/ping`, `Bearer ${READ}`)).status, 200);
    const reads: Array<[string, Record<string, unknown>]> = [
      ['get_all_applications', {}], ['get_application', { name: 'echo' }], ['get_linked_models', { app_name: 'echo' }],
      ['get_all_models', {}], ['get_model', { model_name: 'echo-model' }], ['get_all_containers', {}],
      ['get_container', { model_name: 'echo-model' }], ['get_selection_state', { app_name: 'echo' }], ['get_replica_logs', { model_name: 'echo-model' }],
    ];
    for (const [endpoint, body] of reads) assert.equal((await s.admin(endpoint, body, READ)).status, 200, endpoint);
    const writes: Array<[string, Record<string, unknown>]> = [
      ['add_app', { name: 'other', input_type: 'strings' }], ['delete_app', { name: 'echo' }],
      ['add_model', { model_name: 'm', model_version: '1', input_type: 'strings', model_data_path: writeJsModel(ECHO_MODEL('m')) }],
      ['add_model_links', { app_name: 'echo', model_names: ['echo-model'] }], ['delete_model_links', { app_name: 'echo', model_names: ['echo-model'] }],
      ['set_model_version', { model_name: 'echo-model', model_version: '1' }], ['delete_versioned_model', { model_name: 'echo-model', model_version: '1' }],
      ['set_num_replicas', { model_name: 'echo-model', num_replicas: 0 }], ['set_resources', { model_name: 'echo-model', cpus: 1 }],
      ['set_autoscaling', { model_name: 'echo-model', enabled: false }], ['set_selection_policy', { app_name: 'echo', policy: 'single' }],
      ['set_app_keys', { app_name: 'echo', keys: ['a-key-that-is-long'] }],
    ];
    for (const [endpoint, body] of writes) expectError(await s.admin(endpoint, body, READ), 403, 'FORBIDDEN');
    const after = await s.admin('get_all_models', { verbose: true }, READ);
    assert.deepEqual(after.body.map((m: any) => [m.model_name, m.replicas]), [['echo-model', 1]], 'no write happened');
  });
});

describe('application keys on the query API', () => {
  let s: TestServer;
  const KEYS = ['key-one-5a8c2e1f', 'key-two-9b7d3f0a'];
  const predict = (app: string, headers: Record<string, string> = {}) => send(`${s.app.queryUrl}/${app}/predict`, { input: 'q' }, false, headers);
  const update = (app: string, headers: Record<string, string> = {}) => send(`${s.app.queryUrl}/${app}/update`, { input: 'q', label: 1 }, false, headers);

  before(async () => {
    s = await startTestServer();
    await s.admin('add_model', { model_name: 'echo-model', model_version: '1', input_type: 'strings', model_data_path: writeJsModel(ECHO_MODEL('v1')) });
    for (const app of ['locked', 'open']) {
      await s.admin('add_app', { name: app, input_type: 'strings', latency_slo_micros: 2_000_000 });
      await s.admin('add_model_links', { app_name: app, model_names: ['echo-model'] });
    }
  });
  after(() => s.close());

  it('set_app_keys validates, and shows only whether an application is protected', async () => {
    expectError(await s.admin('set_app_keys', { app_name: 'locked', keys: ['short'] }), 400, 'INVALID_INPUT');
    expectError(await s.admin('set_app_keys', { app_name: 'locked', keys: 'key-one-5a8c2e1f' }), 400, 'INVALID_INPUT');
    expectError(await s.admin('set_app_keys', { app_name: 'locked', keys: ['has a space in it'] }), 400, 'INVALID_INPUT');
    expectError(await s.admin('set_app_keys', { app_name: 'ghost', keys: KEYS }), 404, 'APP_NOT_FOUND');
    const set = await s.admin('set_app_keys', { app_name: 'locked', keys: KEYS });
    assert.equal(set.status, 200, JSON.stringify(set.body));
    assert.deepEqual(set.body, { success: true, app_name: 'locked', protected: true, keys: 2 });
    assert.equal((await s.admin('get_application', { name: 'locked' })).body.protected, true);
    assert.equal((await s.admin('get_application', { name: 'open' })).body.protected, false);
    const status = await get(`${s.app.adminUrl}/admin/status`);
    assert.deepEqual(status.body.applications.map((a: any) => [a.name, a.protected]), [['locked', true], ['open', false]]);
    const everything = JSON.stringify([status.body, (await s.admin('get_all_applications', { verbose: true })).body]);
    for (const k of KEYS) assert.ok(!everything.includes(k), 'a key is never shown');
  });

  it('a protected application answers predict and update only with a key, in either header', async () => {
    for (const call of [predict, update]) {
      const none = await call('locked');
      expectError(none, 401, 'UNAUTHORIZED');
      assert.equal(none.headers.get('www-authenticate'), 'Bearer');
      expectError(await call('locked', { authorization: 'Bearer not-a-key-at-all' }), 401, 'UNAUTHORIZED');
      expectError(await call('locked', { 'x-api-key': `${KEYS[0]}x` }), 401, 'UNAUTHORIZED');
      expectError(await call('locked', { authorization: `Bearer ${KEYS[0]!.slice(0, -1)}` }), 401, 'UNAUTHORIZED');
      assert.equal((await call('locked', { authorization: `Bearer ${KEYS[0]}` })).status, 200);
      assert.equal((await call('locked', { 'x-api-key': KEYS[1]! })).status, 200);
      assert.equal((await call('open')).status, 200, 'other applications stay open');
    }
    assert.equal((await predict('locked', { 'x-api-key': KEYS[0]! })).body.output, 'v1:q');
  });

  it('keys survive a restart; an empty list opens the application; a deleted application loses its keys', async () => {
    await s.close();
    s = await startTestServer({ dataDir: s.dataDir });
    expectError(await predict('locked'), 401, 'UNAUTHORIZED');
    assert.equal((await predict('locked', { 'x-api-key': KEYS[1]! })).status, 200);

    assert.equal((await s.admin('set_app_keys', { app_name: 'open', keys: ['open-key-12345678'] })).status, 200);
    expectError(await predict('open'), 401, 'UNAUTHORIZED');
    assert.deepEqual((await s.admin('set_app_keys', { app_name: 'open', keys: [] })).body.protected, false);
    assert.equal((await predict('open')).status, 200);

    assert.equal((await s.admin('delete_app', { name: 'locked' })).status, 200);
    await s.admin('add_app', { name: 'locked', input_type: 'strings' });
    assert.equal((await s.admin('get_application', { name: 'locked' })).body.protected, false);
    await s.close();
    s = await startTestServer({ dataDir: s.dataDir });
    assert.equal((await s.admin('get_application', { name: 'locked' })).body.protected, false, 'the old keys do not come back');
    assert.notEqual((await predict('locked')).status, 401);
  });
});

describe('HTTPS and the CLI', () => {
  let dir: string;
  let cert: string;
  let key: string;
  let s: TestServer;

  before(async () => {
    dir = tempDir('clipper-tls-');
    cert = join(dir, 'cert.pem');
    key = join(dir, 'key.pem');
    execFileSync('/usr/bin/openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', key, '-out', cert,
      '-days', '2', '-subj', '/CN=localhost', '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost'], { stdio: 'ignore' });
    s = await startTestServer({ tlsCert: cert, tlsKey: key, adminToken: ADMIN });
  });
  after(async () => {
    await s.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const httpsGet = (url: string, opts: { ca?: Buffer; token?: string }) => new Promise<{ status: number; body: any }>((resolve, reject) => {
    const req = request(url, { ca: opts.ca, headers: opts.token ? { authorization: `Bearer ${opts.token}` } : {} }, (res) => {
      let text = '';
      res.on('data', (d) => { text += d; });
      res.on('end', () => resolve({ status: res.statusCode!, body: JSON.parse(text) }));
    });
    req.on('error', reject);
    req.end();
  });

  it('serves both APIs over HTTPS to a client that trusts the certificate, and to no other', async () => {
    assert.match(s.app.adminUrl, /^https:\/\//);
    assert.match(s.app.queryUrl, /^https:\/\//);
    const ca = readFileSync(cert);
    assert.equal((await httpsGet(`${s.app.adminUrl}/admin/ping`, { ca, token: ADMIN })).status, 200);
    assert.equal((await httpsGet(`${s.app.adminUrl}/admin/ping`, { ca })).status, 401);
    await assert.rejects(httpsGet(`${s.app.adminUrl}/admin/ping`, { token: ADMIN }), /self-signed|unable to verify|certificate/i);

    const client = new ClipperClient(s.app.adminUrl, s.app.queryUrl, { token: ADMIN, ca });
    await client.admin('add_app', { name: 'tls', input_type: 'strings', latency_slo_micros: 2_000_000 });
    await client.admin('add_model', { model_name: 'tls-model', model_version: '1', input_type: 'strings', model_data_path: writeJsModel(ECHO_MODEL('tls')) });
    await client.admin('add_model_links', { app_name: 'tls', model_names: ['tls-model'] });
    assert.equal((await client.predict<{ output: string }>('tls', { input: 'x' })).output, 'tls:x');
    const untrusting = new ClipperClient(s.app.adminUrl, s.app.queryUrl, { token: ADMIN });
    await assert.rejects(untrusting.status(), (e: unknown) => e instanceof ClipperHttpError && e.code === 'UNREACHABLE');
  });

  it('the CLI sends --token or CLIPPER_TOKEN, trusts the certificate only with --ca-cert, and fails in one line', async () => {
    const urls = ['--admin-url', s.app.adminUrl, '--query-url', s.app.queryUrl];
    let r = await clipper(['app', 'ls', '--token', ADMIN, '--ca-cert', cert, ...urls]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /tls\s+strings/);
    r = await clipper(['status', '--json', '--ca-cert', cert, ...urls], { CLIPPER_TOKEN: ADMIN });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(JSON.parse(r.stdout).applications[0].name, 'tls');
    r = await clipper(['predict', 'tls', '"y"', '--json', ...urls], { NODE_EXTRA_CA_CERTS: cert });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(JSON.parse(r.stdout).output, 'tls:y');

    r = await clipper(['app', 'ls', '--ca-cert', cert, ...urls]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^error: UNAUTHORIZED: .*--token/);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    r = await clipper(['app', 'ls', '--token', ADMIN, ...urls]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^error: UNREACHABLE: .*(self-signed|certificate)/);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
  });

  it('refuses to start with TLS files it cannot use, in one line', async () => {
    const other = join(dir, 'other-key.pem');
    execFileSync('/usr/bin/openssl', ['genpkey', '-algorithm', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-out', other], { stdio: 'ignore' });
    const bad = { queryPort: 0, adminPort: 0, rpcPort: 0, grpcPort: 0 };
    await assert.rejects(startApp({ ...bad, dataDir: tempDir(), tlsCert: join(dir, 'missing.pem'), tlsKey: key }), /--tls-cert .*missing\.pem cannot be read: ENOENT/);
    await assert.rejects(startApp({ ...bad, dataDir: tempDir(), tlsCert: cert, tlsKey: other }), /not a usable PEM certificate and key/);
    await assert.rejects(startApp({ ...bad, dataDir: tempDir(), tlsCert: cert }), /both --tls-cert and --tls-key/);
  });
});

describe('start-up refusals', () => {
  it('startApp refuses a non-loopback address without an admin token, and inconsistent tokens', async () => {
    const ports = { queryPort: 0, adminPort: 0, rpcPort: 0, grpcPort: 0, adminToken: '', readToken: '' };
    const dataDir = join(tempDir(), 'never-created');
    await assert.rejects(startApp({ ...ports, dataDir, host: '0.0.0.0' }), /refusing to listen on 0\.0\.0\.0 without an admin token/);
    await assert.rejects(startApp({ ...ports, dataDir, readToken: READ }), /--read-token needs an --admin-token/);
    await assert.rejects(startApp({ ...ports, dataDir, adminToken: ADMIN, readToken: ADMIN }), /must differ/);
    await assert.rejects(startApp({ ...ports, dataDir, adminToken: 'has space' }), /visible ASCII/);
    assert.ok(!existsSync(dataDir), 'nothing was created');
  });

  it('clipper start on 0.0.0.0 without a token exits 1 with one line; with --admin-token-file it serves', async () => {
    const dataDir = join(tempDir(), 'data');
    const ports = ['--query-port', '0', '--admin-port', '0', '--rpc-port', '0', '--grpc-port', '0', '--data-dir', dataDir];
    let r = await clipper(['start', '--host', '0.0.0.0', ...ports]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^clipper: cannot start: refusing to listen on 0\.0\.0\.0 without an admin token/);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.ok(!existsSync(dataDir));
    r = await clipper(['start', '--admin-token-file', join(dataDir, 'nope'), ...ports]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /--admin-token-file .* cannot be read: ENOENT/);

    const tokenDir = tempDir();
    const tokenFile = join(tokenDir, 'token');
    writeFileSync(tokenFile, `${ADMIN}\n`, { mode: 0o600 });
    const server = spawn(process.execPath, [CLI, 'start', '--admin-token-file', tokenFile, ...ports], { stdio: ['ignore', 'pipe', 'pipe'], env: CLEAN_ENV });
    let out = '';
    server.stdout.on('data', (d) => { out += d; });
    server.stderr.on('data', (d) => { out += d; });
    try {
      const started = Date.now();
      while (!/admin API (\S+),/.test(out)) {
        assert.ok(Date.now() - started < 30_000 && server.exitCode === null, `server did not start: ${out}`);
        await new Promise((res) => setTimeout(res, 50));
      }
      const urls = ['--admin-url', /admin API (\S+),/.exec(out)![1]!, '--query-url', /query API (\S+),/.exec(out)![1]!];
      r = await clipper(['status', '--token', ADMIN, ...urls]);
      assert.equal(r.code, 0, r.stderr);
      r = await clipper(['status', ...urls]);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /UNAUTHORIZED/);
      server.kill('SIGTERM');
      const [code] = await once(server, 'exit');
      assert.equal(code, 0, out);
    } finally {
      if (server.exitCode === null) server.kill('SIGKILL');
      rmSync(tokenDir, { recursive: true, force: true });
    }
  });
});
