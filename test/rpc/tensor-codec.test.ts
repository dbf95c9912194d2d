/** The `tensors` extension's frames (docs/rpc.md, Extensions): the accepted list and message type 4. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  decodeContainerMessage, decodeFrontendMessage, encodeExtensionsAccepted, encodeHeartbeatReply, encodeResponse, encodeTensorResponse,
  RpcDecodeError, tensorByteLength, type ResponseOutput,
} from '../../src/rpc/codec.ts';

const id = (n: number) => { const b = Buffer.alloc(4); b.writeUInt32LE(n); return b; };
const bytes = (a: ArrayBufferView) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);
const fp32 = (...v: number[]) => bytes(Float32Array.from(v));

type Response = Extract<ReturnType<typeof decodeContainerMessage>, { kind: 'response' }>;
function response(frames: Buffer[]): Response {
  const m = decodeContainerMessage(frames);
  assert.equal(m.kind, 'response');
  return m as Response;
}

function decodeError(frames: Buffer[]): RpcDecodeError {
  try {
    decodeContainerMessage(frames);
  } catch (e) {
    assert.ok(e instanceof RpcDecodeError, `expected an RpcDecodeError, got ${String(e)}`);
    return e;
  }
  assert.fail('decoded a malformed message');
}

describe('tensors extension: extensions accepted', () => {
  it('is heartbeat type 2 followed by one JSON frame listing the accepted extensions', () => {
    const frames = encodeExtensionsAccepted(['status', 'tensors']);
    assert.equal(frames[0]!.length, 0);
    assert.deepEqual(frames.slice(1, 4).map((f) => f.readUInt32LE()), [3, 2, 2], 'version, heartbeat, extensions accepted');
    assert.deepEqual(JSON.parse(frames[4]!.toString()), { accepted: ['status', 'tensors'] });
    assert.deepEqual(decodeFrontendMessage(frames), { kind: 'accepted', extensions: ['status', 'tensors'] });
  });

  it('reads type 2 without the frame (a frontend that predates it) as `status` only', () => {
    assert.deepEqual(decodeFrontendMessage(encodeHeartbeatReply(2)), { kind: 'accepted', extensions: ['status'] });
    assert.deepEqual(decodeFrontendMessage([...encodeHeartbeatReply(2), Buffer.alloc(0)]), { kind: 'accepted', extensions: ['status'] });
  });

  it('refuses an accepted frame that is not {"accepted": [names]}', () => {
    for (const json of ['nope', '{}', 'null', '{"accepted": "tensors"}', '{"accepted": [1]}']) {
      assert.throws(() => decodeFrontendMessage([...encodeHeartbeatReply(2), Buffer.from(json)]), RpcDecodeError, json);
    }
  });
});

describe('tensors extension: message type 4', () => {
  it('lays out one layout for the batch once, with statuses and the compute time', () => {
    const outputs: ResponseOutput[] = [
      { ok: true, data: fp32(1, 2, 3), tensor: { datatype: 'FP32', shape: [3] } },
      { ok: false, data: Buffer.from('wrong input length') },
      { ok: true, data: fp32(4.5, -1, 0), tensor: { datatype: 'FP32', shape: [3] } },
    ];
    const frames = encodeTensorResponse(id(7), outputs, 1234.4);
    assert.equal(frames[0]!.length, 0);
    assert.equal(frames[1]!.readUInt32LE(), 4, 'message type 4');
    assert.equal(frames[2]!.readUInt32LE(), 7, 'msg id echoed');
    const header = frames[4]!;
    assert.equal(Number(frames[3]!.readBigUInt64LE()), header.length);
    assert.deepEqual([0, 8, 16, 24].map((o) => Number(header.readBigUInt64LE(o))), [3, 12, 18, 12], 'n, then each output\'s byte length');
    assert.deepEqual(frames.slice(5, 8), outputs.map((o) => o.data), 'outputs as they are, raw little-endian');
    assert.deepEqual([...frames[8]!], [0, 1, 0], 'one status byte per output');
    assert.deepEqual(JSON.parse(frames[9]!.toString()), { compute_us: 1234, tensors: [{ datatype: 'FP32', shape: [3] }] }, 'no per-output JSON');
    assert.equal(frames.length, 10);

    const back = response(frames);
    assert.equal(back.msgId, 7);
    assert.equal(back.computeUs, 1234);
    assert.deepEqual([...back.status!], [0, 1, 0]);
    assert.deepEqual(back.tensors, [{ datatype: 'FP32', shape: [3] }, undefined, { datatype: 'FP32', shape: [3] }]);
    assert.deepEqual([...new Float32Array(Uint8Array.from(back.outputs[2]!).buffer)], [4.5, -1, 0]);
    assert.notEqual(back.tensors![0]!.shape, back.tensors![2]!.shape, 'each output gets its own shape array');
  });

  it('mixes layouts and text outputs through tensor_index', () => {
    const outputs: ResponseOutput[] = [
      { ok: true, data: fp32(1, 2), tensor: { datatype: 'FP32', shape: [2] } },
      { ok: true, data: Buffer.from('"a string"') },
      { ok: true, data: bytes(BigInt64Array.of(-5n)), tensor: { datatype: 'INT64', shape: [] } },
      { ok: true, data: fp32(1, 2, 3, 4, 5, 6), tensor: { datatype: 'FP32', shape: [2, 3] } },
      { ok: true, data: fp32(9, 8), tensor: { datatype: 'FP32', shape: [2] } },
      { ok: false, data: Buffer.from('boom') },
    ];
    const frames = encodeTensorResponse(id(1), outputs);
    const trailer = JSON.parse(frames.at(-1)!.toString());
    assert.deepEqual(trailer, {
      tensors: [{ datatype: 'FP32', shape: [2] }, { datatype: 'INT64', shape: [] }, { datatype: 'FP32', shape: [2, 3] }],
      tensor_index: [0, -1, 1, 2, 0, -1],
    });
    const back = response(frames);
    assert.equal(back.computeUs, undefined);
    assert.equal('computeUs' in back, false);
    assert.deepEqual(back.tensors, [
      { datatype: 'FP32', shape: [2] }, undefined, { datatype: 'INT64', shape: [] }, { datatype: 'FP32', shape: [2, 3] }, { datatype: 'FP32', shape: [2] }, undefined,
    ]);
    assert.equal(back.outputs[1]!.toString(), '"a string"');
  });

  it('carries an all-text batch (and an empty one) with no layouts', () => {
    const back = response(encodeTensorResponse(id(2), [{ ok: true, data: Buffer.from('x') }, { ok: true, data: Buffer.from('{"y":1}') }], 5));
    assert.deepEqual(back.tensors, [undefined, undefined]);
    assert.equal(back.computeUs, 5);
    const empty = encodeTensorResponse(id(3), [], 0);
    assert.deepEqual(JSON.parse(empty.at(-1)!.toString()), { compute_us: 0 });
    assert.deepEqual(response(empty).outputs, []);
  });

  it('knows every datatype\'s element size, BOOL to FP64', () => {
    assert.equal(tensorByteLength({ datatype: 'BOOL', shape: [3] }), 3);
    assert.equal(tensorByteLength({ datatype: 'FP16', shape: [2, 2] }), 8);
    assert.equal(tensorByteLength({ datatype: 'UINT64', shape: [] }), 8);
    assert.equal(tensorByteLength({ datatype: 'FP32', shape: [0, 5] }), 0);
    assert.ok(Number.isNaN(tensorByteLength({ datatype: 'FP64', shape: [2 ** 30, 2 ** 30] })));
  });

  it('refuses malformed type 4 messages with a decode error that names the msg id', () => {
    const good = encodeTensorResponse(id(9), [
      { ok: true, data: fp32(1, 2, 3), tensor: { datatype: 'FP32', shape: [3] } },
      { ok: true, data: Buffer.from('t') },
    ], 10);
    assert.equal(response(good).tensors!.length, 2);
    const n = good.length;
    const withTrailer = (t: unknown) => [...good.slice(0, n - 1), Buffer.from(typeof t === 'string' ? t : JSON.stringify(t))];
    const cases: Array<[string, Buffer[]]> = [
      ['no trailer', good.slice(0, n - 1)],
      ['no status frame nor trailer', good.slice(0, n - 2)],
      ['status frame of the wrong length', [...good.slice(0, n - 2), Buffer.from([0]), good[n - 1]!]],
      ['trailer not JSON', withTrailer('{"tensors": [')],
      ['trailer an array', withTrailer([])],
      ['trailer null', withTrailer('null')],
      ['negative compute time', withTrailer({ compute_us: -1 })],
      ['compute time a string', withTrailer({ compute_us: '5' })],
      ['tensors not a list', withTrailer({ tensors: { datatype: 'FP32', shape: [3] } })],
      ['BYTES is not a tensor datatype', withTrailer({ tensors: [{ datatype: 'BYTES', shape: [3] }], tensor_index: [0, -1] })],
      ['unknown datatype', withTrailer({ tensors: [{ datatype: 'FP128', shape: [3] }], tensor_index: [0, -1] })],
      ['negative dim', withTrailer({ tensors: [{ datatype: 'FP32', shape: [-3] }], tensor_index: [0, -1] })],
      ['fractional dim', withTrailer({ tensors: [{ datatype: 'FP32', shape: [1.5] }], tensor_index: [0, -1] })],
      ['rank 33', withTrailer({ tensors: [{ datatype: 'FP32', shape: new Array(33).fill(1) }], tensor_index: [0, -1] })],
      ['several layouts without an index', withTrailer({ tensors: [{ datatype: 'FP32', shape: [3] }, { datatype: 'INT8', shape: [1] }] })],
      ['index of the wrong length', withTrailer({ tensors: [{ datatype: 'FP32', shape: [3] }], tensor_index: [0] })],
      ['index out of range', withTrailer({ tensors: [{ datatype: 'FP32', shape: [3] }], tensor_index: [0, 1] })],
      ['index not integers', withTrailer({ tensors: [{ datatype: 'FP32', shape: [3] }], tensor_index: [0, '-1'] })],
      ['bytes short of the shape', withTrailer({ tensors: [{ datatype: 'FP32', shape: [4] }], tensor_index: [0, -1] })],
      ['the text output read as a tensor', withTrailer({ tensors: [{ datatype: 'FP32', shape: [3] }] })],
      ['huge shape', withTrailer({ tensors: [{ datatype: 'FP64', shape: [2 ** 40, 2 ** 40] }], tensor_index: [0, -1] })],
    ];
    for (const [what, frames] of cases) {
      const e = decodeError(frames);
      assert.equal(e.msgId, 9, `${what}: the error names the batch (${e.message})`);
    }
    assert.match(decodeError(withTrailer({ tensors: [{ datatype: 'FP32', shape: [4] }], tensor_index: [0, -1] })).message, /output 0 has 12 bytes, its FP32 \[4\] layout needs 16/);
    assert.equal(decodeError([Buffer.alloc(0), Buffer.from([4, 0, 0, 0])]).msgId, undefined, 'no msg id to name');
  });

  it('ignores the layout of an error output, and unknown trailer keys', () => {
    const frames = encodeResponse(id(4), [Buffer.from('boom'), fp32(1)], Uint8Array.from([1, 0]));
    frames[1] = Buffer.from([4, 0, 0, 0]);
    frames.push(Buffer.from(JSON.stringify({ tensors: [{ datatype: 'FP32', shape: [1] }], tensor_index: [0, 0], later: { x: 1 } })));
    const back = response(frames);
    assert.deepEqual(back.tensors, [undefined, { datatype: 'FP32', shape: [1] }]);
  });

  it('never throws anything but RpcDecodeError on damaged frames', () => {
    const good = encodeTensorResponse(id(5), [
      { ok: true, data: fp32(1, 2), tensor: { datatype: 'FP32', shape: [2] } },
      { ok: true, data: bytes(Int32Array.of(7)), tensor: { datatype: 'INT32', shape: [1] } },
      { ok: false, data: Buffer.from('e') },
    ], 3);
    let seed = 12345;
    const rand = (n: number) => { seed = (seed * 1103515245 + 12345) % 2 ** 31; return seed % n; };
    for (let round = 0; round < 2000; round++) {
      const frames = good.map((f) => Buffer.from(f));
      const f = frames[1 + rand(frames.length - 1)]!;
      switch (rand(3)) {
        case 0: if (f.length) f[rand(f.length)] = rand(256); break;
        case 1: frames.splice(1 + rand(frames.length - 1), 1); break;
        default: frames[1 + rand(frames.length - 1)] = f.subarray(0, rand(f.length + 1));
      }
      try {
        decodeContainerMessage(frames);
      } catch (e) {
        assert.ok(e instanceof RpcDecodeError, `round ${round}: ${String(e)}`);
      }
    }
  });
});
