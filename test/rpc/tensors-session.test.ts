/**
 * The `tensors` extension over real ZeroMQ sockets: the SDK's typed outputs reach the frontend as
 * RpcOutput tensors with the batch's compute time; plain v3 containers see nothing of it; the SDK
 * sends text to a frontend that did not accept it (one that predates the accepted list, one that
 * lists other extensions, one that accepts nothing); a malformed tensor answer fails its batch at once.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { Dealer, Router } from 'zeromq';
import {
  EXT_TENSORS, HeartbeatType, MessageType, decodeContainerMessage, encodeExtensionsAccepted, encodeHeartbeatReply, encodePredictRequest,
  encodeRegistration, encodeTensorResponse, type ContainerMessage,
} from '../../src/rpc/codec.ts';
import type { Replica, RpcOutput } from '../../src/rpc/replica.ts';
import { RpcServer } from '../../src/rpc/router-server.ts';
import { ContainerClient, InputError, TypedTensor, type PredictFn, type ServeOptions } from '../../src/runtimes/sdk.ts';
import { PYTHON, REPO_ROOT } from '../../src/manager/launch.ts';
import { tempDir, waitFor } from '../helpers/server.ts';
import { RawContainer, sleep } from './raw-container.ts';

const DOUBLES = 3;
const open: Array<{ close(): unknown }> = [];
after(async () => { for (const c of open.splice(0).reverse()) await c.close(); });

const f64 = (...v: number[]) => Buffer.from(Float64Array.from(v).buffer);
const floats = (b: Buffer) => [...new Float32Array(Uint8Array.from(b).buffer)];
const ints = (b: Buffer) => [...new Int32Array(Uint8Array.from(b).buffer)];

async function server(): Promise<RpcServer> {
  const s = new RpcServer({
    host: '127.0.0.1', port: 0, heartbeatTimeoutMs: 3000, predictTimeoutMs: 10_000,
    lookupVersion: (_n, v) => (v === '1' ? { inputTypeCode: DOUBLES } : undefined),
  });
  await s.start();
  open.push(s);
  return s;
}

function container(port: number, predict: PredictFn, name = 'm'): ContainerClient {
  const opts: ServeOptions = {
    modelName: name, modelVersion: '1', inputType: 'doubles', host: '127.0.0.1', port, replicaId: undefined, secret: undefined,
    serverKey: undefined, heartbeatIntervalMs: 200, frontendTimeoutMs: 3000,
  };
  const c = new ContainerClient(predict, opts);
  const running = c.run();
  open.push({ close: async () => { c.stop(); await running; } });
  return c;
}

async function replicaOf(s: RpcServer, name: string): Promise<Replica> {
  return (await waitFor(() => s.readyReplicas().find((r) => r.modelName === name), 10_000, `${name} to register`))!;
}

/** Doubles each input: a Float32Array for 3 values, a 2×2 Int32 tensor for 4, text for 1, an InputError for none. */
const mixed: PredictFn = async (inputs) => {
  await sleep(30);
  return inputs.map((x) => {
    const v = Array.from(x as Float64Array);
    if (v.length === 3) return Float32Array.from(v, (n) => 2 * n);
    if (v.length === 4) return new TypedTensor(Int32Array.from(v, (n) => 2 * n), [2, 2]);
    if (v.length === 1) return `one value: ${v[0]}`;
    return new InputError('no values');
  });
};

describe('tensors: SDK and frontend', () => {
  it('typed outputs arrive as RpcOutput tensors, with the compute time on every output', async () => {
    const s = await server();
    container(s.boundPort, mixed);
    const r = await replicaOf(s, 'm');
    assert.ok(r.extensions.has(EXT_TENSORS), 'the SDK declares the extension');
    // No wait needed: the accepted list is sent before 'ready', so it reaches the container before any batch.

    const outs = await s.predict(r, DOUBLES, [f64(1, 2, 3), f64(5), f64(1, 2, 3, 4), f64(), f64(0.5, -1, 1e6)]);
    assert.equal(outs.length, 5);
    const [a, text, grid, bad, b] = outs as [RpcOutput, RpcOutput, RpcOutput, RpcOutput, RpcOutput];
    assert.deepEqual([a.ok, a.tensor], [true, { datatype: 'FP32', shape: [3] }]);
    assert.deepEqual(floats(a.value), [2, 4, 6], 'raw little-endian float32 bytes');
    assert.deepEqual(floats(b.value), [1, -2, 2e6]);
    assert.deepEqual([grid.ok, grid.tensor], [true, { datatype: 'INT32', shape: [2, 2] }]);
    assert.deepEqual(ints(grid.value), [2, 4, 6, 8]);
    assert.deepEqual([text.ok, text.tensor, text.value.toString()], [true, undefined, 'one value: 5'], 'a string stays text in the same batch');
    assert.deepEqual([bad.ok, bad.tensor, bad.value.toString()], [false, undefined, 'no values']);
    const ms = outs.map((o) => o.computeMs);
    assert.ok(ms.every((m) => m === ms[0]), `the same compute time on every output: ${ms}`);
    assert.ok(ms[0]! >= 25 && ms[0]! < 5000, `compute time covers the 30 ms predict: ${ms[0]}`);
  });

  it('a predict that throws reaches the frontend as error outputs with the compute time', async () => {
    const s = await server();
    container(s.boundPort, () => { throw new Error('kaput'); }, 'thrower');
    const r = await replicaOf(s, 'thrower');
    const outs = await s.predict(r, DOUBLES, [f64(1), f64(2)]);
    assert.deepEqual(outs.map((o) => [o.ok, o.value.toString(), o.tensor]), [[false, 'predict failed: kaput', undefined], [false, 'predict failed: kaput', undefined]]);
    assert.ok(outs.every((o) => typeof o.computeMs === 'number' && o.computeMs === outs[0]!.computeMs));
  });

  it('a plain v3 container on the same frontend is served as before: text, no compute time, no type 2', async () => {
    const s = await server();
    const plain = new RawContainer(s.boundPort, { beatMs: 200, answer: (inputs) => inputs.map((b) => `len ${b.length}`) })
      .register({ name: 'plain', version: '1', typeText: String(DOUBLES) });
    open.push(plain);
    const r = await replicaOf(s, 'plain');
    assert.equal(r.extensions.size, 0);
    const outs = await s.predict(r, DOUBLES, [f64(1, 2), f64(3)]);
    assert.deepEqual(outs, [{ ok: true, value: Buffer.from('len 16') }, { ok: true, value: Buffer.from('len 8') }]);
    assert.equal(plain.heartbeats.includes(HeartbeatType.ExtensionsAccepted), false);
  });

  it('the Python library, told to declare tensors, sends numpy arrays as tensors', async () => {
    const s = await server();
    const model = join(tempDir('clipper-py-tensors-'), 'model.py');
    writeFileSync(model, [
      'import numpy as np',
      'def predict(inputs):',
      '    return [x.astype(np.float32) * 2 if len(x) > 1 else "one" for x in inputs]',
      '',
    ].join('\n'));
    const child = spawn(PYTHON, ['-m', 'clipper_container', model], {
      env: {
        ...process.env, PYTHONPATH: join(REPO_ROOT, 'python'), CLIPPER_MODEL_NAME: 'py', CLIPPER_MODEL_VERSION: '1', CLIPPER_INPUT_TYPE: 'doubles',
        CLIPPER_IP: '127.0.0.1', CLIPPER_PORT: String(s.boundPort), CLIPPER_EXTENSIONS: 'status,tensors',
      },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let log = '';
    child.stderr!.on('data', (d: Buffer) => { log += d.toString(); });
    open.push({ close: () => { if (child.exitCode === null) child.kill('SIGKILL'); } });
    const r = await replicaOf(s, 'py').catch((e) => { throw new Error(`${(e as Error).message}\n${log}`); });
    const outs = await s.predict(r, DOUBLES, [f64(1, 2, 3), f64(7)]);
    assert.deepEqual(outs[0]!.tensor, { datatype: 'FP32', shape: [3] });
    assert.deepEqual(floats(outs[0]!.value), [2, 4, 6]);
    assert.deepEqual([outs[1]!.tensor, outs[1]!.value.toString()], [undefined, 'one']);
    assert.equal(typeof outs[0]!.computeMs, 'number');
  });

  it('a malformed tensor answer fails its batch at once, not at the predict timeout', async () => {
    const s = await server();
    const sock = new Dealer({ linger: 0 });
    open.push(sock);
    sock.connect(`tcp://127.0.0.1:${s.boundPort}`);
    await sock.send([Buffer.alloc(0), Buffer.from([2, 0, 0, 0])]);
    const answering = (async () => {
      for await (const f of sock) {
        if (f[2]!.readUInt32LE() === MessageType.Heartbeat) {
          if (f[3]!.readUInt32LE() === HeartbeatType.RequestMetadata) {
            await sock.send(encodeRegistration({ modelName: 'liar', modelVersion: '1', inputTypeCode: DOUBLES, extensions: [EXT_TENSORS] }));
          }
          continue;
        }
        // 8 bytes announced as FP32 [3] (12 bytes).
        const frames = encodeTensorResponse(f[3]!, [{ ok: true, data: Buffer.alloc(8), tensor: { datatype: 'FP32', shape: [2] } }]);
        frames[frames.length - 1] = Buffer.from('{"tensors":[{"datatype":"FP32","shape":[3]}]}');
        await sock.send(frames);
      }
    })().catch(() => {});
    const r = await replicaOf(s, 'liar');
    const started = Date.now();
    await assert.rejects(s.predict(r, DOUBLES, [f64(1)]), (e: Error & { code?: string }) => {
      assert.equal(e.code, 'MODEL_ERROR');
      assert.match(e.message, /malformed answer: .*output 0 has 8 bytes, its FP32 \[3\] layout needs 12/);
      return true;
    });
    assert.ok(Date.now() - started < 2000);
    assert.equal(s.readyReplicas().find((x) => x.modelName === 'liar')?.state, 'READY', 'the replica stays in rotation');
    sock.close();
    await answering;
  });
});

/** A frontend written in the test: answers registration with `acceptance`, then sends one batch and keeps its answer. */
class FakeFrontend {
  readonly socket = new Router({ linger: 0 });
  registration: Extract<ContainerMessage, { kind: 'register' }> | undefined;
  answer: ContainerMessage | undefined;
  answerType: number | undefined;
  port = 0;

  constructor(private readonly acceptance: Buffer[] | undefined, private readonly inputs: Buffer[]) {}

  async start(): Promise<this> {
    await this.socket.bind('tcp://127.0.0.1:0');
    this.port = Number(this.socket.lastEndpoint!.split(':').pop());
    void this.loop();
    return this;
  }

  close(): void {
    this.socket.close();
  }

  private async loop(): Promise<void> {
    try {
      for await (const [identity, ...frames] of this.socket) {
        const msg = decodeContainerMessage(frames as Buffer[]);
        const send = (f: Buffer[]) => this.socket.send([identity!, ...f]);
        if (msg.kind === 'heartbeat') await send(encodeHeartbeatReply(this.registration ? HeartbeatType.KeepAlive : HeartbeatType.RequestMetadata));
        else if (msg.kind === 'register' && !this.registration) {
          this.registration = msg;
          if (this.acceptance) await send(this.acceptance);
          await sleep(50);
          await send(encodePredictRequest(1, DOUBLES, this.inputs));
        } else if (msg.kind === 'response') {
          this.answer = msg;
          this.answerType = frames[1]!.readUInt32LE();
        }
      }
    } catch {
      // closed
    }
  }
}

describe('tensors: the SDK before a frontend that did not accept them', () => {
  const doubled: PredictFn = (inputs) => inputs.map((x) => Float32Array.from(x as Float64Array, (n) => 2 * n));
  const cases: Array<[string, Buffer[] | undefined, number]> = [
    ['type 2 without a list (a frontend that predates it): status only', encodeHeartbeatReply(HeartbeatType.ExtensionsAccepted), MessageType.ContentWithStatus],
    ['a list without tensors', encodeExtensionsAccepted(['status', 'frontends']), MessageType.ContentWithStatus],
    ['no type 2 at all', undefined, MessageType.ContainerContent],
    ['a list with tensors (the control)', encodeExtensionsAccepted(['status', 'frontends', 'tensors']), MessageType.Tensors],
  ];
  for (const [what, acceptance, expected] of cases) {
    it(what, async () => {
      const fe = await new FakeFrontend(acceptance, [f64(1, 2, 3), f64(0.25)]).start();
      open.push(fe);
      container(fe.port, doubled, 'typed');
      await waitFor(() => fe.answer, 10_000, 'the answer');
      assert.ok(fe.registration!.extensions!.includes(EXT_TENSORS), 'the registration declares tensors');
      assert.equal(fe.answerType, expected);
      const msg = fe.answer as Extract<ContainerMessage, { kind: 'response' }>;
      if (expected === MessageType.Tensors) {
        assert.deepEqual(msg.tensors, [{ datatype: 'FP32', shape: [3] }, { datatype: 'FP32', shape: [1] }]);
        assert.deepEqual(floats(msg.outputs[0]!), [2, 4, 6]);
        assert.equal(typeof msg.computeUs, 'number');
      } else {
        assert.deepEqual(msg.outputs.map(String), ['[2,4,6]', '[0.5]'], 'typed arrays as JSON arrays of numbers');
        assert.equal(msg.tensors, undefined);
      }
    });
  }
});
