/**
 * The server log (src/observability/log.ts): the logger's formats and levels, then a real
 * `clipper start` whose JSON lines on stderr are read back record by record while it is deployed
 * to, linked, switched between versions, has a replica killed, autoscales and answers good and bad requests.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createLogger, formatRecord, messageLog, textLogger } from '../../src/observability/log.ts';
import { startClipper } from '../helpers/cli-server.ts';
import { replicaPid } from '../helpers/replica-pid.ts';
import { ECHO_MODEL, send, tempDir, waitFor, writeJsModel } from '../helpers/server.ts';

type Rec = Record<string, any>;

describe('the logger', () => {
  it('writes one JSON record per line with level, time, pid, hostname, msg and the fields; below its level nothing', () => {
    const lines: string[] = [];
    const logger = createLogger({ level: 'info', sink: { write: (l: string) => lines.push(l) } });
    logger.debug({ model: 'm' }, 'not shown');
    logger.child({ component: 'registry' }).info({ model: 'm', version: '1', runtime: 'js' }, 'model deployed');
    assert.equal(lines.length, 1);
    assert.ok(lines[0]!.endsWith('\n'));
    const r = JSON.parse(lines[0]!) as Rec;
    assert.deepEqual({ ...r, time: 0, hostname: '' }, {
      level: 30, time: 0, pid: process.pid, hostname: '', component: 'registry', model: 'm', version: '1', runtime: 'js', msg: 'model deployed',
    });
    assert.ok(Math.abs(Date.now() - r.time) < 5000);
    assert.equal(logger.isLevelEnabled('debug'), false);
    assert.equal(logger.isLevelEnabled('warn'), true);
  });

  it('text format: time, level, message and key=value, quoting what needs it', () => {
    const lines: string[] = [];
    const logger = createLogger({ level: 'trace', format: 'text', sink: { write: (l: string) => lines.push(l) } });
    logger.warn({ replica: 'm:1#0', reason: 'killed by SIGKILL', restartInMs: 500 }, 'replica exited');
    assert.match(lines[0]!, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z WARN  replica exited replica=m:1#0 reason="killed by SIGKILL" restartInMs=500\n$/);
    assert.equal(formatRecord({ level: 50, msg: 'internal error', err: 'boom', stack: 'Error: boom\n    at x' }, false), 'internal error err=boom\nError: boom\n    at x');
  });

  it('the line seams of deep code and of tests', () => {
    const seen: string[] = [];
    const text = textLogger((l) => seen.push(l), 'info');
    messageLog(text.child({ component: 'docker' }), 'warn')('docker: machine b is down');
    messageLog(text, 'debug')('not shown at info');
    text.info({ app: 'a', models: ['m'] }, 'models linked');
    assert.deepEqual(seen, ['docker: machine b is down component=docker', 'models linked app=a models=["m"]']);
  });
});

describe('clipper start logs its events as JSON lines', () => {
  it('deploys, links, switches, a killed replica, autoscaling, request ids on good and bad requests', { timeout: 120_000 }, async () => {
    const server = await startClipper(tempDir(), ['--log-level', 'debug', '--measure-interval-ms', '200']);
    const records = (): Rec[] => server.output().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Rec);
    const find = (msg: string, where: (r: Rec) => boolean = () => true) => records().find((r) => r.msg === msg && where(r));
    const waitRecord = (msg: string, where: (r: Rec) => boolean, timeoutMs = 30_000) => waitFor(() => find(msg, where), timeoutMs, `a "${msg}" record`) as Promise<Rec>;
    const admin = async (endpoint: string, body: unknown, reqId?: string) => {
      const r = await send(`${server.adminUrl}/admin/${endpoint}`, body, false, reqId ? { 'x-request-id': reqId } : {});
      assert.equal(r.status, 200, `${endpoint}: ${JSON.stringify(r.body)}`);
      if (reqId) assert.equal(r.headers.get('x-request-id'), reqId, `${endpoint} echoes the request id`);
      return r;
    };
    try {
      const started = find('server started');
      assert.equal(started?.level, 30);
      assert.equal(started?.adminUrl, server.adminUrl);
      assert.equal(started?.pid, server.proc.pid);

      // Deploy, link, a second version, and back to the first (a rollback).
      await admin('add_app', { name: 'logs', input_type: 'strings', default_output: 'd', latency_slo_micros: 5_000_000 }, 'req-add-app');
      await admin('add_model', { model_name: 'lm', model_version: '1', input_type: 'strings', model_data_path: writeJsModel(ECHO_MODEL('one')) }, 'req-deploy-1');
      await admin('add_model_links', { app_name: 'logs', model_names: ['lm'] }, 'req-link');
      await admin('add_model', { model_name: 'lm', model_version: '2', input_type: 'strings', model_data_path: writeJsModel(ECHO_MODEL('two')) }, 'req-deploy-2');
      await admin('set_model_version', { model_name: 'lm', model_version: '1' }, 'req-rollback');

      assert.deepEqual(pick(find('application created'), ['level', 'component', 'reqId', 'app', 'inputType']),
        { level: 30, component: 'registry', reqId: 'req-add-app', app: 'logs', inputType: 'strings' });
      assert.deepEqual(pick(find('model deployed', (r) => r.version === '1'), ['level', 'reqId', 'model', 'runtime', 'replicas']),
        { level: 30, reqId: 'req-deploy-1', model: 'lm', runtime: 'js', replicas: 1 });
      assert.equal(find('model deployed', (r) => r.version === '2')?.reqId, 'req-deploy-2');
      assert.deepEqual(pick(find('models linked'), ['reqId', 'app', 'models', 'linked']), { reqId: 'req-link', app: 'logs', models: ['lm'], linked: ['lm'] });
      assert.deepEqual(pick(find('current version set'), ['level', 'reqId', 'model', 'version', 'previous', 'rollback']),
        { level: 30, reqId: 'req-rollback', model: 'lm', version: '1', previous: '2', rollback: true });

      // Replicas: started with the pid of the process, ready; killed from outside, exited with why, restarted.
      const first = await waitRecord('replica ready', (r) => r.replica === 'lm:1#0');
      assert.deepEqual(pick(first, ['level', 'component', 'model', 'version']), { level: 30, component: 'manager', model: 'lm', version: '1' });
      assert.equal(typeof first.startupMs, 'number');
      const start = find('replica started', (r) => r.replica === 'lm:1#0');
      const pid = replicaPid('lm:1#0');
      assert.ok(pid, 'the replica process is running');
      assert.equal(start?.replicaPid, pid, 'the start record names the process');
      assert.equal(start?.restarts, 0);
      process.kill(pid, 'SIGKILL');
      const exited = await waitRecord('replica exited', (r) => r.replica === 'lm:1#0');
      assert.deepEqual(pick(exited, ['level', 'model', 'version', 'reason', 'cause', 'restarts']),
        { level: 40, model: 'lm', version: '1', reason: 'killed by SIGKILL', cause: 'killed', restarts: 1 });
      assert.equal(typeof exited.restartInMs, 'number');
      const restarted = await waitRecord('replica restarted', (r) => r.replica === 'lm:1#0');
      assert.equal(restarted.restarts, 1);
      assert.notEqual(restarted.replicaPid, pid);
      await waitFor(() => records().filter((r) => r.msg === 'replica ready' && r.replica === 'lm:1#0').length === 2, 30_000, 'the restarted replica to be ready');

      // Queries: the id echoed; an answered one is not logged (below debug), a refused one is, with its id.
      const ok = await send(`${server.queryUrl}/logs/predict`, { input: 'x' }, false, { 'x-request-id': 'req-predict-1' });
      assert.deepEqual([ok.status, ok.body.output, ok.headers.get('x-request-id')], [200, 'one:x', 'req-predict-1']);
      const bad = await send(`${server.queryUrl}/logs/predict`, '{"input":', true, { 'x-request-id': 'req-bad-1' });
      assert.deepEqual([bad.status, bad.headers.get('x-request-id')], [400, 'req-bad-1']);
      const fresh = await send(`${server.queryUrl}/nope/predict`, { input: 'x' }, false, { 'x-request-id': 'no spaces allowed' });
      assert.equal(fresh.status, 404);
      const generated = fresh.headers.get('x-request-id')!;
      assert.match(generated, /^[0-9a-f-]{36}$/, 'an insane client id is replaced');
      const refused = await waitRecord('request refused', (r) => r.reqId === 'req-bad-1', 5_000);
      assert.deepEqual(pick(refused, ['level', 'component', 'method', 'url', 'status', 'error']),
        { level: 20, component: 'http', method: 'POST', url: '/logs/predict', status: 400, error: 'MALFORMED_JSON' });
      assert.equal((await waitRecord('request refused', (r) => r.reqId === generated, 5_000)).error, 'APP_NOT_FOUND');
      assert.equal(records().filter((r) => r.reqId === 'req-predict-1').length, 0, 'nothing logged for an answered query at debug');

      // The autoscaler: down to zero after its delay, and up again for a query.
      await admin('add_app', { name: 'zero', input_type: 'strings', default_output: 'd', latency_slo_micros: 20_000_000 });
      await admin('add_model', { model_name: 'zm', model_version: '1', input_type: 'strings', model_data_path: writeJsModel(ECHO_MODEL('z')) });
      await admin('add_model_links', { app_name: 'zero', model_names: ['zm'] });
      await admin('set_autoscaling', { model_name: 'zm', min_replicas: 0, max_replicas: 2, downscale_delay_s: 1 }, 'req-autoscale');
      assert.equal(find('autoscaling on', (r) => r.model === 'zm')?.reqId, 'req-autoscale');
      const down = await waitRecord('autoscaler scaled', (r) => r.model === 'zm' && r.to === 0);
      assert.deepEqual(pick(down, ['level', 'component', 'version', 'from']), { level: 30, component: 'controller', version: '1', from: 1 });
      assert.equal(typeof down.reason, 'string');
      await waitRecord('replica exited', (r) => r.model === 'zm' && r.level === 30 && r.cause === 'stopped');
      const z = await send(`${server.queryUrl}/zero/predict`, { input: 'q' });
      assert.equal(z.body.output, 'z:q');
      await waitRecord('autoscaler scaled', (r) => r.model === 'zm' && r.from === 0 && r.to === 1, 5_000);

      // Every line on stderr is a record: level, time and msg at least.
      const lines = server.output().split('\n').filter((l) => l !== '' && !l.startsWith('clipper: query API'));
      for (const l of lines) {
        const r = JSON.parse(l) as Rec;
        assert.ok(typeof r.level === 'number' && typeof r.time === 'number' && typeof r.msg === 'string', l);
      }
    } finally {
      server.proc.kill('SIGTERM');
      assert.equal(await server.exited, 0, server.output());
    }
    assert.ok(find('server stopped'), 'the stop is logged');
  });
});

function pick(r: Rec | undefined, keys: string[]): Rec | undefined {
  return r && Object.fromEntries(keys.map((k) => [k, r[k]]));
}
