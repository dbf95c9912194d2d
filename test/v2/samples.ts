/** One sample tensor per V2 datatype, as JSON, with edge values of each. */
import type { Datatype, ElementValue } from '../../src/v2/datatypes.ts';

export const SAMPLES: Record<Datatype, ElementValue[]> = {
  BOOL: [true, false, false, true, true, false],
  INT8: [-128, -1, 0, 1, 100, 127],
  INT16: [-32768, -1, 0, 1, 1000, 32767],
  INT32: [-2147483648, -1, 0, 1, 123456789, 2147483647],
  INT64: [-(2 ** 53 - 1), -1, 0, 1, 2 ** 40 + 3, 2 ** 53 - 1],
  UINT8: [0, 1, 2, 128, 254, 255],
  UINT16: [0, 1, 2, 32768, 65534, 65535],
  UINT32: [0, 1, 2, 2147483648, 4294967294, 4294967295],
  UINT64: [0, 1, 2, 2 ** 32, 2 ** 52, 2 ** 53 - 1],
  FP16: [0, -0, 65500, -65500, 6.104e-5, 6e-8], // 65500 is the shortest decimal for FP16 max (65504)
  FP32: [6.8, -2.8, 0.1, 3.4028235e38, 1e-45, 'NaN'],
  FP64: [Math.PI, -1e300, 5e-324, 'Infinity', '-Infinity', 0.1],
  BF16: [1, -2, 3.14, 3.39e38, 'NaN', -0],
  BYTES: ['', 'hello', 'héllo wörld', '日本語', '🙂', 'a"b\\c\n'],
};
