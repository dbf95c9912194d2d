import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DATATYPES, numberToFp16 } from '../../src/v2/datatypes.ts';
import { V2Error } from '../../src/v2/errors.ts';
import { stringifyV2 } from '../../src/v2/json.ts';
import {
  concatBatch, createTensor, decodeBytesElements, encodeBytesElements, recordsToTensors, splitBatch, stackRows,
  tensorByteLength, tensorFromBytes, tensorFromJson, tensorFromValues, tensorsToRecords, tensorToBytes, tensorToJson,
  tensorValues, type Tensor,
} from '../../src/v2/tensor.ts';
import { SAMPLES } from './samples.ts';

/** Asserts that `fn` throws a 400 V2Error whose message contains every fragment. */
function rejects(fn: () => unknown, ...fragments: string[]): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof V2Error, `expected a V2Error, got ${String(e)}`);
    assert.equal(e.status, 400);
    for (const f of fragments) assert.ok(e.message.includes(f), `"${e.message}" lacks "${f}"`);
    return true;
  });
}

const sameJson = (a: unknown, b: unknown): void => assert.equal(stringifyV2(a), stringifyV2(b));

describe('V2 tensors from and to JSON', () => {
  for (const dt of DATATYPES) {
    it(`round-trips ${dt} through JSON, flat and nested`, () => {
      const data = SAMPLES[dt];
      const flat = tensorFromJson({ name: `t_${dt}`, datatype: dt, shape: [2, 3], data });
      assert.equal(flat.data.length, 6);
      const back = tensorToJson(flat);
      sameJson(back, { name: `t_${dt}`, datatype: dt, shape: [2, 3], data });
      const nested = tensorFromJson({ name: `t_${dt}`, datatype: dt, shape: [2, 3], data: [data.slice(0, 3), data.slice(3)] });
      sameJson(tensorToJson(nested), back);
      const deeper = tensorFromJson({ name: `t_${dt}`, datatype: dt, shape: [1, 2, 3, 1], data: [[[[data[0]], [data[1]], [data[2]]], [[data[3]], [data[4]], [data[5]]]]] });
      assert.deepEqual(tensorValues(deeper).map(String), tensorValues(flat).map(String));
      // and through the JSON text
      const reparsed = tensorFromJson(JSON.parse(stringifyV2(back)));
      sameJson(tensorToJson(reparsed), back);
    });

    it(`round-trips ${dt} through raw bytes`, () => {
      const t = tensorFromJson({ name: 'x', datatype: dt, shape: [3, 2], data: SAMPLES[dt] });
      const bytes = tensorToBytes(t);
      assert.equal(bytes.length, tensorByteLength(t));
      if (dt !== 'BYTES') assert.equal(bytes.length, t.data.length * (t.data as Uint8Array).BYTES_PER_ELEMENT);
      const copy = Buffer.from(bytes); // a fresh, aligned buffer
      const u = tensorFromBytes('x', dt, [3, 2], copy);
      assert.deepEqual(tensorToBytes(u), bytes);
      sameJson(tensorToJson(u), tensorToJson(t));
      // unaligned: one byte into a bigger buffer
      const odd = Buffer.alloc(bytes.length + 1);
      bytes.copy(odd, 1);
      const v = tensorFromBytes('x', dt, [3, 2], odd.subarray(1));
      assert.deepEqual(tensorToBytes(v), bytes);
    });
  }

  it('holds each datatype in its documented storage', () => {
    const t = (dt: (typeof DATATYPES)[number]) => tensorFromJson({ name: 'x', datatype: dt, shape: [6], data: SAMPLES[dt] }).data;
    assert.ok(t('BOOL') instanceof Uint8Array);
    assert.deepEqual([...(t('BOOL') as Uint8Array)], [1, 0, 0, 1, 1, 0]);
    assert.ok(t('INT64') instanceof BigInt64Array);
    assert.ok(t('UINT64') instanceof BigUint64Array);
    assert.ok(t('FP16') instanceof Uint16Array);
    assert.equal((t('FP16') as Uint16Array)[2], 0x7bff);
    assert.ok(t('BF16') instanceof Uint16Array);
    assert.ok(t('FP32') instanceof Float32Array);
    assert.ok(Array.isArray(t('BYTES')) && Buffer.isBuffer((t('BYTES') as Buffer[])[0]));
    assert.deepEqual((t('BYTES') as Buffer[])[3], Buffer.from('日本語'));
  });

  it('keeps INT64 and UINT64 beyond 2^53 exact: binary in, bigint JSON literal out', () => {
    const big = new BigInt64Array([-(2n ** 63n), 2n ** 63n - 1n, 2n ** 53n + 1n, -5n]);
    const t = createTensor('big', 'INT64', [4], big);
    const back = tensorFromBytes('big', 'INT64', [4], Buffer.from(tensorToBytes(t)));
    assert.deepEqual([...(back.data as BigInt64Array)], [...big]);
    assert.equal(stringifyV2(tensorToJson(t).data), '[-9223372036854775808,9223372036854775807,9007199254740993,-5]');
    const u = createTensor('u', 'UINT64', [2], new BigUint64Array([2n ** 64n - 1n, 7n]));
    assert.equal(stringifyV2(tensorToJson(u).data), '[18446744073709551615,7]');
    // bigints given programmatically are accepted over the full range
    const v = tensorFromValues('v', 'UINT64', [1], [2n ** 64n - 1n]);
    assert.equal((v.data as BigUint64Array)[0], 2n ** 64n - 1n);
  });

  it('accepts shapes with zero dimensions and scalars', () => {
    const empty = tensorFromJson({ name: 'e', datatype: 'FP32', shape: [0, 4], data: [] });
    assert.equal(empty.data.length, 0);
    sameJson(tensorToJson(empty), { name: 'e', datatype: 'FP32', shape: [0, 4], data: [] });
    const scalar = tensorFromJson({ name: 's', datatype: 'INT32', shape: [], data: [7] });
    assert.deepEqual(tensorToJson(scalar).data, [7]);
    const nestedEmpty = tensorFromJson({ name: 'z', datatype: 'INT32', shape: [2, 0], data: [[], []] });
    assert.equal(nestedEmpty.data.length, 0);
  });

  it('keeps tensor parameters', () => {
    const t = tensorFromJson({ name: 'p', datatype: 'INT8', shape: [1], data: [1], parameters: { content_type: 'np' } });
    assert.deepEqual(tensorToJson(t).parameters, { content_type: 'np' });
  });

  it('answers every malformed tensor with a message naming it and the problem', () => {
    const ok = { name: 'x', datatype: 'FP32', shape: [2, 2], data: [1, 2, 3, 4] };
    rejects(() => tensorFromJson(null, 'inputs[0]'), 'inputs[0] must be an object');
    rejects(() => tensorFromJson([], 'inputs[1]'), 'inputs[1] must be an object');
    rejects(() => tensorFromJson({ ...ok, name: '' }, 'inputs[2]'), 'inputs[2]: name must be a non-empty string');
    rejects(() => tensorFromJson({ ...ok, name: 5 }), 'name must be a non-empty string');
    rejects(() => tensorFromJson({ ...ok, datatype: 'FLOAT32' }), "tensor 'x'", 'unknown datatype "FLOAT32"', 'BOOL, INT8');
    rejects(() => tensorFromJson({ ...ok, datatype: undefined }), "tensor 'x'", 'no datatype');
    rejects(() => tensorFromJson({ ...ok, shape: undefined }), "tensor 'x'", 'shape must be a list of non-negative integers, got none');
    rejects(() => tensorFromJson({ ...ok, shape: 4 }), 'shape must be a list of non-negative integers, got 4');
    rejects(() => tensorFromJson({ ...ok, shape: [2, -2] }), 'dimension 1 is -2');
    rejects(() => tensorFromJson({ ...ok, shape: [2, 1.5] }), 'dimension 1 is 1.5');
    rejects(() => tensorFromJson({ ...ok, shape: ['2', 2] }), 'dimension 0 is "2"');
    rejects(() => tensorFromJson({ ...ok, shape: [2 ** 30, 2 ** 30, 2 ** 30] }), 'too many elements');
    rejects(() => tensorFromJson({ ...ok, data: undefined }), "tensor 'x': no data");
    rejects(() => tensorFromJson({ ...ok, data: 'abc' }), "tensor 'x': data must be a list");
    rejects(() => tensorFromJson({ ...ok, data: [1, 2, 3] }), "tensor 'x': data has 3 elements but shape [2, 2] needs 4");
    rejects(() => tensorFromJson({ ...ok, data: [1, 2, 3, 4, 5] }), 'data has 5 elements');
    rejects(() => tensorFromJson({ ...ok, data: [[1, 2], [3]] }), 'nested data does not match shape [2, 2]', 'data[1] has 1 entries');
    rejects(() => tensorFromJson({ ...ok, data: [[1, 2], [3, 4], [5, 6]] }), 'data has 3 entries, dimension 0 is 2');
    rejects(() => tensorFromJson({ ...ok, data: [[1, 2], 3] }), 'data[1] is not a list');
    rejects(() => tensorFromJson({ ...ok, data: [[1, [2]], [3, 4]] }), 'data[0][1] is a list, deeper than the shape');
    rejects(() => tensorFromJson({ ...ok, shape: [4], data: [[1, 2], [3, 4], 5, 6] }), 'data mixes lists and values (element 0 is a list');
    rejects(() => tensorFromJson({ ...ok, data: [1, 2, '3', 4] }), "tensor 'x': element 2 (\"3\") is not a number");
    rejects(() => tensorFromJson({ ...ok, data: [[1, 2], [3, null]] }), 'element 3 (null) is not a number');
    rejects(() => tensorFromJson({ ...ok, datatype: 'INT8', data: [[1, 300], [3, 4]] }), "tensor 'x': element 1 (300) is out of range for INT8");
    rejects(() => tensorFromJson({ ...ok, datatype: 'UINT8', data: [1, 2, 3, -4] }), 'element 3 (-4) is out of range for UINT8');
    rejects(() => tensorFromJson({ ...ok, datatype: 'INT32', data: [1, 2, 3, 4.5] }), 'element 3 (4.5) is not an integer');
    rejects(() => tensorFromJson({ ...ok, datatype: 'BOOL', data: [true, false, 0, true] }), 'element 2 (0) is not a boolean');
    rejects(() => tensorFromJson({ ...ok, datatype: 'BYTES', data: ['a', 'b', 'c', 4] }), 'element 3 (4) is not a string');
    rejects(() => tensorFromJson({ ...ok, datatype: 'FP16', data: [1, 2, 3, 1e6] }), 'element 3 (1000000) is out of range for FP16');
    rejects(() => tensorFromJson({ ...ok, datatype: 'INT64', data: [1, 2, 3, 2 ** 60] }), 'element 3', 'beyond 2^53');
    rejects(() => tensorFromJson({ ...ok, parameters: [1] }), "tensor 'x': parameters must be an object");
  });

  it('refuses to write non-UTF-8 BYTES as JSON but carries them in binary', () => {
    const t = createTensor('raw', 'BYTES', [2], [Buffer.from('ok'), Buffer.from([0xff, 0xfe])]);
    rejects(() => tensorToJson(t), "tensor 'raw': BYTES element 1 is not UTF-8", 'binary');
    const back = tensorFromBytes('raw', 'BYTES', [2], tensorToBytes(t));
    assert.deepEqual(back.data, t.data);
  });

  it('checks storage handed to createTensor', () => {
    rejects(() => createTensor('c', 'FP32', [2], new Float64Array(2)), "tensor 'c': FP32 data must be Float32Array");
    rejects(() => createTensor('c', 'FP32', [3], new Float32Array(2)), 'data has 2 elements but shape [3] needs 3');
    rejects(() => createTensor('c', 'BYTES', [1], ['x' as unknown as Buffer]), 'BYTES element 0 is not a Buffer');
    rejects(() => createTensor('c', 'INT64', [1], new Int32Array(1)), 'INT64 data must be BigInt64Array');
  });
});

describe('V2 tensors from raw bytes', () => {
  it('encodes BYTES elements as 4-byte little-endian lengths and bytes', () => {
    const enc = encodeBytesElements([Buffer.from(''), Buffer.from('ab'), Buffer.from('é')]);
    assert.deepEqual([...enc], [0, 0, 0, 0, 2, 0, 0, 0, 0x61, 0x62, 2, 0, 0, 0, 0xc3, 0xa9]);
    assert.deepEqual(decodeBytesElements(enc, 's').map(String), ['', 'ab', 'é']);
    assert.deepEqual(decodeBytesElements(Buffer.alloc(0), 's'), []);
  });

  it('reads little-endian elements', () => {
    const t = tensorFromBytes('f', 'FP32', [2], Buffer.from([0, 0, 0x80, 0x3f, 0, 0, 0, 0xc0]));
    assert.deepEqual([...(t.data as Float32Array)], [1, -2]);
    const h = tensorFromBytes('h', 'FP16', [1], Buffer.from([0x00, 0x3c]));
    assert.equal((h.data as Uint16Array)[0], numberToFp16(1));
    const i = tensorFromBytes('i', 'INT16', [1], Buffer.from([0xfe, 0xff]));
    assert.equal((i.data as Int16Array)[0], -2);
  });

  it('answers every malformed binary tensor with a message naming the problem', () => {
    rejects(() => tensorFromBytes('f', 'FP32', [2, 2], Buffer.alloc(15)), "tensor 'f': binary data is 15 bytes but FP32 [2, 2] needs 16 (4 × 4)");
    rejects(() => tensorFromBytes('f', 'INT64', [1], Buffer.alloc(9)), 'binary data is 9 bytes but INT64 [1] needs 8');
    rejects(() => tensorFromBytes('b', 'BOOL', [2], Buffer.from([1, 2])), "tensor 'b': BOOL element 1 is byte 2");
    rejects(() => tensorFromBytes('s', 'BYTES', [2], encodeBytesElements([Buffer.from('a')])), "tensor 's': binary data holds 1 BYTES elements but shape [2] needs 2");
    rejects(() => tensorFromBytes('s', 'BYTES', [1], Buffer.from([1, 0, 0])), 'ends inside the length of element 0');
    rejects(() => tensorFromBytes('s', 'BYTES', [1], Buffer.from([5, 0, 0, 0, 0x61])), 'element 0 claims 5 bytes but only 1 remain');
  });
});

describe('V2 batches and rows', () => {
  const batch = tensorFromJson({ name: 'x', datatype: 'FP32', shape: [3, 2], data: [[1, 2], [3, 4], [5, 6]], parameters: { binary_data_size: 24, content_type: 'np' } });

  it('splits along the leading dimension and joins back', () => {
    const rows = splitBatch(batch);
    assert.equal(rows.length, 3);
    assert.deepEqual(rows.map((r) => r.shape), [[2], [2], [2]]);
    assert.deepEqual(rows.map((r) => tensorToJson(r).data), [[1, 2], [3, 4], [5, 6]]);
    assert.deepEqual(rows[0]!.parameters, { content_type: 'np' }); // the byte size no longer applies
    const joined = stackRows(rows);
    assert.deepEqual(joined.shape, [3, 2]);
    assert.deepEqual([...(joined.data as Float32Array)], [1, 2, 3, 4, 5, 6]);
    assert.deepEqual(splitBatch({ ...batch, shape: [0, 2], data: new Float32Array(0) }), []);
  });

  it('splits and joins every datatype', () => {
    for (const dt of DATATYPES) {
      const t = tensorFromJson({ name: 'x', datatype: dt, shape: [3, 2], data: SAMPLES[dt] });
      const rows = splitBatch(t);
      assert.equal(rows.length, 3);
      const back = stackRows(rows);
      assert.deepEqual(tensorToBytes(back), tensorToBytes(t), dt);
      const halves = concatBatch([stackRows(rows.slice(0, 1)), stackRows(rows.slice(1))]);
      assert.deepEqual(halves.shape, [3, 2]);
      assert.deepEqual(tensorToBytes(halves), tensorToBytes(t), dt);
    }
  });

  it('splits a vector into scalars', () => {
    const v = tensorFromJson({ name: 'v', datatype: 'BYTES', shape: [2], data: ['a', 'b'] });
    const rows = splitBatch(v);
    assert.deepEqual(rows.map((r) => r.shape), [[], []]);
    assert.deepEqual(stackRows(rows, 'w').shape, [2]);
    assert.equal(stackRows(rows, 'w').name, 'w');
  });

  it('refuses what cannot be split or joined', () => {
    rejects(() => splitBatch(tensorFromJson({ name: 's', datatype: 'INT8', shape: [], data: [1] })), "tensor 's': a scalar");
    rejects(() => stackRows([]), 'zero rows');
    const a = tensorFromJson({ name: 'a', datatype: 'INT8', shape: [2], data: [1, 2] });
    const b = tensorFromJson({ name: 'a', datatype: 'INT16', shape: [2], data: [1, 2] });
    const c = tensorFromJson({ name: 'a', datatype: 'INT8', shape: [3], data: [1, 2, 3] });
    rejects(() => stackRows([a, b]), 'row 1 is INT16, row 0 is INT8');
    rejects(() => stackRows([a, c]), 'row 1 has shape [3], row 0 has [2]');
    rejects(() => concatBatch([a, b]), 'part 1 is INT16');
    const m = tensorFromJson({ name: 'a', datatype: 'INT8', shape: [1, 2], data: [1, 2] });
    rejects(() => concatBatch([m, c]), 'part 1 has shape [3]');
    rejects(() => concatBatch([]), 'zero tensors');
  });
});

describe('V2 columns as records (content_type pd)', () => {
  it('turns one tensor per column into records', () => {
    const cols: Tensor[] = [
      tensorFromJson({ name: 'zone', datatype: 'BYTES', shape: [2], data: ['RL', 'RM'] }),
      tensorFromJson({ name: 'area', datatype: 'INT32', shape: [2, 1], data: [[8450], [9600]] }),
      tensorFromJson({ name: 'ok', datatype: 'BOOL', shape: [2], data: [true, false] }),
      tensorFromJson({ name: 'price', datatype: 'FP32', shape: [2], data: [1.5, 2.25] }),
      tensorFromJson({ name: 'id', datatype: 'INT64', shape: [2], data: [1, 2] }),
    ];
    assert.deepEqual(tensorsToRecords(cols), [
      { zone: 'RL', area: 8450, ok: true, price: 1.5, id: 1 },
      { zone: 'RM', area: 9600, ok: false, price: 2.25, id: 2 },
    ]);
    assert.deepEqual(tensorsToRecords([]), []);
    const raw = createTensor('raw', 'BYTES', [1], [Buffer.from([0xff])]);
    assert.deepEqual(tensorsToRecords([raw]), [{ raw: Buffer.from([0xff]) }]);
  });

  it('refuses columns that are not columns', () => {
    const a = tensorFromJson({ name: 'a', datatype: 'INT8', shape: [2], data: [1, 2] });
    rejects(() => tensorsToRecords([a, tensorFromJson({ name: 'b', datatype: 'INT8', shape: [1], data: [1] })]), "tensor 'b': column has 1 rows but 'a' has 2");
    rejects(() => tensorsToRecords([a, tensorFromJson({ name: 'b', datatype: 'INT8', shape: [1, 2], data: [1, 2] })]), "tensor 'b': a column must have shape [n] or [n, 1], got [1, 2]");
    rejects(() => tensorsToRecords([a, a]), "tensor 'a': two columns have this name");
  });

  it('turns records back into column tensors', () => {
    const tensors = recordsToTensors([{ label: 'setosa', p: 0.9 }, { label: 'virginica', p: 0.1 }], [{ name: 'label', datatype: 'BYTES' }, { name: 'p', datatype: 'FP64' }]);
    assert.deepEqual(tensors.map(tensorToJson), [
      { name: 'label', datatype: 'BYTES', shape: [2], data: ['setosa', 'virginica'] },
      { name: 'p', datatype: 'FP64', shape: [2], data: [0.9, 0.1] },
    ]);
    rejects(() => recordsToTensors([{ a: 1 }], [{ name: 'b', datatype: 'INT8' }]), "tensor 'b': record 0 has no 'b'");
    rejects(() => recordsToTensors([{ a: 1000 }], [{ name: 'a', datatype: 'INT8' }]), "tensor 'a': element 0 (1000) is out of range");
  });
});
