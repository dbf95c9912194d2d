/**
 * Under overload the V2 transports answer what they can and refuse the rest at once: REST with
 * 503, `{"error"}` and Retry-After; gRPC with UNAVAILABLE (retryable). The server answers normally
 * once the flood has passed.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { v2GrpcClient, type V2Client } from '../helpers/grpc-client.ts';
import { deployJsApp, send, startTestServer, type TestServer } from '../helpers/server.ts';

/** 150 ms per batch, one input per batch (batch_size 1 is set below through the admin API). */
const SLOW = 'export async function predict(xs) { await new Promise((r) => setTimeout(r, 150)); return xs.map((x) => "done:" + x); }\n';

type Client = V2Client;

describe('V2 under overload', () => {
  let s: TestServer;
  let client: Client;
  before(async () => {
    // At most 2 inputs wait per version: the third in flight is refused with QUEUE_FULL.
    s = await startTestServer({ grpcPort: 0, maxQueue: 2, maxBatchSize: 1 });
    await deployJsApp(s, { app: 'busy', inputType: 'strings', source: SLOW, defaultOutput: 'late', sloMicros: 10_000_000 });
    client = v2GrpcClient(s.app.grpcPort);
  });
  after(async () => {
    client?.close();
    await s?.close();
  });

  const body = (x: string) => ({ inputs: [{ name: 't', datatype: 'BYTES', shape: [1], data: [x] }] });

  it('REST: 503 with Retry-After and a V2 error for what does not fit; the rest is answered', async () => {
    const flood = await Promise.all(Array.from({ length: 12 }, (_, i) => send(`${s.app.queryUrl}/v2/models/busy/infer`, body(`r${i}`))));
    const refused = flood.filter((r) => r.status === 503);
    const answered = flood.filter((r) => r.status === 200);
    assert.ok(refused.length >= 6, `${refused.length} of 12 refused`);
    assert.ok(answered.length >= 2, `${answered.length} of 12 answered`);
    assert.equal(refused.length + answered.length, 12, flood.map((r) => r.status).join(','));
    assert.deepEqual(Object.keys(refused[0]!.body), ['error']);
    assert.match(refused[0]!.body.error, /queue of busy-model:1 is full/);
    assert.equal(refused[0]!.headers.get('retry-after'), '1');
    assert.ok(answered.every((r) => /^done:r\d+$/.test(r.body.outputs[0].data[0])));
  });

  it('gRPC: UNAVAILABLE for what does not fit; the rest is answered', async () => {
    const call = (x: string) => new Promise<number>((resolve) => {
      client.ModelInfer!({ model_name: 'busy', inputs: [{ name: 't', datatype: 'BYTES', shape: [1], contents: { bytes_contents: [Buffer.from(x)] } }] }, new grpc.Metadata(), {}, (e) => resolve(e ? e.code : grpc.status.OK));
    });
    const codes = await Promise.all(Array.from({ length: 12 }, (_, i) => call(`g${i}`)));
    assert.ok(codes.filter((c) => c === grpc.status.UNAVAILABLE).length >= 6, codes.join(','));
    assert.ok(codes.filter((c) => c === grpc.status.OK).length >= 2, codes.join(','));
    assert.ok(codes.every((c) => c === grpc.status.OK || c === grpc.status.UNAVAILABLE), codes.join(','));
  });

  it('answers normally once the flood has passed', async () => {
    const r = await send(`${s.app.queryUrl}/v2/models/busy/infer`, body('calm'));
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal(r.body.outputs[0].data[0], 'done:calm');
  });
});
