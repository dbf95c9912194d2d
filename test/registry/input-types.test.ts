import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { decodeInput, encodeInput, parseInputType } from '../../src/registry/input-types.ts';
import { checkName, checkVersion } from '../../src/registry/validation.ts';

describe('input types', () => {
  it('accepts Clipper aliases and refuses others', () => {
    const cases: Array<[string, string]> = [['ints', 'ints'], ['integers', 'ints'], ['float', 'floats'], ['d', 'doubles'], ['str', 'strings'], ['BYTES', 'bytes']];
    for (const [alias, type] of cases) assert.equal(parseInputType(alias), type);
    assert.throws(() => parseInputType('tensor'), /input_type must be one of/);
    assert.throws(() => parseInputType(3), /input_type/);
  });

  it('encodes JSON inputs to the wire and back', () => {
    assert.deepEqual([...(decodeInput('doubles', encodeInput('doubles', [1, 2.5, -3])) as Float64Array)], [1, 2.5, -3]);
    assert.deepEqual([...(decodeInput('ints', encodeInput('ints', [1, -2])) as Int32Array)], [1, -2]);
    assert.deepEqual([...(decodeInput('floats', encodeInput('floats', [0.5])) as Float32Array)], [0.5]);
    assert.equal(decodeInput('strings', encodeInput('strings', 'héllo')), 'héllo');
    assert.equal(decodeInput('strings', encodeInput('strings', { a: 1 })), '{"a":1}');
    assert.deepEqual(decodeInput('bytes', encodeInput('bytes', Buffer.from('hi').toString('base64'))), Buffer.from('hi'));
  });

  it('names what is wrong with a bad input', () => {
    assert.throws(() => encodeInput('ints', [1.5]), /input\[0\] is not a 32-bit integer/);
    assert.throws(() => encodeInput('ints', [2 ** 31]), /32-bit/);
    assert.throws(() => encodeInput('doubles', 'x'), /array of numbers/);
    assert.throws(() => encodeInput('doubles', [1, null]), /input\[1\] must be a finite number/);
    assert.throws(() => encodeInput('bytes', 'not base64!'), /base64/);
    assert.throws(() => encodeInput('strings', 5), /must be a string/);
  });

  it('checks names and versions against the pattern', () => {
    assert.equal(checkName('a-1', 'name'), 'a-1');
    for (const bad of ['-a', 'a-', 'A', 'a_b', '', 'a'.repeat(64), '../x']) assert.throws(() => checkName(bad, 'name'), /not a valid name/);
    assert.equal(checkVersion('1.2_rc-3'), '1.2_rc-3');
    assert.equal(checkVersion(3), '3');
    assert.throws(() => checkVersion('../1'), /not a valid version/);
  });
});
