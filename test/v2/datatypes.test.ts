import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  bf16ToNumber, byteSize, DATATYPE_INFO, DATATYPES, fp16ToNumber, isDatatype, numberToBf16, numberToFp16,
  toJsonValue, toStored,
} from '../../src/v2/datatypes.ts';
import { V2Error } from '../../src/v2/errors.ts';

describe('V2 datatypes', () => {
  it('lists the fourteen protocol datatypes with their element sizes and arrays', () => {
    assert.deepEqual([...DATATYPES].sort(), ['BF16', 'BOOL', 'BYTES', 'FP16', 'FP32', 'FP64', 'INT16', 'INT32', 'INT64', 'INT8', 'UINT16', 'UINT32', 'UINT64', 'UINT8']);
    const sizes = Object.fromEntries(DATATYPES.map((d) => [d, byteSize(d)]));
    assert.deepEqual(sizes, { BOOL: 1, INT8: 1, INT16: 2, INT32: 4, INT64: 8, UINT8: 1, UINT16: 2, UINT32: 4, UINT64: 8, FP16: 2, FP32: 4, FP64: 8, BF16: 2, BYTES: 0 });
    for (const d of DATATYPES) {
      const A = DATATYPE_INFO[d].array;
      if (d === 'BYTES') assert.equal(A, null);
      else assert.equal(A!.BYTES_PER_ELEMENT, byteSize(d), d);
    }
    assert.equal(DATATYPE_INFO.INT64.array, BigInt64Array);
    assert.equal(DATATYPE_INFO.UINT64.array, BigUint64Array);
    assert.equal(DATATYPE_INFO.FP16.array, Uint16Array);
    assert.ok(isDatatype('FP32'));
    assert.ok(!isDatatype('fp32'));
    assert.ok(!isDatatype('FP8'));
    assert.ok(!isDatatype(3));
  });

  it('converts FP16 exactly at its edges', () => {
    const cases: [number, number][] = [
      [0, 0x0000], [-0, 0x8000], [1, 0x3c00], [-2, 0xc000], [0.5, 0x3800],
      [65504, 0x7bff], [-65504, 0xfbff], [Infinity, 0x7c00], [-Infinity, 0xfc00],
      [2 ** -14, 0x0400], // smallest normal
      [2 ** -24, 0x0001], // smallest subnormal
      [1023 * 2 ** -24, 0x03ff], // largest subnormal
      [1 + 2 ** -10, 0x3c01],
    ];
    for (const [v, bits] of cases) {
      assert.equal(numberToFp16(v), bits, `encode ${v}`);
      assert.ok(Object.is(fp16ToNumber(bits), v), `decode 0x${bits.toString(16)}`);
    }
    assert.ok(Number.isNaN(fp16ToNumber(numberToFp16(NaN))));
    assert.equal(numberToFp16(NaN) & 0x7c00, 0x7c00);
  });

  it('rounds to nearest, ties to even, into FP16', () => {
    assert.equal(numberToFp16(1 + 2 ** -11), 0x3c00); // halfway, even stays
    assert.equal(numberToFp16(1 + 3 * 2 ** -11), 0x3c02); // halfway, odd rounds up
    assert.equal(numberToFp16(1 + 2 ** -11 + 2 ** -20), 0x3c01);
    assert.equal(numberToFp16(65519), 0x7bff);
    assert.equal(numberToFp16(65520), 0x7c00); // halfway to 2^16 rounds to infinity
    assert.equal(numberToFp16(2 ** -25), 0x0000); // halfway to the smallest subnormal: even (0)
    assert.equal(numberToFp16(2 ** -25 * 1.5), 0x0001);
    assert.equal(numberToFp16(2 ** -14 - 2 ** -25), 0x0400); // largest subnormal rounds up into the normals
    assert.equal(numberToFp16(0.1), 0x2e66);
    assert.equal(numberToFp16(1e-10), 0);
    assert.equal(numberToFp16(-1e-10), 0x8000);
  });

  it('round-trips every FP16 pattern', () => {
    for (let bits = 0; bits < 0x10000; bits++) {
      const v = fp16ToNumber(bits);
      if (Number.isNaN(v)) continue;
      assert.equal(numberToFp16(v), bits);
    }
  });

  it('converts BF16 exactly at its edges and round-trips every pattern', () => {
    assert.equal(numberToBf16(1), 0x3f80);
    assert.equal(numberToBf16(-1), 0xbf80);
    assert.equal(numberToBf16(-0), 0x8000);
    assert.equal(numberToBf16(Infinity), 0x7f80);
    assert.equal(bf16ToNumber(0x7f7f), (2 - 2 ** -7) * 2 ** 127); // largest finite
    assert.equal(bf16ToNumber(0x0080), 2 ** -126); // smallest normal
    assert.equal(bf16ToNumber(0x0001), 2 ** -133); // smallest subnormal
    assert.equal(numberToBf16(1 + 2 ** -8), 0x3f80); // tie to even
    assert.equal(numberToBf16(1 + 3 * 2 ** -8), 0x3f82);
    assert.equal(numberToBf16(3.4028234663852886e38), 0x7f80); // FP32 max overflows BF16
    assert.ok(Number.isNaN(bf16ToNumber(numberToBf16(NaN))));
    for (let bits = 0; bits < 0x10000; bits++) {
      const v = bf16ToNumber(bits);
      if (Number.isNaN(v)) continue;
      assert.equal(numberToBf16(v), bits);
    }
  });

  it('checks integer ranges and names the tensor and the index', () => {
    const ranges: [string, number | bigint, number | bigint][] = [
      ['INT8', -128, 127], ['INT16', -32768, 32767], ['INT32', -(2 ** 31), 2 ** 31 - 1],
      ['UINT8', 0, 255], ['UINT16', 0, 65535], ['UINT32', 0, 2 ** 32 - 1],
    ];
    for (const [dt, lo, hi] of ranges) {
      const d = dt as 'INT8';
      assert.equal(toStored(d, lo, 't', 0), lo);
      assert.equal(toStored(d, hi, 't', 0), hi);
      assert.throws(() => toStored(d, (hi as number) + 1, 't', 4), (e: unknown) => e instanceof V2Error && e.status === 400 && e.message.includes(`out of range for ${dt}`) && e.message.includes("'t'") && e.message.includes('element 4'));
      assert.throws(() => toStored(d, (lo as number) - 1, 't', 0), /out of range/);
      assert.throws(() => toStored(d, 1.5, 't', 0), /not an integer/);
      assert.throws(() => toStored(d, '1', 't', 0), /not an integer/);
    }
    assert.throws(() => toStored('INT8', 300, 'pixels', 7), { message: "tensor 'pixels': element 7 (300) is out of range for INT8 [-128, 127]" });
    assert.equal(toStored('INT8', -5n, 't', 0), -5);
    assert.throws(() => toStored('INT8', 500n, 't', 0), /out of range/);
  });

  it('keeps INT64 and UINT64 exact as bigint; JSON numbers only within 2^53', () => {
    assert.equal(toStored('INT64', 2 ** 53 - 1, 't', 0), 2n ** 53n - 1n);
    assert.equal(toStored('INT64', -(2 ** 53 - 1), 't', 0), -(2n ** 53n - 1n));
    assert.throws(() => toStored('INT64', 2 ** 53, 't', 2), /element 2 .* beyond 2\^53/);
    assert.equal(toStored('INT64', 2n ** 63n - 1n, 't', 0), 2n ** 63n - 1n);
    assert.equal(toStored('INT64', -(2n ** 63n), 't', 0), -(2n ** 63n));
    assert.throws(() => toStored('INT64', 2n ** 63n, 't', 0), /out of range for INT64/);
    assert.equal(toStored('UINT64', 2n ** 64n - 1n, 't', 0), 2n ** 64n - 1n);
    assert.throws(() => toStored('UINT64', -1, 't', 0), /out of range for UINT64/);
    assert.throws(() => toStored('UINT64', 2n ** 64n, 't', 0), /out of range/);
    assert.equal(toJsonValue('INT64', 5n), 5);
    assert.equal(toJsonValue('INT64', 2n ** 53n - 1n), 2 ** 53 - 1);
    assert.equal(toJsonValue('INT64', 2n ** 53n), 2n ** 53n);
    assert.equal(toJsonValue('UINT64', 2n ** 64n - 1n), 2n ** 64n - 1n);
  });

  it('checks float ranges and accepts the JSON spellings of NaN and the infinities', () => {
    assert.throws(() => toStored('FP16', 65520, 'h', 3), { message: "tensor 'h': element 3 (65520) is out of range for FP16" });
    assert.equal(toStored('FP16', 65504, 'h', 0), 0x7bff);
    assert.throws(() => toStored('BF16', 3.5e38, 'b', 0), /out of range for BF16/);
    assert.throws(() => toStored('FP32', 3.5e38, 'f', 0), /out of range for FP32/);
    assert.equal(toStored('FP32', 3.4028234663852886e38, 'f', 0), 3.4028234663852886e38);
    assert.equal(toStored('FP64', 1e300, 'f', 0), 1e300);
    for (const dt of ['FP16', 'FP32', 'FP64', 'BF16'] as const) {
      assert.ok(Number.isNaN(dt === 'FP16' ? fp16ToNumber(toStored(dt, 'NaN', 'f', 0) as number) : dt === 'BF16' ? bf16ToNumber(toStored(dt, 'NaN', 'f', 0) as number) : toStored(dt, 'NaN', 'f', 0) as number));
      assert.equal(toJsonValue(dt, toStored(dt, 'Infinity', 'f', 0) as number), 'Infinity');
      assert.equal(toJsonValue(dt, toStored(dt, '-Infinity', 'f', 0) as number), '-Infinity');
      assert.equal(toJsonValue(dt, toStored(dt, 'NaN', 'f', 0) as number), 'NaN');
      assert.throws(() => toStored(dt, 'nan', 'f', 1), /element 1 \("nan"\) is not a number/);
      assert.throws(() => toStored(dt, true, 'f', 0), /not a number/);
      assert.throws(() => toStored(dt, null, 'f', 0), /element 0 \(null\) is not a number/);
    }
  });

  it('writes the shortest decimal that stores back to the same float', () => {
    assert.equal(toJsonValue('FP32', Math.fround(6.8)), 6.8);
    assert.equal(toJsonValue('FP32', Math.fround(0.1)), 0.1);
    assert.equal(toJsonValue('FP32', Math.fround(1 / 3)), 0.33333334);
    assert.ok(Object.is(toJsonValue('FP32', -0), -0));
    assert.equal(toJsonValue('FP16', numberToFp16(0.1)), 0.1);
    assert.equal(toJsonValue('FP16', 0x7bff), 65500); // shortest decimal that rounds back to 65504
    assert.equal(numberToFp16(65500), 0x7bff);
    assert.equal(toJsonValue('BF16', numberToBf16(3.14159)), 3.14);
    assert.ok(Object.is(toJsonValue('FP16', 0x8000), -0));
  });

  it('checks BOOL and BYTES element types', () => {
    assert.equal(toStored('BOOL', true, 'b', 0), 1);
    assert.equal(toStored('BOOL', false, 'b', 0), 0);
    assert.throws(() => toStored('BOOL', 1, 'b', 2), { message: "tensor 'b': element 2 (1) is not a boolean, as BOOL requires" });
    assert.deepEqual(toStored('BYTES', 'é', 's', 0), Buffer.from([0xc3, 0xa9]));
    assert.throws(() => toStored('BYTES', 5, 's', 0), /element 0 \(5\) is not a string/);
    assert.throws(() => toStored('BYTES', [1], 's', 0), /an array/);
  });
});
