/**
 * The V2 gRPC service through @grpc/grpc-js's own client (loading our grpc_service.proto): the
 * same calls as the KServe client test, a call deadline, the status mapping, and the port
 * released on close.
 */
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { after, before, describe, it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { v2GrpcClient, type V2Client } from '../helpers/grpc-client.ts';
import { ServingError } from '../../src/errors.ts';
import { V2Error, grpcCodeOf } from '../../src/v2/errors.ts';
import { deployJsApp, ECHO_MODEL, startTestServer, SUM_MODEL, type TestServer } from '../helpers/server.ts';

const SLOW_MODEL = 'export function predict(inputs) { const end = Date.now() + 800; while (Date.now() < end) {} return inputs.map((x) => x); }\n';

type Client = V2Client;

describe('V2 gRPC through @grpc/grpc-js', () => {
  let s: TestServer;
  let client: Client;
  const call = (method: string, req: unknown, opts: grpc.CallOptions = {}, md = new grpc.Metadata()) =>
    new Promise<any>((resolve, reject) => client[method]!(req, md, opts, (e, r) => (e ? reject(e) : resolve(r))));
  const code = async (p: Promise<unknown>): Promise<number> => p.then(() => grpc.status.OK, (e: grpc.ServiceError) => e.code);

  before(async () => {
    s = await startTestServer({ grpcPort: 0 });
    await deployJsApp(s, { app: 'sum', inputType: 'doubles', source: SUM_MODEL, defaultOutput: '-1', sloMicros: 2_000_000 });
    await deployJsApp(s, { app: 'echo', inputType: 'strings', source: ECHO_MODEL('v1'), defaultOutput: 'none', sloMicros: 2_000_000 });
    await deployJsApp(s, { app: 'slow', inputType: 'strings', source: SLOW_MODEL, defaultOutput: 'late', sloMicros: 5_000_000 });
    client = v2GrpcClient(s.app.grpcPort);
  });
  after(async () => {
    client?.close();
    await s?.close();
  });

  it('answers health, metadata and readiness', async () => {
    assert.deepEqual(await call('ServerLive', {}), { live: true });
    assert.deepEqual(await call('ServerReady', {}), { ready: true });
    assert.equal((await call('ServerMetadata', {})).name, 'clipper-ts');
    assert.deepEqual(await call('ModelReady', { name: 'echo', version: '1' }), { ready: true });
    const m = await call('ModelMetadata', { name: 'echo-model' });
    assert.equal(m.platform, 'clipper-js');
    assert.deepEqual(m.inputs, [{ name: 'input', datatype: 'BYTES', shape: ['-1'] }]);
    assert.equal(await code(call('ModelMetadata', { name: 'nope' })), grpc.status.NOT_FOUND);
  });

  it('infers typed and raw', async () => {
    const typed = await call('ModelInfer', { model_name: 'sum', inputs: [{ name: 'x', datatype: 'INT64', shape: [2, 2], contents: { int64_contents: ['1', '2', '30', '40'] } }] });
    assert.deepEqual(typed.outputs, [{ name: 'output', datatype: 'FP64', shape: ['2'], contents: { fp64_contents: [3, 70] } }]);
    const rawIn = Buffer.from(new Float64Array([0.5, 0.25]).buffer);
    const raw = await call('ModelInfer', { model_name: 'sum', model_version: '1', inputs: [{ name: 'x', datatype: 'FP64', shape: [1, 2] }], raw_input_contents: [rawIn] });
    assert.equal(raw.model_version, '1');
    assert.equal(raw.outputs[0].contents, undefined);
    assert.equal(raw.raw_output_contents[0].readDoubleLE(0), 0.75);
    const echo = await call('ModelInfer', { model_name: 'echo', inputs: [{ name: 't', datatype: 'BYTES', shape: [1, 1], contents: { bytes_contents: [Buffer.from('hé')] } }] });
    assert.deepEqual(echo.outputs[0].contents.bytes_contents.map(String), ['v1:hé']);
  });

  it('answers errors with their codes', async () => {
    const infer = (req: Record<string, unknown>, opts?: grpc.CallOptions) => code(call('ModelInfer', { model_name: 'sum', inputs: [{ name: 'x', datatype: 'FP64', shape: [1], contents: { fp64_contents: [1] } }], ...req }, opts));
    assert.equal(await infer({ model_name: 'nope' }), grpc.status.NOT_FOUND);
    assert.equal(await infer({ model_version: '4' }), grpc.status.NOT_FOUND);
    assert.equal(await infer({ inputs: [{ name: 'x', datatype: 'BYTES', shape: [1], contents: { bytes_contents: [Buffer.from('a')] } }] }), grpc.status.INVALID_ARGUMENT);
    assert.equal(await infer({ inputs: [] }), grpc.status.INVALID_ARGUMENT);
    assert.equal(await infer({ model_name: 'sum-model' }), grpc.status.OK, 'a model directly');
    assert.equal(await infer({ raw_input_contents: [Buffer.alloc(8), Buffer.alloc(8)] }), grpc.status.INVALID_ARGUMENT);
    const slow = code(call('ModelInfer', { model_name: 'slow', inputs: [{ name: 't', datatype: 'BYTES', shape: [1], contents: { bytes_contents: [Buffer.from('z')] } }] }, { deadline: Date.now() + 150 }));
    assert.equal(await slow, grpc.status.DEADLINE_EXCEEDED);
  });

  it('returns a request id in the trailing metadata: the client\'s own when sane, else a fresh one', async () => {
    const trailer = (method: string, req: unknown, id?: string) => new Promise<grpc.Metadata>((resolve) => {
      const md = new grpc.Metadata();
      if (id !== undefined) md.set('x-request-id', id);
      (client[method]!(req, md, {}, () => {}) as unknown as grpc.ClientUnaryCall).on('status', (st: grpc.StatusObject) => resolve(st.metadata));
    });
    assert.deepEqual((await trailer('ServerLive', {}, 'grpc-req-1')).get('x-request-id'), ['grpc-req-1']);
    const failed = await trailer('ModelInfer', { model_name: 'nope', inputs: [] }, 'grpc-req-2');
    assert.deepEqual(failed.get('x-request-id'), ['grpc-req-2']);
    const [fresh] = (await trailer('ModelInfer', { model_name: 'nope', inputs: [] }, 'not sane: spaces')).get('x-request-id');
    assert.match(String(fresh), /^[0-9a-f-]{36}$/);
  });

  it('maps overload to UNAVAILABLE and a message too large to RESOURCE_EXHAUSTED', () => {
    assert.equal(grpcCodeOf(new ServingError('QUEUE_FULL', 'full')), grpc.status.UNAVAILABLE);
    assert.equal(grpcCodeOf(new ServingError('OVERLOADED', 'busy')), grpc.status.UNAVAILABLE);
    assert.equal(grpcCodeOf(new V2Error(503, 'not ready')), grpc.status.UNAVAILABLE);
    assert.equal(grpcCodeOf(new ServingError('DEADLINE_EXCEEDED', 'late')), grpc.status.DEADLINE_EXCEEDED);
    assert.equal(grpcCodeOf(new V2Error(413, 'big')), grpc.status.RESOURCE_EXHAUSTED);
    assert.equal(grpcCodeOf(new V2Error(404, 'gone')), grpc.status.NOT_FOUND);
    assert.equal(grpcCodeOf(new V2Error(400, 'bad')), grpc.status.INVALID_ARGUMENT);
  });
});

describe('the gRPC port', () => {
  it('is released on close, and -1 turns gRPC off', async () => {
    const s = await startTestServer({ grpcPort: 0 });
    const port = s.app.grpcPort;
    assert.ok(port > 0);
    await s.close();
    const probe = createServer();
    await new Promise<void>((resolve, reject) => probe.once('error', reject).listen(port, '127.0.0.1', () => resolve()));
    await new Promise<void>((resolve) => probe.close(() => resolve()));
    const off = await startTestServer({ grpcPort: -1 });
    assert.equal(off.app.grpcPort, -1);
    await off.close();
  });

  it('in use: the start fails with one line naming it', async () => {
    const holder = createServer();
    await new Promise<void>((resolve) => holder.listen(0, '127.0.0.1', () => resolve()));
    const port = (holder.address() as { port: number }).port;
    try {
      await assert.rejects(startTestServer({ grpcPort: port }), new RegExp(`^ServingError: port ${port} \\(V2 gRPC\\) is already in use on 127\\.0\\.0\\.1$|port ${port} \\(V2 gRPC\\) is already in use`));
    } finally {
      holder.close();
    }
  });
});
