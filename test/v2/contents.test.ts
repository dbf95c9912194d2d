import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { contentsField, tensorFromContents, tensorToContents } from '../../src/v2/contents.ts';
import { DATATYPES } from '../../src/v2/datatypes.ts';
import { V2Error } from '../../src/v2/errors.ts';
import { tensorFromJson, tensorToBytes, tensorToJson } from '../../src/v2/tensor.ts';
import { SAMPLES } from './samples.ts';

function rejects(fn: () => unknown, ...fragments: string[]): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof V2Error && e.status === 400, `expected a 400 V2Error, got ${String(e)}`);
    for (const f of fragments) assert.ok(e.message.includes(f), `"${e.message}" lacks "${f}"`);
    return true;
  });
}

describe('V2 gRPC typed contents', () => {
  for (const dt of DATATYPES) {
    it(`${dt} ${contentsField(dt) ? 'round-trips through ' + contentsField(dt) : 'has no typed contents'}`, () => {
      const t = tensorFromJson({ name: 'x', datatype: dt, shape: [6], data: SAMPLES[dt] });
      if (contentsField(dt) === null) {
        rejects(() => tensorToContents(t), `${dt} has no typed contents`);
        rejects(() => tensorFromContents('x', dt, [6], {}), 'raw_input_contents');
        return;
      }
      const c = tensorToContents(t);
      assert.deepEqual(Object.keys(c), [contentsField(dt)]);
      const back = tensorFromContents('x', dt, [6], c);
      assert.deepEqual(tensorToBytes(back), tensorToBytes(t));
    });
  }

  it('accepts 64-bit values as numbers, bigints and decimal strings', () => {
    const t = tensorFromContents('i', 'INT64', [3], { int64_contents: ['-9223372036854775808', 5, 9007199254740993n] });
    assert.deepEqual([...(t.data as BigInt64Array)], [-(2n ** 63n), 5n, 9007199254740993n]);
    const u = tensorFromContents('u', 'UINT64', [1], { uint64_contents: ['18446744073709551615'] });
    assert.equal((u.data as BigUint64Array)[0], 2n ** 64n - 1n);
  });

  it('refuses contents in the wrong field, of the wrong count or out of range', () => {
    rejects(() => tensorFromContents('x', 'FP32', [2], { fp64_contents: [1, 2] }), "tensor 'x': FP32 data belongs in fp32_contents, not fp64_contents");
    rejects(() => tensorFromContents('x', 'FP32', [2], { fp32_contents: [1] }), 'fp32_contents has 1 elements but shape [2] needs 2');
    rejects(() => tensorFromContents('x', 'INT8', [1], { int_contents: [300] }), 'element 0 (300) is out of range for INT8');
    rejects(() => tensorFromContents('x', 'UINT16', [1], { uint_contents: [70000] }), 'out of range for UINT16');
    rejects(() => tensorFromContents('x', 'INT64', [1], { int64_contents: ['1e3'] }), 'is not an integer');
    rejects(() => tensorFromContents('x', 'UINT64', [1], { uint64_contents: ['-1'] }), 'out of range for UINT64');
  });

  it('reads bytes_contents as BYTES elements', () => {
    const t = tensorFromContents('s', 'BYTES', [2], { bytes_contents: [new Uint8Array([0x68, 0x69]), Buffer.from('')] });
    assert.deepEqual(tensorToJson(t).data, ['hi', '']);
  });
});
