/**
 * `{"input":[numbers]}` read straight into a numeric application's bytes (src/http/numeric-body.ts)
 * gives exactly the bytes of the general path (JSON.parse, then the input type's encoding), and
 * leaves every other body to the general path.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { numericInput } from '../../src/http/numeric-body.ts';
import { encodeInput } from '../../src/registry/input-types.ts';

const general = (text: string, type: 'floats' | 'doubles') => encodeInput(type, (JSON.parse(text) as { input: unknown }).input);

describe('numeric predict bodies', () => {
  it('reads the same bytes as JSON.parse and the input type would', () => {
    const bodies = [
      '{"input":[]}', '{"input":[0]}', '{"input":[-0]}', '{"input":[1,2,3]}', '{"input":[ 1.5 , -2.25 ,3e2, 4E-3, 5e+1 ]}',
      '{"input":[0.1,0.2,0.30000000000000004]}', '{"input":[123456789012345678901234567890]}', '{"input":[1e-320, 2.5e-308, 1.7976931348623157e308]}',
      '{"input":[9007199254740993, 0.000001, 123.456e-10]}', '{"input":[1,2]}  \n', '{"input":[\n1,\n2\n]}',
    ];
    for (const body of bodies) {
      for (const type of ['floats', 'doubles'] as const) {
        const got = numericInput(body, type);
        assert.ok(got, `${body} is read here`);
        assert.deepEqual(got, general(body, type), `${type} ${body}`);
      }
    }
  });

  it('agrees with JSON.parse on thousands of random numbers in every notation', () => {
    let seed = 7;
    const rand = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648);
    for (let t = 0; t < 2000; t++) {
      const xs = Array.from({ length: 16 }, (_, k) => {
        const v = (rand() - 0.5) * 10 ** Math.floor(rand() * 40 - 20);
        return [String(v), v.toFixed(Math.floor(rand() * 10)), v.toExponential(Math.floor(rand() * 16)), v.toPrecision(1 + Math.floor(rand() * 20))][k % 4];
      });
      const body = `{"input":[${xs.join(',')}]}`;
      assert.deepEqual(numericInput(body, 'doubles'), general(body, 'doubles'), body);
      assert.deepEqual(numericInput(body, 'floats'), general(body, 'floats'), body);
    }
  });

  it('leaves every other body to the general path', () => {
    const others = [
      '{"input": [1]}', '{"input":[1],"version":"2"}', '{"input_batch":[[1]]}', '{"input":[1,]}', '{"input":[,1]}', '{"input":[01]}',
      '{"input":[1.]}', '{"input":[.5]}', '{"input":[-]}', '{"input":[1e]}', '{"input":[1e400]}', '{"input":[-1e400]}', '{"input":[NaN]}',
      '{"input":["1"]}', '{"input":[[1]]}', '{"input":[1]', '{"input":[1]}x', '{"input":[1]}}', '{"input":[true]}', '',
    ];
    for (const body of others) assert.equal(numericInput(body, 'doubles'), undefined, body);
    assert.equal(numericInput('{"input":[1]}', 'ints'), undefined, 'ints keep their integer checks');
    assert.equal(numericInput('{"input":[1]}', 'strings'), undefined);
  });
});
