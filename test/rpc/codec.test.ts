import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  decodeContainerMessage, decodeFrontendMessage, encodeFrontendsMessage, encodeHeartbeat, encodeHeartbeatReply, encodePredictRequest,
  encodeRegistration, encodeResponse, formatAddress, parseAddress, RpcDecodeError,
} from '../../src/rpc/codec.ts';

describe('RPC v3 codec', () => {
  it('lays out a prediction request frame by frame, little-endian', () => {
    const frames = encodePredictRequest(7, 3, [Buffer.from([1, 2]), Buffer.from([3])]);
    assert.equal(frames[0]!.length, 0, 'empty delimiter');
    assert.equal(frames[1]!.readUInt32LE(), 3, 'rpc version');
    assert.equal(frames[2]!.readUInt32LE(), 1, 'container content');
    assert.equal(frames[3]!.readUInt32LE(), 7, 'msg id');
    assert.equal(frames[4]!.readUInt32LE(), 0, 'predict');
    assert.equal(Number(frames[5]!.readBigUInt64LE()), 32, 'header byte length');
    const h = frames[6]!;
    assert.deepEqual([0, 8, 16, 24].map((o) => Number(h.readBigUInt64LE(o))), [3, 2, 2, 1]);
    assert.deepEqual(frames.slice(7), [Buffer.from([1, 2]), Buffer.from([3])]);
    const back = decodeFrontendMessage(frames);
    assert.equal(back.kind, 'predict');
    if (back.kind === 'predict') {
      assert.equal(back.msgId.readUInt32LE(), 7);
      assert.equal(back.inputTypeCode, 3);
      assert.equal(back.inputs.length, 2);
    }
  });

  it('round-trips heartbeats both ways', () => {
    assert.deepEqual(decodeContainerMessage(encodeHeartbeat()), { kind: 'heartbeat' });
    assert.deepEqual(decodeFrontendMessage(encodeHeartbeatReply(1)), { kind: 'heartbeat', heartbeatType: 1 });
  });

  it('reads a plain v3 registration and one with our extension frame', () => {
    const plain = encodeRegistration({ modelName: 'm', modelVersion: '2', inputTypeCode: 4 });
    assert.equal(plain.length, 6);
    assert.equal(plain[4]!.toString(), '4', 'input type as decimal text');
    assert.deepEqual(decodeContainerMessage(plain), { kind: 'register', modelName: 'm', modelVersion: '2', inputTypeCode: 4 });
    const ext = decodeContainerMessage(encodeRegistration({ modelName: 'm', modelVersion: '2', inputTypeCode: 4, extensions: ['status'], replicaId: 'm:2#0' }));
    assert.deepEqual(ext, { kind: 'register', modelName: 'm', modelVersion: '2', inputTypeCode: 4, extensions: ['status'], replicaId: 'm:2#0' });
  });

  it('carries the replica secret in the extension frame', () => {
    const frames = encodeRegistration({ modelName: 'm', modelVersion: '2', inputTypeCode: 1, replicaId: 'm:2#0', secret: 'abc' });
    assert.deepEqual(JSON.parse(frames[6]!.toString()), { extensions: [], replica_id: 'm:2#0', secret: 'abc' });
    assert.deepEqual(decodeContainerMessage(frames), { kind: 'register', modelName: 'm', modelVersion: '2', inputTypeCode: 1, extensions: [], replicaId: 'm:2#0', secret: 'abc' });
    const odd = [...frames.slice(0, 6), Buffer.from('{"secret": 5, "replica_id": ["x"]}')];
    assert.deepEqual(decodeContainerMessage(odd), { kind: 'register', modelName: 'm', modelVersion: '2', inputTypeCode: 1 }, 'fields of the wrong type are ignored');
    assert.equal((decodeContainerMessage([...frames.slice(0, 6), Buffer.from('null')]) as { secret?: string }).secret, undefined);
  });

  it('reads the input type as decimal text only (the server judges the range)', () => {
    const withType = (text: string) => {
      const frames = encodeRegistration({ modelName: 'm', modelVersion: '1', inputTypeCode: 0 });
      frames[4] = Buffer.from(text);
      const msg = decodeContainerMessage(frames);
      return msg.kind === 'register' ? msg.inputTypeCode : undefined;
    };
    assert.equal(withType('3'), 3);
    assert.equal(withType('-1'), -1);
    for (const text of ['1e300', '', ' 3', '0x1', '3.0', 'doubles']) assert.ok(Number.isNaN(withType(text)), text);
  });

  it('decodes responses with and without the status extension', () => {
    const id = Buffer.alloc(4);
    id.writeUInt32LE(9);
    const plain = decodeContainerMessage(encodeResponse(id, [Buffer.from('a'), Buffer.from('bc')]));
    assert.equal(plain.kind, 'response');
    if (plain.kind === 'response') {
      assert.equal(plain.msgId, 9);
      assert.deepEqual(plain.outputs.map(String), ['a', 'bc']);
      assert.equal(plain.status, undefined);
    }
    const withStatus = decodeContainerMessage(encodeResponse(id, [Buffer.from('ok'), Buffer.from('boom')], Uint8Array.from([0, 1])));
    if (withStatus.kind === 'response') assert.deepEqual([...withStatus.status!], [0, 1]);
    else assert.fail('not a response');
  });

  it('lays out the frontends message as a heartbeat of type 3 with a JSON frame', () => {
    const frames = encodeFrontendsMessage(['10.0.0.1:7000', '[::1]:7001'], '10.0.0.1:7000');
    assert.equal(frames[0]!.length, 0);
    assert.deepEqual(frames.slice(1, 4).map((f) => f.readUInt32LE()), [3, 2, 3], 'version, heartbeat, type 3');
    assert.deepEqual(JSON.parse(frames[4]!.toString()), { frontends: ['10.0.0.1:7000', '[::1]:7001'], self: '10.0.0.1:7000' });
    assert.deepEqual(decodeFrontendMessage(frames), { kind: 'frontends', frontends: ['10.0.0.1:7000', '[::1]:7001'], self: '10.0.0.1:7000' });
    assert.deepEqual(decodeFrontendMessage(encodeFrontendsMessage([])), { kind: 'frontends', frontends: [], self: undefined });
    const bad = (json: string) => [...frames.slice(0, 4), Buffer.from(json)];
    for (const json of ['nope', '{}', '{"frontends": ["no-port"]}', '{"frontends": [7000]}', '{"frontends": ["h:70000"]}']) {
      assert.throws(() => decodeFrontendMessage(bad(json)), RpcDecodeError, json);
    }
    assert.throws(() => decodeFrontendMessage(frames.slice(0, 4)), RpcDecodeError, 'the JSON frame is missing');
  });

  it('reads and writes host:port addresses', () => {
    assert.deepEqual(parseAddress('10.0.0.1:7000'), { host: '10.0.0.1', port: 7000 });
    assert.deepEqual(parseAddress(' frontend-0.clipper.svc:7000 '), { host: 'frontend-0.clipper.svc', port: 7000 });
    assert.deepEqual(parseAddress('[fd00::1]:7000'), { host: 'fd00::1', port: 7000 });
    for (const bad of ['', 'host', 'host:', ':7000', 'host:0', 'host:65536', 'fd00::1:7000', 'a b:1']) assert.equal(parseAddress(bad), undefined, bad);
    assert.equal(formatAddress({ host: 'fd00::1', port: 1 }), '[fd00::1]:1');
    assert.equal(formatAddress({ host: 'h', port: 2 }), 'h:2');
  });

  it('refuses malformed messages with a decode error', () => {
    assert.throws(() => decodeContainerMessage([Buffer.alloc(0), Buffer.from([9, 0, 0, 0])]), RpcDecodeError);
    assert.throws(() => decodeContainerMessage([Buffer.alloc(0)]), RpcDecodeError);
    const frames = encodePredictRequest(1, 4, [Buffer.from('x'), Buffer.from('y')]);
    assert.throws(() => decodeFrontendMessage(frames.slice(0, -1)), /announces 2 inputs/);
  });
});
