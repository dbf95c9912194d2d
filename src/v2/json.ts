/**
 * JSON text for V2 answers. Like JSON.stringify, except that a bigint is written as an exact
 * integer literal (INT64/UINT64 elements beyond 2^53, see datatypes.ts). Values that JSON.stringify
 * leaves out (undefined, functions) are left out of objects and written as null in arrays.
 */
export function stringifyV2(value: unknown): string {
  return write(value) ?? 'null';
}

function write(v: unknown): string | undefined {
  switch (typeof v) {
    case 'bigint':
      return v.toString();
    case 'undefined': case 'function': case 'symbol':
      return undefined;
    case 'object':
      break;
    default:
      return JSON.stringify(v);
  }
  if (v === null) return 'null';
  if (Array.isArray(v)) {
    // The common case, an array of numbers (or other plain scalars), in one native call.
    let plain = true;
    for (let i = 0; i < v.length && plain; i++) {
      const t = typeof v[i];
      plain = t === 'number' || t === 'string' || t === 'boolean';
    }
    if (plain) return JSON.stringify(v);
    let out = '[';
    for (let i = 0; i < v.length; i++) {
      if (i > 0) out += ',';
      out += write(v[i]) ?? 'null';
    }
    return `${out}]`;
  }
  const o = v as { toJSON?: () => unknown };
  if (typeof o.toJSON === 'function') return write(o.toJSON());
  let out = '{';
  let first = true;
  for (const [k, x] of Object.entries(v)) {
    const s = write(x);
    if (s === undefined) continue;
    out += `${first ? '' : ','}${JSON.stringify(k)}:${s}`;
    first = false;
  }
  return `${out}}`;
}
