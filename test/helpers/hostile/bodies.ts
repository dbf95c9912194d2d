/**
 * Hostile request bodies: malformed and truncated JSON, deep nesting, huge arrays, odd encodings
 * and prototype-pollution keys. Each generator takes a well-formed body (as JSON text or fields)
 * and a seeded Rng and returns bytes plus a label that names what was done, for the report.
 */
import { textOf, type Fragments } from './endpoints.ts';
import type { Rng } from './rng.ts';

export interface Body {
  bytes: Buffer;
  label: string;
  contentType?: string;
}

const text = (s: string, label: string, contentType?: string): Body => ({ bytes: Buffer.from(s, 'utf8'), label, ...(contentType ? { contentType } : {}) });

/** A well-formed body broken one way: cut short, a character dropped or inserted, quotes swapped, JS-isms. */
export function malformed(valid: string, rng: Rng): Body {
  const cut = rng.int(0, Math.max(0, valid.length - 1));
  switch (rng.int(0, 13)) {
    case 0: return text(valid.slice(0, cut), `truncated at ${cut}/${valid.length}`);
    case 1: return text(valid.slice(0, cut) + valid.slice(cut + 1), `char ${cut} dropped`);
    case 2: {
      const c = rng.pick(['{', '}', '[', ']', ',', ':', '"', '\\', '\u0000', '\u001f', "'", 'x', '\n']);
      return text(valid.slice(0, cut) + c + valid.slice(cut), `${JSON.stringify(c)} inserted at ${cut}`);
    }
    case 3: return text(valid.replace(/"/g, "'"), 'single quotes');
    case 4: return text(valid.replace(/}$/, ',}'), 'trailing comma');
    case 5: return text(`// comment\n${valid}`, 'leading comment');
    case 6: return text(valid.replace(/"([a-z_]+)":/g, '$1:'), 'unquoted keys');
    case 7: return text(valid.replace(/:([^,}]+)/, ':NaN'), 'NaN value');
    case 8: return text(valid.replace(/:([^,}]+)/, ':undefined'), 'undefined value');
    case 9: return text(`${valid}${valid}`, 'two documents');
    case 10: return text(valid.replace(/:(-?\d+)/, ':0x$1'), 'hex number');
    case 11: return text(rng.pick(['', ' ', '\n\n', '{', '}', '{"', '{"input":', '{"input":[1,', '[', '"', 'nul', 'tru', '-', '1.', '.5', '01', '1e', '{"a":1}}', '{"a" 1}', '{,}', '{"\\x"}', '{"\\u12"}', '"\\uD800"x']), 'fragment');
    case 12: {
      const bytes = Buffer.concat([Buffer.from(valid.slice(0, cut)), rng.bytes(rng.int(1, 16)), Buffer.from(valid.slice(cut))]);
      return { bytes, label: `random bytes inserted at ${cut}` };
    }
    default: return { bytes: rng.bytes(rng.int(1, 200)), label: 'random bytes' };
  }
}

export type NestKind = 'array' | 'object' | 'mixed';

/** `depth` levels of arrays or objects around a leaf, as JSON text (built without recursion). */
export function nested(depth: number, kind: NestKind, leaf = '1'): string {
  if (kind === 'array') return `${'['.repeat(depth)}${leaf}${']'.repeat(depth)}`;
  if (kind === 'object') return `${'{"a":'.repeat(depth)}${leaf}${'}'.repeat(depth)}`;
  let open = '';
  let close = '';
  for (let i = 0; i < depth; i++) {
    if (i % 2) { open += '['; close = `]${close}`; } else { open += '{"a":'; close = `}${close}`; }
  }
  return open + leaf + close;
}

/** `n` elements of `elem` (JSON text) in an array. */
export function hugeArray(n: number, elem: string): string {
  return `[${new Array<string>(n).fill(elem).join(',')}]`;
}

/** A body re-encoded or sprinkled with bytes a UTF-8 JSON reader must cope with. */
export function oddEncoding(valid: string, rng: Rng): Body {
  const at = (s: string) => rng.int(1, Math.max(1, s.length - 1));
  const splice = (bytes: Buffer, label: string, stringOnly = true): Body => {
    // Into a string value when there is one, else anywhere.
    const q = stringOnly ? valid.indexOf('":"') : -1;
    const i = q >= 0 ? q + 3 : at(valid);
    return { bytes: Buffer.concat([Buffer.from(valid.slice(0, i)), bytes, Buffer.from(valid.slice(i))]), label };
  };
  switch (rng.int(0, 17)) {
    case 0: return { bytes: Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(valid)]), label: 'UTF-8 BOM' };
    case 1: return { bytes: Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(valid, 'utf16le')]), label: 'UTF-16LE with BOM', contentType: 'application/json; charset=utf-16' };
    case 2: return { bytes: Buffer.from(valid, 'utf16le'), label: 'UTF-16LE without BOM', contentType: rng.pick(['application/json', 'application/json; charset=utf-16le']) };
    case 3: return { bytes: Buffer.from(valid, 'utf16le').swap16(), label: 'UTF-16BE', contentType: 'application/json; charset=utf-16be' };
    case 4: return splice(Buffer.from([0xff, 0xfe, 0xfd]), 'invalid UTF-8 bytes in a string');
    case 5: return splice(Buffer.from([0xc0, 0xaf]), 'overlong UTF-8 ("/")');
    case 6: return splice(Buffer.from([0xc0, 0x80]), 'modified UTF-8 NUL');
    case 7: return splice(Buffer.from([0xed, 0xa0, 0x80]), 'UTF-8-encoded lone surrogate');
    case 8: return splice(Buffer.from([0xe2, 0x82]), 'truncated multi-byte sequence');
    case 9: return splice(Buffer.from([0x00]), 'raw NUL in a string');
    case 10: return splice(Buffer.from([0x00]), 'raw NUL between tokens', false);
    case 11: return { bytes: Buffer.concat([Buffer.from(valid), Buffer.from([0x00, 0x00])]), label: 'NULs after the document' };
    case 12: return splice(Buffer.from('\\u0000'), 'escaped NUL');
    case 13: return splice(Buffer.from(rng.pick(['\\ud800', '\\udfff', '\\udc00\\ud800', '\\ud83d'])), 'escaped lone surrogate');
    case 14: return { bytes: Buffer.from(valid.replace(/"([^"]*)"/, '"$1é€"'), 'latin1'), label: 'latin-1 bytes', contentType: 'application/json; charset=iso-8859-1' };
    case 15: return splice(Buffer.from('\u202e\u200b\ufeff\uffff'), 'bidi override, zero-width, BOM and U+FFFF in a string');
    case 16: return { bytes: Buffer.from(valid), label: 'declared charset bogus', contentType: rng.pick(['application/json; charset=bogus', 'application/json; charset=utf-32', 'text/plain; charset=ebcdic']) };
    default: return { bytes: Buffer.concat([Buffer.from([0x00, 0x00, 0xfe, 0xff]), Buffer.from(valid, 'utf16le').swap16()]), label: 'UTF-32-ish BOM then UTF-16BE' };
  }
}

const POLLUTE = '{"polluted":"yes"}';
const POLLUTERS = [
  `"__proto__":${POLLUTE}`,
  `"constructor":{"prototype":${POLLUTE}}`,
  `"__proto__":{"__proto__":${POLLUTE}}`,
  '"__proto__":null',
  '"__proto__":[1,2]',
  '"prototype":{"polluted":"yes"}',
  '"toString":"x","valueOf":1,"hasOwnProperty":"y","toJSON":2',
  '"__defineGetter__":1,"__lookupGetter__":2,"isPrototypeOf":3',
];

/** A well-formed body with pollution keys at the top, inside each field's value, or both. */
export function polluted(f: Fragments, rng: Rng): Body {
  const key = rng.pick(POLLUTERS);
  const where = rng.int(0, 3);
  if (where === 0 || f.length === 0) {
    const body = textOf(f);
    return text(body === '{}' ? `{${key}}` : `{${key},${body.slice(1)}`, `top level ${key.slice(0, 40)}`);
  }
  if (where === 1) return text(`${textOf(f).slice(0, -1)},${key}}`, `after the fields ${key.slice(0, 40)}`);
  // Replace one field's value with an object (or an array of objects) holding the key.
  const i = rng.int(0, f.length - 1);
  const copy = f.slice();
  const value = where === 2 ? `{${key}}` : `[{${key}},{"a":{${key}}}]`;
  copy[i] = [copy[i]![0], value];
  return text(textOf(copy), `${copy[i]![0]} = ${value.slice(0, 50)}`);
}

/** Property names the prototype must still have after the storm, and the ones it must not gain. */
export function prototypeSnapshot(): string {
  return [Object.prototype, Array.prototype, Function.prototype, String.prototype]
    .map((p) => Object.getOwnPropertyNames(p).sort().join(',')).join('|');
}
