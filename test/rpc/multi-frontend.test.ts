/**
 * One replica (the js runtime, a real process) serving several RpcServers at once: the ones in
 * CLIPPER_FRONTENDS from the start, one announced later through the `frontends` extension, and
 * leaving one that is no longer listed (never its primary). Replicas without the extension see
 * nothing of it. The readiness file follows the connections.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, it } from 'node:test';
import { HeartbeatType } from '../../src/rpc/codec.ts';
import { replicaSecret, versionSecret } from '../../src/rpc/replica-auth.ts';
import type { Replica } from '../../src/rpc/replica.ts';
import { RpcServer } from '../../src/rpc/router-server.ts';
import { ECHO_MODEL, tempDir, waitFor, writeJsModel } from '../helpers/server.ts';
import { RawContainer, sleep } from './raw-container.ts';

const key = Buffer.alloc(32, 7); // the cluster's shared replica key
const HEARTBEAT_TIMEOUT = 2000;
const open: Array<{ close(): unknown }> = [];
after(async () => { for (const c of open.splice(0).reverse()) await c.close(); });

type Server = RpcServer & { ready: Replica[]; lost: Replica[]; reasons: string[]; name: string };

async function server(name: string, heartbeatTimeoutMs = HEARTBEAT_TIMEOUT): Promise<Server> {
  const s = new RpcServer({
    host: '127.0.0.1', port: 0, heartbeatTimeoutMs, predictTimeoutMs: 10_000,
    security: { replicaKey: key, allowPlain: true }, lookupVersion: (n, v) => (v === '1' ? { inputTypeCode: 4 } : undefined),
  });
  await s.start();
  open.push(s);
  const out = Object.assign(s, { ready: [] as Replica[], lost: [] as Replica[], reasons: [] as string[], name });
  s.on('ready', (r: Replica) => out.ready.push(r));
  s.on('lost', (r: Replica, reason: string, silent: boolean) => {
    out.lost.push(r);
    out.reasons.push(`${reason}${silent ? ' (silent)' : ''}`);
  });
  return out;
}

function replica(env: Record<string, string>): ChildProcess & { log: () => string } {
  const main = join(import.meta.dirname, '../../src/runtimes/js/main.ts');
  const child = spawn(process.execPath, ['--import', 'tsx', main], {
    env: {
      ...process.env, CLIPPER_MODEL_NAME: 'm', CLIPPER_MODEL_VERSION: '1', CLIPPER_INPUT_TYPE: 'strings', CLIPPER_IP: '127.0.0.1',
      CLIPPER_MODEL_PATH: writeJsModel(ECHO_MODEL('m')), CLIPPER_HEARTBEAT_MS: '200', CLIPPER_FRONTEND_TIMEOUT_MS: '2000', ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let log = '';
  child.stdout!.on('data', (d: Buffer) => { log += d.toString(); });
  child.stderr!.on('data', (d: Buffer) => { log += d.toString(); });
  open.push({ close: () => { if (child.exitCode === null) child.kill('SIGKILL'); } });
  return Object.assign(child, { log: () => log });
}

const addr = (s: RpcServer, host = '127.0.0.1') => ({ host, port: s.boundPort });
const live = (s: RpcServer) => s.readyReplicas().filter((r) => r.modelName === 'm' && r.replicaId !== undefined);

async function echo(s: RpcServer, input: string): Promise<string> {
  const r = live(s)[0];
  assert.ok(r, 'a ready replica');
  const [out] = await s.predict(r, 4, [Buffer.from(input)]);
  assert.equal(out!.ok, true);
  return out!.value.toString();
}

it('a replica serves every frontend it is given or told about, and leaves the unlisted ones', async () => {
  const [a, b] = [await server('a'), await server('b')];
  // `a` calls itself by another name than the replica's CLIPPER_IP: the replica must not connect to it twice.
  a.setFrontends([addr(a, 'localhost'), addr(b)], addr(a, 'localhost'));
  const plain = new RawContainer(a.boundPort, { beatMs: 200 }).register({ name: 'plain', version: '1', typeText: '4' });
  const statusOnly = new RawContainer(a.boundPort, { beatMs: 200 }).register({ name: 'status', version: '1', typeText: '4', ext: { extensions: ['status'] } });
  open.push(plain, statusOnly);

  const readyFile = join(tempDir('clipper-ready-'), 'ready');
  const id = 'm:1#0';
  const proc = replica({
    CLIPPER_PORT: String(a.boundPort), CLIPPER_FRONTENDS: `127.0.0.1:${a.boundPort}, 127.0.0.1:${b.boundPort}`,
    CLIPPER_REPLICA_ID: id, CLIPPER_REPLICA_SECRET: replicaSecret(key, id, 'm', '1'), CLIPPER_READY_FILE: readyFile,
  });
  const both = await waitFor(() => live(a).length === 1 && live(b).length === 1, 30_000, 'the replica on both frontends').catch((e) => {
    throw new Error(`${(e as Error).message}\n${proc.log()}`);
  });
  assert.ok(both);
  assert.equal(live(a)[0]!.replicaId, id);
  assert.equal(live(b)[0]!.authenticated, true, 'the shared key makes its secret good on every frontend');
  assert.equal(await echo(a, 'x'), 'm:x');
  assert.equal(await echo(b, 'y'), 'm:y');
  await waitFor(() => existsSync(readyFile), 10_000, 'the readiness file');

  // A third frontend joins: announced by one frontend, the replica connects to it.
  const c = await server('c');
  a.setFrontends([addr(a, 'localhost'), addr(b), addr(c)], addr(a, 'localhost'));
  await waitFor(() => live(c).length === 1, 20_000, 'the replica on the new frontend');
  assert.equal(await echo(c, 'z'), 'm:z');

  // `b` leaves the cluster; the list comes from `c`, which does not list the primary either: the primary stays.
  c.setFrontends([addr(c)], addr(c));
  await waitFor(() => b.lost.length === 1, 20_000, 'b to lose the replica it no longer hears from');
  assert.match(proc.log(), /leaving frontend 127\.0\.0\.1:\d+: no longer a frontend of the cluster/);
  await sleep(HEARTBEAT_TIMEOUT + 500);
  assert.deepEqual([a.lost.length, c.lost.length], [0, 0], 'the primary and c still hear from it');
  assert.equal(await echo(a, 'p'), 'm:p');
  assert.equal(await echo(c, 'q'), 'm:q');
  assert.equal(live(a).length, 1, 'one connection to a, though it was listed as localhost');

  // Replicas without the extension never get the list, and keep being served.
  assert.equal(plain.heartbeats.includes(HeartbeatType.Frontends), false);
  assert.equal(statusOnly.heartbeats.includes(HeartbeatType.Frontends), false);
  assert.deepEqual(a.readyReplicas().map((r) => r.modelName).sort(), ['m', 'plain', 'status']);

  // Every frontend gone: the readiness file goes too.
  for (const s of [a, c]) await s.close();
  await waitFor(() => !existsSync(readyFile), 20_000, 'the readiness file to go');
  proc.kill('SIGTERM');
  await waitFor(() => proc.exitCode !== null, 10_000, 'the replica to exit');
});

it('a replica that stops says goodbye to every frontend, which drop it at once (not at their heartbeat timeout)', async () => {
  const [a, b] = [await server('a', 120_000), await server('b', 120_000)];
  const id = 'm:1#1';
  const proc = replica({
    CLIPPER_PORT: String(a.boundPort), CLIPPER_FRONTENDS: `127.0.0.1:${b.boundPort}`,
    CLIPPER_REPLICA_ID: id, CLIPPER_REPLICA_SECRET: replicaSecret(key, id, 'm', '1'),
  });
  await waitFor(() => live(a).length === 1 && live(b).length === 1, 30_000, 'the replica on both');
  proc.kill('SIGTERM');
  // With a two-minute heartbeat timeout, only the goodbye can explain a loss within the wait.
  await waitFor(() => a.lost.length === 1 && b.lost.length === 1, 30_000, 'both frontends to drop it');
  assert.deepEqual([...a.reasons, ...b.reasons], ['the replica is shutting down', 'the replica is shutting down'], 'not silent: nobody kills it');
  await waitFor(() => proc.exitCode !== null, 10_000, 'the replica to exit');
});

it('a pod replica registers everywhere with its version-wide secret', async () => {
  const [a, b] = [await server('a'), await server('b')];
  const proc = replica({
    CLIPPER_PORT: String(a.boundPort), CLIPPER_FRONTENDS: `127.0.0.1:${b.boundPort}`,
    CLIPPER_REPLICA_ID: 'pod/m-1-abcde', CLIPPER_REPLICA_SECRET: versionSecret(key, 'm', '1'),
  });
  await waitFor(() => live(a).length === 1 && live(b).length === 1, 30_000, 'the pod on both').catch((e) => {
    throw new Error(`${(e as Error).message}\n${proc.log()}`);
  });
  assert.deepEqual([live(a)[0]!.replicaId, live(b)[0]!.authenticated], ['pod/m-1-abcde', true]);
  assert.equal(await echo(b, 'w'), 'm:w');
  proc.kill('SIGTERM');
});

const PYTHON = process.env.CLIPPER_PYTHON ?? '/usr/bin/python3';
const pythonSkip = spawnSync(PYTHON, ['-c', 'import zmq, numpy'], { stdio: 'ignore' }).status === 0 ? false : `${PYTHON} with zmq and numpy is not available`;

it('the Python container follows the frontends list the same way', { skip: pythonSkip }, async () => {
  const [a, b, c] = [await server('a'), await server('b'), await server('c')];
  a.setFrontends([addr(a), addr(b), addr(c)], addr(a));
  const dir = tempDir('clipper-py-');
  writeFileSync(join(dir, 'model.py'), 'def predict(inputs):\n    return ["py:" + x for x in inputs]\n');
  const readyFile = join(dir, 'ready');
  const id = 'm:1#py';
  const child = spawn(PYTHON, ['-m', 'clipper_container'], {
    env: {
      ...process.env, PYTHONPATH: join(import.meta.dirname, '../../python'), CLIPPER_MODEL_NAME: 'm', CLIPPER_MODEL_VERSION: '1',
      CLIPPER_INPUT_TYPE: 'strings', CLIPPER_IP: '127.0.0.1', CLIPPER_PORT: String(a.boundPort), CLIPPER_MODEL_PATH: join(dir, 'model.py'),
      CLIPPER_FRONTENDS: `127.0.0.1:${b.boundPort}`, CLIPPER_REPLICA_ID: id, CLIPPER_REPLICA_SECRET: replicaSecret(key, id, 'm', '1'),
      CLIPPER_READY_FILE: readyFile, CLIPPER_HEARTBEAT_MS: '200', CLIPPER_FRONTEND_TIMEOUT_MS: '2000',
    },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let log = '';
  child.stderr!.on('data', (d: Buffer) => { log += d.toString(); });
  open.push({ close: () => { if (child.exitCode === null) child.kill('SIGKILL'); } });
  await waitFor(() => [a, b, c].every((s) => live(s).length === 1), 30_000, 'the python replica on all three').catch((e) => {
    throw new Error(`${(e as Error).message}\n${log}`);
  });
  for (const s of [a, b, c]) assert.equal(await echo(s, s.name), `py:${s.name}`);
  await waitFor(() => existsSync(readyFile), 10_000, 'the readiness file');
  a.setFrontends([addr(a)], addr(a));
  await waitFor(() => b.lost.length === 1 && c.lost.length === 1, 20_000, 'b and c to be left');
  assert.equal(await echo(a, 'still'), 'py:still');
  assert.match(log, /leaving frontend 127\.0\.0\.1:\d+: no longer a frontend of the cluster/);
  child.kill('SIGTERM');
  await waitFor(() => child.exitCode !== null, 10_000, 'the container to exit');
  assert.equal(existsSync(readyFile), false, 'removed on exit');
});
