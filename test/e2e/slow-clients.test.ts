import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { ECHO_MODEL, startTestServer, writeJsModel, type TestServer } from '../helpers/server.ts';

/**
 * Finding 9 (docs/security.md): slow clients are cut off at the configured timeouts with a 408,
 * and an oversized body always gets a 413 JSON answer, never a reset. Timing assertions have
 * generous upper bounds (3× the timeout) so they do not depend on the machine's speed.
 */
const REQUEST_MS = 1500;
const HEADERS_MS = 1000;
const KEEP_ALIVE_MS = 1000;
const MB = 1024 * 1024;

interface RawExchange { text: string; ms: number; error?: string }

/** Opens a raw connection, runs `write` on it, and collects everything until the server closes it. */
function raw(url: string, write: (s: Socket) => void, giveUpMs = 20_000): Promise<RawExchange> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve) => {
    const started = Date.now();
    const s = connect(Number(port), hostname);
    const chunks: Buffer[] = [];
    let error: string | undefined;
    const timer = setTimeout(() => s.destroy(), giveUpMs);
    s.on('data', (d) => chunks.push(d));
    s.on('error', (e: NodeJS.ErrnoException) => { error = e.code ?? e.message; });
    s.on('close', () => {
      clearTimeout(timer);
      resolve({ text: Buffer.concat(chunks).toString('utf8'), ms: Date.now() - started, error });
    });
    s.on('connect', () => write(s));
  });
}

function parseResponse(text: string): { status: number; body: any } {
  const [head, ...rest] = text.split('\r\n\r\n');
  const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(head ?? '')?.[1]);
  return { status, body: JSON.parse(rest.join('\r\n\r\n')) };
}

describe('slow clients and large bodies', () => {
  let s: TestServer;
  let predictPath: string;
  before(async () => {
    s = await startTestServer({ requestTimeoutMs: REQUEST_MS, headersTimeoutMs: HEADERS_MS, keepAliveTimeoutMs: KEEP_ALIVE_MS });
    await s.admin('add_app', { name: 'echo', input_type: 'strings', latency_slo_micros: 2_000_000 });
    await s.admin('add_model', { model_name: 'echo-model', model_version: '1', input_type: 'strings', model_data_path: writeJsModel(ECHO_MODEL('v1')) });
    await s.admin('add_model_links', { app_name: 'echo', model_names: ['echo-model'] });
    predictPath = '/echo/predict';
  });
  after(() => s.close());

  const head = (length: number, extra = '') => `POST ${predictPath} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${length}\r\n${extra}\r\n`;

  it('a half-sent body is answered 408 and closed within the request timeout', async () => {
    for (const url of [s.app.queryUrl, s.app.adminUrl]) {
      const r = await raw(url, (sock) => sock.write(`${head(1000)}{"input": "`));
      assert.ok(r.ms >= REQUEST_MS * 0.6 && r.ms < REQUEST_MS * 3, `closed after ${r.ms} ms`);
      const res = parseResponse(r.text);
      assert.equal(res.status, 408, r.text);
      assert.equal(res.body.error, 'REQUEST_TIMEOUT');
    }
  });

  it('incomplete headers, or none at all, are answered 408 and closed within the headers timeout', async () => {
    for (const write of [(sock: Socket) => sock.write(`POST ${predictPath} HTTP/1.1\r\nHost: x\r\n`), () => {}]) {
      const r = await raw(s.app.queryUrl, write);
      assert.ok(r.ms >= HEADERS_MS * 0.6 && r.ms < HEADERS_MS * 3, `closed after ${r.ms} ms`);
      if (r.text !== '') assert.equal(parseResponse(r.text).body.error, 'REQUEST_TIMEOUT');
    }
  });

  it('an idle kept-alive connection is closed after the keep-alive timeout; a slow but timely request is served', async () => {
    const body = JSON.stringify({ input: 'slow' });
    const r = await raw(s.app.queryUrl, (sock) => {
      sock.write(head(body.length) + body.slice(0, 5));
      setTimeout(() => sock.write(body.slice(5)), REQUEST_MS / 3);
    });
    const res = parseResponse(r.text);
    assert.equal(res.status, 200, r.text);
    assert.equal(res.body.output, 'v1:slow');
    // Node closes an idle kept-alive socket after keepAliveTimeout (plus its own 1 s margin).
    assert.ok(r.ms < REQUEST_MS / 3 + KEEP_ALIVE_MS * 3 + 1000, `closed after ${r.ms} ms`);
  });

  it('a 30 MB body always gets a 413 JSON answer, never a reset, however it is sent', async () => {
    const size = 30 * MB;
    const big = Buffer.alloc(size, 0x20);
    const ways: Record<string, (sock: Socket) => void> = {
      'one write with Content-Length': (sock) => sock.write(Buffer.concat([Buffer.from(head(size)), big])),
      'Content-Length, Connection: close': (sock) => sock.write(Buffer.concat([Buffer.from(head(size, 'Connection: close\r\n')), big])),
      'chunked': (sock) => {
        const h = `POST ${predictPath} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n`;
        sock.write(Buffer.concat([Buffer.from(h), Buffer.from(`${size.toString(16)}\r\n`), big, Buffer.from('\r\n0\r\n\r\n')]));
      },
    };
    for (let round = 0; round < 4; round++) {
      for (const [how, write] of Object.entries(ways)) {
        for (const url of [s.app.queryUrl, s.app.adminUrl]) {
          // The server closes the connection after the 413 (the client does not half-close: Node
          // aborts a request whose client has sent FIN before the answer).
          const r = await raw(url, write);
          assert.equal(r.error, undefined, `${how}: ${r.error}`);
          const res = parseResponse(r.text);
          assert.equal(res.status, 413, `${how}: ${r.text.slice(0, 200)}`);
          assert.equal(res.body.error, 'BODY_TOO_LARGE');
        }
      }
      const viaFetch = await fetch(`${s.app.queryUrl}${predictPath}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: big });
      assert.equal(viaFetch.status, 413);
      assert.equal((await viaFetch.json()).error, 'BODY_TOO_LARGE');
    }
    assert.equal((await s.predict('echo', { input: 'still here' })).body.output, 'v1:still here');
  });

  it('a refusal before the body is read (401 of an application with keys) is not lost to a reset either', async () => {
    await s.admin('add_app', { name: 'locked', input_type: 'strings' });
    assert.equal((await s.admin('set_app_keys', { app_name: 'locked', keys: ['locked-key-123456'] })).status, 200);
    const size = 30 * MB;
    const h = `POST /locked/predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${size}\r\nConnection: close\r\n\r\n`;
    for (let round = 0; round < 4; round++) {
      const r = await raw(s.app.queryUrl, (sock) => sock.write(Buffer.concat([Buffer.from(h), Buffer.alloc(size, 0x20)])));
      assert.equal(r.error, undefined, r.error);
      const res = parseResponse(r.text);
      assert.equal(res.status, 401, r.text.slice(0, 200));
      assert.equal(res.body.error, 'UNAUTHORIZED');
    }
  });

  it('oversized headers get a 400 JSON answer', async () => {
    const r = await raw(s.app.queryUrl, (sock) => sock.write(`GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(32 * 1024)}\r\n\r\n`));
    const res = parseResponse(r.text);
    assert.equal(res.status, 400, r.text.slice(0, 200));
    assert.equal(res.body.error, 'INVALID_INPUT');
    assert.match(res.body.cause, /headers are too large/);
  });
});
