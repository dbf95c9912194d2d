import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  BINARY_CONTENT_TYPE, decodeInferRequest, decodeInferResponse, encodeInferRequest, encodeInferResponse,
  HEADER_LENGTH_HEADER, JSON_CONTENT_TYPE, parseHeaderLength, splitBody,
} from '../../src/v2/binary.ts';
import { DATATYPES } from '../../src/v2/datatypes.ts';
import { V2Error } from '../../src/v2/errors.ts';
import { buildInferResponse } from '../../src/v2/request.ts';
import { createTensor, encodeBytesElements, tensorFromJson, tensorToBytes, tensorToJson } from '../../src/v2/tensor.ts';
import { SAMPLES } from './samples.ts';

function rejects(fn: () => unknown, ...fragments: string[]): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof V2Error, `expected a V2Error, got ${String(e)}`);
    assert.equal(e.status, 400);
    for (const f of fragments) assert.ok(e.message.includes(f), `"${e.message}" lacks "${f}"`);
    return true;
  });
}

/** A request body as a client would build it by hand: JSON header, then the raw tensors. */
function body(header: unknown, ...tails: Buffer[]): { body: Buffer; length: number } {
  const json = Buffer.from(JSON.stringify(header));
  return { body: Buffer.concat([json, ...tails]), length: json.length };
}

const f32 = (...v: number[]): Buffer => Buffer.from(new Float32Array(v).buffer);

describe('V2 binary tensor extension', () => {
  it('names its header in lower case, as HTTP header maps give it', () => {
    assert.equal(HEADER_LENGTH_HEADER, 'Inference-Header-Content-Length'.toLowerCase());
  });

  it('reads inputs from the tail in order, mixed with JSON inputs', () => {
    const names = ['a', 'b', 'c'];
    const { body: b, length } = body({
      id: 'r1',
      inputs: [
        { name: names[0], datatype: 'FP32', shape: [2, 2], parameters: { binary_data_size: 16 } },
        { name: names[1], datatype: 'INT8', shape: [2], data: [1, -1] },
        { name: names[2], datatype: 'BYTES', shape: [3], parameters: { binary_data_size: 17 } },
      ],
    }, f32(1, 2, 3, 4), encodeBytesElements([Buffer.from(''), Buffer.from('é'), Buffer.from('xyz')]));
    const req = decodeInferRequest(b, String(length));
    assert.equal(req.id, 'r1');
    assert.deepEqual(req.inputs.map((t) => t.name), names);
    assert.deepEqual([...(req.inputs[0]!.data as Float32Array)], [1, 2, 3, 4]);
    assert.deepEqual(tensorToJson(req.inputs[1]!).data, [1, -1]);
    assert.deepEqual((req.inputs[2]!.data as Buffer[]).map(String), ['', 'é', 'xyz']);
    // header lengths arrive as strings, arrays (repeated headers) or numbers
    assert.equal(decodeInferRequest(b, [String(length)]).inputs.length, 3);
    assert.equal(decodeInferRequest(b, length).inputs.length, 3);
  });

  it('accepts a pure JSON body with or without the header', () => {
    const { body: b, length } = body({ inputs: [{ name: 'x', datatype: 'INT32', shape: [1], data: [5] }] });
    assert.equal(decodeInferRequest(b).inputs.length, 1);
    assert.equal(decodeInferRequest(b, String(length)).inputs.length, 1);
  });

  for (const dt of DATATYPES) {
    it(`round-trips ${dt} binary → tensor → binary, in and out`, () => {
      const t = tensorFromJson({ name: `in_${dt}`, datatype: dt, shape: [2, 3], data: SAMPLES[dt] });
      const raw = tensorToBytes(t);
      const enc = encodeInferRequest({ inputs: [t] }, true);
      assert.equal(enc.contentType, BINARY_CONTENT_TYPE);
      assert.equal(enc.body.length, enc.headerLength! + raw.length);
      const header = JSON.parse(enc.body.subarray(0, enc.headerLength).toString());
      assert.deepEqual(header.inputs[0], { name: `in_${dt}`, datatype: dt, shape: [2, 3], parameters: { binary_data_size: raw.length } });
      const req = decodeInferRequest(enc.body, String(enc.headerLength));
      assert.deepEqual(tensorToBytes(req.inputs[0]!), raw);

      const out = createTensor(`out_${dt}`, dt, [2, 3], req.inputs[0]!.data);
      const resp = encodeInferResponse(buildInferResponse({ modelName: 'm', outputs: [out] }), { parameters: { binary_data_output: true } });
      assert.equal(resp.contentType, BINARY_CONTENT_TYPE);
      assert.deepEqual(resp.body.subarray(resp.headerLength!), raw);
      const back = decodeInferResponse(resp.body, resp.headerLength);
      assert.deepEqual(tensorToBytes(back.outputs[0]!), raw);
      assert.equal(back.outputs[0]!.datatype, dt);
    });
  }

  it('sends as binary only the outputs asked for', () => {
    const a = tensorFromJson({ name: 'a', datatype: 'FP32', shape: [2], data: [0.5, 1.5] });
    const b = tensorFromJson({ name: 'b', datatype: 'INT64', shape: [1], data: [7] });
    const r = buildInferResponse({ modelName: 'm', modelVersion: '2', id: 'q', outputs: [a, b] });

    const plain = encodeInferResponse(r);
    assert.equal(plain.contentType, JSON_CONTENT_TYPE);
    assert.equal(plain.headerLength, undefined);
    assert.deepEqual(JSON.parse(plain.body.toString()), {
      model_name: 'm', model_version: '2', id: 'q',
      outputs: [{ name: 'a', datatype: 'FP32', shape: [2], data: [0.5, 1.5] }, { name: 'b', datatype: 'INT64', shape: [1], data: [7] }],
    });

    const one = encodeInferResponse(r, { outputs: [{ name: 'b', parameters: { binary_data: true } }, { name: 'a' }] });
    const head = JSON.parse(one.body.subarray(0, one.headerLength).toString());
    assert.deepEqual(head.outputs[0].data, [0.5, 1.5]);
    assert.deepEqual(head.outputs[1], { name: 'b', datatype: 'INT64', shape: [1], parameters: { binary_data_size: 8 } });
    assert.deepEqual(one.body.subarray(one.headerLength!), Buffer.from(new BigInt64Array([7n]).buffer));

    // binary_data_output for all, an output's own binary_data: false overriding it
    const most = encodeInferResponse(r, { parameters: { binary_data_output: true }, outputs: [{ name: 'a', parameters: { binary_data: false } }] });
    const h2 = JSON.parse(most.body.subarray(0, most.headerLength).toString());
    assert.ok('data' in h2.outputs[0]);
    assert.equal(h2.outputs[1].parameters.binary_data_size, 8);
    const dec = decodeInferResponse(most.body, most.headerLength);
    assert.deepEqual(dec.outputs.map((t) => tensorToJson(t).data), [[0.5, 1.5], [7]]);
    assert.equal(dec.id, 'q');
    assert.equal(dec.model_version, '2');
  });

  it('drops a stale binary_data_size when an output goes as JSON', () => {
    const a = tensorFromJson({ name: 'a', datatype: 'INT8', shape: [1], data: [1], parameters: { binary_data_size: 1 } });
    const r = encodeInferResponse(buildInferResponse({ modelName: 'm', outputs: [a] }));
    assert.deepEqual(JSON.parse(r.body.toString()).outputs[0], { name: 'a', datatype: 'INT8', shape: [1], data: [1] });
  });

  it('splits bodies at the header length', () => {
    const b = Buffer.from('{}abc');
    assert.deepEqual(splitBody(b, undefined), { json: b });
    const s = splitBody(b, '2');
    assert.equal(s.json.toString(), '{}');
    assert.equal(s.binary!.toString(), 'abc');
    assert.equal(parseHeaderLength(' 5 ', 5), 5);
    assert.equal(parseHeaderLength(0, 0), 0);
  });

  it('answers every malformed binary request with a message naming the problem', () => {
    const hdr = { inputs: [{ name: 'x', datatype: 'FP32', shape: [2], parameters: { binary_data_size: 8 } }] };
    const good = body(hdr, f32(1, 2));
    assert.equal(decodeInferRequest(good.body, good.length).inputs.length, 1);

    rejects(() => decodeInferRequest(good.body, good.body.length + 1), `Inference-Header-Content-Length is ${good.body.length + 1} but the body is only ${good.body.length} bytes`);
    rejects(() => decodeInferRequest(good.body, '-3'), 'Inference-Header-Content-Length must be a non-negative integer, got "-3"');
    rejects(() => decodeInferRequest(good.body, '1.5'), 'must be a non-negative integer');
    rejects(() => decodeInferRequest(good.body, 'abc'), 'must be a non-negative integer');
    rejects(() => decodeInferRequest(good.body, -1), 'must be a non-negative integer');
    rejects(() => decodeInferRequest(good.body, ['1', '2']), 'given 2 times');
    rejects(() => decodeInferRequest(good.body, good.length - 1), 'malformed JSON');

    const more = body(hdr, f32(1, 2, 3));
    rejects(() => decodeInferRequest(more.body, more.length), 'binary data is 12 bytes but the inputs\' binary_data_size add up to 8');
    const less = body(hdr, f32(1));
    rejects(() => decodeInferRequest(less.body, less.length), "input 'x': binary_data_size 8 runs past the end of the binary data (4 of 4 bytes left)");
    const noTail = body(hdr);
    rejects(() => decodeInferRequest(noTail.body), "input 'x': has binary_data_size but the request carries no binary data");

    const wrongSize = body({ inputs: [{ name: 'x', datatype: 'FP32', shape: [3], parameters: { binary_data_size: 8 } }] }, f32(1, 2));
    rejects(() => decodeInferRequest(wrongSize.body, wrongSize.length), "tensor 'x': binary data is 8 bytes but FP32 [3] needs 12");
    const neg = body({ inputs: [{ name: 'x', datatype: 'FP32', shape: [2], parameters: { binary_data_size: -8 } }] }, f32(1, 2));
    rejects(() => decodeInferRequest(neg.body, neg.length), "input 'x': parameter 'binary_data_size' must be a non-negative integer, got -8");
    const frac = body({ inputs: [{ name: 'x', datatype: 'FP32', shape: [2], parameters: { binary_data_size: 7.5 } }] }, f32(1, 2));
    rejects(() => decodeInferRequest(frac.body, frac.length), 'got 7.5');
    const str = body({ inputs: [{ name: 'x', datatype: 'FP32', shape: [2], parameters: { binary_data_size: '8' } }] }, f32(1, 2));
    rejects(() => decodeInferRequest(str.body, str.length), 'got "8"');
    const both = body({ inputs: [{ name: 'x', datatype: 'FP32', shape: [2], data: [1, 2], parameters: { binary_data_size: 8 } }] }, f32(1, 2));
    rejects(() => decodeInferRequest(both.body, both.length), "input 'x': has both data and binary_data_size");
    const dt = body({ inputs: [{ name: 'x', datatype: 'F32', shape: [2], parameters: { binary_data_size: 8 } }] }, f32(1, 2));
    rejects(() => decodeInferRequest(dt.body, dt.length), "tensor 'x': unknown datatype \"F32\"");
    const shape = body({ inputs: [{ name: 'x', datatype: 'FP32', shape: [-2], parameters: { binary_data_size: 8 } }] }, f32(1, 2));
    rejects(() => decodeInferRequest(shape.body, shape.length), "tensor 'x': shape must be a list of non-negative integers");
    const bytes = body({ inputs: [{ name: 's', datatype: 'BYTES', shape: [2], parameters: { binary_data_size: 5 } }] }, encodeBytesElements([Buffer.from('a')]));
    rejects(() => decodeInferRequest(bytes.body, bytes.length), "tensor 's': binary data holds 1 BYTES elements but shape [2] needs 2");
    const bool = body({ inputs: [{ name: 'b', datatype: 'BOOL', shape: [1], parameters: { binary_data_size: 1 } }] }, Buffer.from([7]));
    rejects(() => decodeInferRequest(bool.body, bool.length), "tensor 'b': BOOL element 0 is byte 7");
    const bdo = body({ parameters: { binary_data_output: 'yes' }, inputs: [] });
    rejects(() => decodeInferRequest(bdo.body), "request: parameter 'binary_data_output' must be true or false");
    const bd = body({ inputs: [], outputs: [{ name: 'o', parameters: { binary_data: 1 } }] });
    rejects(() => decodeInferRequest(bd.body), "output 'o': parameter 'binary_data' must be true or false");
  });

  it('checks answers it decodes', () => {
    const r = Buffer.from(JSON.stringify({ model_name: 'm', outputs: [{ name: 'o', datatype: 'FP32', shape: [1], parameters: { binary_data_size: 4 } }] }));
    rejects(() => decodeInferResponse(r), "output 'o': binary_data_size 4 runs past the end");
    const extra = Buffer.concat([r, f32(1, 2)]);
    rejects(() => decodeInferResponse(extra, r.length), 'binary data is 8 bytes but the outputs\' binary_data_size add up to 4');
    assert.deepEqual(tensorToJson(decodeInferResponse(Buffer.concat([r, f32(3)]), r.length).outputs[0]!).data, [3]);
  });
});
