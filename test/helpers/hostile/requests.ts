/**
 * Hostile requests at the HTTP level, written as raw bytes: traversal and hostile names in URLs,
 * odd methods, bad, duplicate and huge headers, odd content types, pipelined garbage, and slow
 * clients. Each generator returns what to write (see http.ts `RawPlan.parts`) and a label.
 */
import { validInput, type RealApp } from './endpoints.ts';
import type { Rng } from './rng.ts';

export type Part = Buffer | string | number;

export interface RawCase {
  label: string;
  parts: Part[];
  /** Answers to wait for. */
  expect: number;
  /** The path the answer is judged for (GET /metrics answers text). */
  path: string;
  heads?: Set<number>;
  endAfterWrite?: boolean;
  /** Whether closing without an answer is acceptable (the client sent nothing that can be answered). */
  allowClose?: boolean;
}

/** One HTTP/1.1 request as bytes. Headers are written as given (duplicates and junk included). */
export function rawRequest(method: string, path: string | Buffer, headers: Array<[string, string]> = [], body?: Buffer | string, opts: { version?: string; host?: boolean; length?: boolean; close?: boolean } = {}): Buffer {
  const b = body === undefined ? undefined : Buffer.isBuffer(body) ? body : Buffer.from(body);
  const lines: Array<[string, string]> = [];
  if (opts.host !== false) lines.push(['Host', '127.0.0.1']);
  lines.push(...headers);
  if (b && opts.length !== false) lines.push(['Content-Length', String(b.length)]);
  if (opts.close !== false) lines.push(['Connection', 'close']);
  const head = Buffer.concat([
    Buffer.from(`${method} `, 'latin1'), Buffer.isBuffer(path) ? path : Buffer.from(path, 'utf8'), Buffer.from(` ${opts.version ?? 'HTTP/1.1'}\r\n`, 'latin1'),
    Buffer.from(lines.map(([k, v]) => `${k}: ${v}\r\n`).join(''), 'latin1'), Buffer.from('\r\n'),
  ]);
  return b ? Buffer.concat([head, b]) : head;
}

const json = { 'Content-Type': 'application/json' };
const ct: Array<[string, string]> = Object.entries(json);

/** Paths that climb out, encode their way out, overflow, or are not paths at all. */
export function hostilePath(rng: Rng, app: string): { path: string | Buffer; label: string } {
  const long = (n: number) => 'a'.repeat(n);
  const choices: Array<() => string | Buffer> = [
    () => '/../admin/ping', () => `/${app}/../../admin/add_app`, () => '/%2e%2e/%2e%2e/etc/passwd', () => '/%2e%2e%2f%2e%2e%2fetc%2fpasswd/predict',
    () => '/..%2f..%2fetc%2fpasswd/predict', () => `/${app}/predict/../../admin/ping`, () => `//${app}/predict`, () => `/${app}//predict`,
    () => `/${app}/predict/`, () => `/${app}/predict?x=1&x=2&__proto__[polluted]=yes&constructor[prototype][polluted]=yes`,
    () => `/${app}%2Fpredict`, () => '/%00/predict', () => `/${app}%00/predict`, () => '/a%00b/predict', () => `/${long(64)}/predict`,
    () => `/${long(1000)}/predict`, () => `/${long(8000)}/predict`, () => `/${long(20_000)}/predict`, () => `/${long(100_000)}/predict`,
    () => Buffer.from('/ünïcödé/predict', 'utf8'), () => Buffer.from('/\u{1f4a9}/predict', 'utf8'), () => '/%F0%9F%92%A9/predict', () => '/%ZZ/predict',
    () => '/%/predict', () => '/%C0%AE%C0%AE/predict', () => '/%c0%ae%c0%ae/admin/ping', () => '/..\\..\\windows\\win.ini',
    () => 'http://evil.example/admin/ping', () => `http://127.0.0.1/${app}/predict`, () => '*', () => '/admin/ping#frag', () => '/admin/ping;jsessionid=1',
    () => '/ADMIN/PING', () => '/admin/PING', () => '/admin/ping%20', () => '/admin/add_app%00', () => `/${app}/predict%3Fx=1`, () => '/__proto__/predict',
    () => '/constructor/predict', () => '/prototype/update', () => '/hasownproperty/predict', () => '/tostring/predict', () => '/admin/', () => '/admin',
    () => '/', () => '/admin/status/', () => '/metrics/../metrics', () => `/${app}/predict/${'x/'.repeat(500)}`,
    () => `/${encodeURIComponent('../'.repeat(10))}predict`, () => `/${app}/predict?${'q=1&'.repeat(2000)}`, () => `/${app}/predict?a[b][c][d][e][f]=1`,
    () => Buffer.from([0x2f, 0xff, 0xfe, 0x2f, 0x70]), () => `/${rng.ascii(rng.int(1, 60)).replace(/[\s]/g, '_')}/predict`,
    () => `/${app.toUpperCase()}/predict`, () => `/${app}-/predict`, () => `/-${app}/predict`, () => `/${long(63)}/predict`, () => `/${long(64)}/update`,
    () => '/.well-known/security.txt', () => '/admin/add_app/..;/ping', () => '/%252e%252e/%252e%252e/etc/passwd', () => '/%u002e%u002e/predict',
  ];
  const i = rng.int(0, choices.length - 1);
  const path = choices[i]!();
  const shown = Buffer.isBuffer(path) ? `bytes ${path.toString('hex').slice(0, 40)}` : path.length > 80 ? `${path.slice(0, 60)}…(${path.length})` : path;
  return { path, label: shown };
}

export const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'TRACE', 'CONNECT', 'PROPFIND', 'PURGE', 'SEARCH', 'FOO', 'get', 'M-SEARCH', 'X'.repeat(100)];

/** A bad, duplicate or huge header, an odd content type or framing: one request per case. */
export function headerCase(rng: Rng, path: string, body: string): RawCase {
  const one = (label: string, parts: Part[], extra: Partial<RawCase> = {}): RawCase => ({ label, parts, expect: 1, path, ...extra });
  const req = (headers: Array<[string, string]>, b: string | Buffer | undefined = body, opts: Parameters<typeof rawRequest>[4] = {}) => rawRequest('POST', path, headers, b, opts);
  const cases: Array<() => RawCase> = [
    () => one('no content-type', [req([])]),
    () => one('empty content-type', [req([['Content-Type', '']])]),
    () => one('text/plain', [req([['Content-Type', 'text/plain']])]),
    () => one('form-urlencoded body', [req([['Content-Type', 'application/x-www-form-urlencoded']], 'input=1&input=2')]),
    () => one('multipart body', [req([['Content-Type', 'multipart/form-data; boundary=XX']], `--XX\r\nContent-Disposition: form-data; name="input"\r\n\r\n1\r\n--XX--\r\n`)]),
    () => one('content-type ;;;', [req([['Content-Type', 'application/json;;;charset=;']])]),
    () => one('two content-types', [req([...ct, ['Content-Type', 'text/html']])]),
    () => one('8 KB content-type', [req([['Content-Type', `application/json; x=${'y'.repeat(8000)}`]])]),
    () => one('content-type with tab', [req([['Content-Type', 'application/json\t']])]),
    () => one('content-type with NUL', [req([['Content-Type', 'application/\u0000json']])]),
    () => one('content-type with bare CR', [req([['Content-Type', 'application/json\rX-Evil: 1']])]),
    () => one('two equal content-lengths', [req([...ct, ['Content-Length', String(Buffer.byteLength(body))]])]),
    () => one('two different content-lengths', [req([...ct, ['Content-Length', String(Buffer.byteLength(body) + 5)]])]),
    () => one('negative content-length', [req([...ct, ['Content-Length', '-1']], body, { length: false })]),
    () => one('content-length 1e3', [req([...ct, ['Content-Length', '1e3']], body, { length: false })]),
    () => one('content-length 0x10', [req([...ct, ['Content-Length', '0x10']], body, { length: false })]),
    () => one('content-length with spaces', [req([...ct, ['Content-Length', ` ${Buffer.byteLength(body)} `]], body, { length: false })]),
    () => one('content-length 2^64+', [req([...ct, ['Content-Length', '99999999999999999999']], body, { length: false })]),
    () => one('content-length 1 TB', [req([...ct, ['Content-Length', String(1e12)]], body, { length: false })]),
    () => one('content-length shorter than the body', [req([...ct, ['Content-Length', '5']], body, { length: false })], { expect: 2, allowClose: true }),
    () => one('chunked and content-length', [req([...ct, ['Transfer-Encoding', 'chunked'], ['Content-Length', '5']], `${Buffer.byteLength(body).toString(16)}\r\n${body}\r\n0\r\n\r\n`, { length: false })]),
    () => one('chunked', [req([...ct, ['Transfer-Encoding', 'chunked']], `${Buffer.byteLength(body).toString(16)}\r\n${body}\r\n0\r\n\r\n`, { length: false })]),
    () => one('chunked, bad size', [req([...ct, ['Transfer-Encoding', 'chunked']], 'zz\r\nabc\r\n0\r\n\r\n', { length: false })]),
    () => one('chunked, huge size', [req([...ct, ['Transfer-Encoding', 'chunked']], 'ffffffffffffffffff\r\nabc\r\n0\r\n\r\n', { length: false })]),
    () => one('chunked, extension', [req([...ct, ['Transfer-Encoding', 'chunked']], `${Buffer.byteLength(body).toString(16)};evil=${'x'.repeat(100)}\r\n${body}\r\n0\r\n\r\n`, { length: false })]),
    () => one('chunked, no last chunk, then FIN', [req([...ct, ['Transfer-Encoding', 'chunked']], `${Buffer.byteLength(body).toString(16)}\r\n${body}\r\n`, { length: false })], { endAfterWrite: true }),
    () => one('transfer-encoding gzip', [req([...ct, ['Transfer-Encoding', 'gzip']], body, { length: false })]),
    () => one('transfer-encoding chunked, gzip', [req([...ct, ['Transfer-Encoding', 'chunked, gzip']], body, { length: false })]),
    () => one('content-encoding gzip (not gzipped)', [req([...ct, ['Content-Encoding', 'gzip']])]),
    () => one('no Host', [req(ct, body, { host: false })]),
    () => one('two Hosts', [req([...ct, ['Host', 'evil.example']])]),
    () => one('8 KB Host', [req([...ct, ['Host', 'h'.repeat(8000)]], body, { host: false })]),
    () => one('unicode Host', [req([...ct, ['Host', 'ünï.example']], body, { host: false })]),
    () => one('20 KB header', [req([...ct, ['X-Big', 'b'.repeat(20_000)]])]),
    () => one('64 KB header', [req([...ct, ['X-Big', 'b'.repeat(65_536)]])]),
    () => one('300 headers of 100 bytes', [req([...ct, ...Array.from({ length: 300 }, (_, i): [string, string] => [`X-H${i}`, 'v'.repeat(100)])])]),
    () => one('2000 tiny headers', [req([...ct, ...Array.from({ length: 2000 }, (_, i): [string, string] => [`X${i}`, '1'])])]),
    () => one('header name with a space', [req([...ct, ['X Bad', '1']])]),
    () => one('header name with a colon only', [rawRequest('POST', path, [...ct, [':', 'x']], body)]),
    () => one('header line without a colon', [Buffer.concat([Buffer.from(`POST ${path} HTTP/1.1\r\nHost: x\r\nNoColonHere\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n`), Buffer.from(body)])]),
    () => one('obs-fold header', [Buffer.concat([Buffer.from(`POST ${path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n  continued\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n`), Buffer.from(body)])]),
    () => one('header value with NUL', [req([...ct, ['X-Nul', 'a\u0000b']])]),
    () => one('header value with bare LF', [req([...ct, ['X-Lf', 'a\nX-Injected: 1']])]),
    () => one('bare LF line endings', [Buffer.from(`POST ${path} HTTP/1.1\nHost: x\nContent-Type: application/json\nContent-Length: ${Buffer.byteLength(body)}\nConnection: close\n\n${body}`)]),
    () => one('latin-1 header value', [req([...ct, ['X-Latin', 'caf\u00e9']])]),
    () => one('Authorization: huge bearer', [req([...ct, ['Authorization', `Bearer ${'t'.repeat(8000)}`]])]),
    () => one('Authorization: Basic', [req([...ct, ['Authorization', 'Basic YWRtaW46YWRtaW4=']])]),
    () => one('two Authorization headers', [req([...ct, ['Authorization', 'Bearer a'], ['Authorization', 'Bearer b']])]),
    () => one('X-Api-Key odd', [req([...ct, ['X-Api-Key', '\u00ff'.repeat(50)]])]),
    () => one('Expect: 100-continue', [req([...ct, ['Expect', '100-continue']])]),
    () => one('Expect: bogus', [req([...ct, ['Expect', 'bogus']])]),
    () => one('Upgrade: websocket', [req([...ct, ['Connection', 'Upgrade'], ['Upgrade', 'websocket'], ['Sec-WebSocket-Key', 'dGhlIHNhbXBsZSBub25jZQ=='], ['Sec-WebSocket-Version', '13']])]),
    () => one('Upgrade: h2c', [req([...ct, ['Connection', 'Upgrade, HTTP2-Settings'], ['Upgrade', 'h2c'], ['HTTP2-Settings', 'AAMAAABkAARAAAAAAAIAAAAA']])]),
    () => one('X-Forwarded-For / X-HTTP-Method-Override', [req([...ct, ['X-Forwarded-For', '1.2.3.4, ::1'], ['X-HTTP-Method-Override', 'DELETE'], ['X-Original-URL', '/admin/delete_app']])]),
    () => one('Range header', [req([...ct, ['Range', 'bytes=0-1,2-3,4-5'], ['If-None-Match', '*']])]),
    () => one('HTTP/1.0 without Host', [req(ct, body, { version: 'HTTP/1.0', host: false })]),
    () => one('HTTP/1.2', [req(ct, body, { version: 'HTTP/1.2' })]),
    () => one('HTTP/9.9', [req(ct, body, { version: 'HTTP/9.9' })]),
    () => one('lower-case http/1.1', [req(ct, body, { version: 'http/1.1' })]),
    () => one('HTTP/0.9 request line', [Buffer.from(`GET ${path}\r\n\r\n`)], { allowClose: true }),
    () => one('HTTP/2 preface', [Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n')]),
    () => one('TLS ClientHello on a plain port', [Buffer.from('16030100a5010000a10303', 'hex'), Buffer.alloc(160, 0x41)], { endAfterWrite: true }),
    () => one('request line with two spaces', [Buffer.from(`POST  ${path} HTTP/1.1\r\nHost: x\r\n\r\n`)]),
    () => one('request line with tab', [Buffer.from(`POST\t${path}\tHTTP/1.1\r\nHost: x\r\n\r\n`)]),
    () => one('leading empty lines', [Buffer.concat([Buffer.from('\r\n\r\n\r\n'), req(ct)])]),
  ];
  return rng.pick(cases)();
}

/**
 * A kept-alive connection carrying `valid.length` well-formed requests back to back, then either
 * garbage (the valid ones must all be answered, in order, and the garbage with a 4xx or a close)
 * or — `halfClose` — the end of the client's sending (FIN), after which it waits for its answers.
 */
export function pipelinedCase(rng: Rng, valid: Array<{ bytes: Buffer; head?: boolean; path: string }>, halfClose: boolean): {
  parts: Part[]; label: string; heads: Set<number>; endAfterWrite: boolean; expect: number; paths: string[];
} {
  const heads = new Set<number>();
  valid.forEach((v, i) => { if (v.head) heads.add(i); });
  const parts: Part[] = valid.map((v) => v.bytes);
  if (rng.chance(0.3)) parts.splice(rng.int(0, parts.length), 0, rng.int(1, 30)); // a short pause somewhere
  const paths = valid.map((v) => v.path);
  if (halfClose) {
    const [label, tail] = rng.pick<[string, Buffer]>([
      ['then FIN', Buffer.alloc(0)],
      ['then CRLFs and FIN', Buffer.from('\r\n\r\n')],
      ['then half a request and FIN', Buffer.from('POST /admin/add_app HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{"na')],
    ]);
    if (tail.length) parts.push(tail);
    return { parts, label: `${valid.length} valid, ${label}`, heads, endAfterWrite: true, expect: valid.length, paths };
  }
  const garbage: Array<[string, () => Buffer, boolean]> = [
    ['random bytes + CRLFCRLF', () => Buffer.concat([Buffer.from('\u0001'), rng.bytes(rng.int(1, 300)), Buffer.from('\r\n\r\n')]), true],
    ['bad request line', () => Buffer.from(`${rng.ascii(rng.int(1, 40)).replace(/[A-Z]/g, '~')} /\r\n\r\n`), true],
    ['HTTP/9.9', () => Buffer.from('GET /admin/ping HTTP/9.9\r\nHost: x\r\n\r\n'), true],
    ['bad header', () => Buffer.from('GET /admin/ping HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n'), true],
    ['NULs', () => Buffer.alloc(rng.int(1, 64), 0), true],
    ['CRLFs only', () => Buffer.from('\r\n'.repeat(rng.int(1, 50))), false],
    ['negative content-length', () => Buffer.from('POST /admin/ping HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n'), true],
    ['HTTP/2 preface', () => Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'), true],
    ['lower-case method', () => Buffer.from('get /admin/ping HTTP/1.1\r\nHost: x\r\n\r\n'), true],
  ];
  const [label, make, answered] = rng.pick(garbage);
  parts.push(make());
  return { parts, label: `${valid.length} valid, then ${label}`, heads, endAfterWrite: false, expect: valid.length + (answered ? 1 : 0), paths };
}

/**
 * A well-formed request for a pipelined (kept-alive) connection. `slow`: on the query API, a
 * prediction the test model answers after 150 ms (a strings input starting "slow:").
 */
export function pipelinable(rng: Rng, api: 'query' | 'admin', apps: readonly RealApp[], slow = false): { bytes: Buffer; head?: boolean; path: string } {
  const keep = { close: false };
  const ct: Array<[string, string]> = [['Content-Type', 'application/json']];
  if (slow && api === 'query') {
    return { bytes: rawRequest('POST', '/app-strings/predict', ct, JSON.stringify({ input: `slow:${rng.ascii(12)}` }), keep), path: '/app-strings/predict' };
  }
  if (api === 'admin') {
    return rng.pick([
      () => ({ bytes: rawRequest('GET', '/admin/ping', [], undefined, keep), path: '/admin/ping' }),
      () => ({ bytes: rawRequest('POST', '/admin/get_all_models', ct, '{"verbose":false}', keep), path: '/admin/get_all_models' }),
      () => ({ bytes: rawRequest('HEAD', '/admin/ping', [], undefined, keep), head: true, path: '/admin/ping' }),
    ])();
  }
  const app = rng.pick(apps);
  return rng.pick([
    () => ({ bytes: rawRequest('POST', `/${app.name}/predict`, ct, JSON.stringify({ input: validInput(app.type, rng) }), keep), path: `/${app.name}/predict` }),
    () => ({ bytes: rawRequest('GET', '/metrics', [], undefined, keep), path: '/metrics' }),
  ])();
}
