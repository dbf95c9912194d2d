/**
 * The wrk driver (bench/lib/wrk.ts): what its generated Lua script sends and counts, checked
 * against a node:http server that records every body. Skips when /usr/bin/wrk is absent.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { bodiesFile, luaString, runWrk, WRK } from '../../bench/lib/wrk.ts';

const seen: Buffer[] = [];
const headers: Array<Record<string, string | string[] | undefined>> = [];
let server: Server;
let url = '';

describe('bench/lib/wrk.ts', { skip: existsSync(WRK) ? false : `${WRK} is not installed` }, () => {
  before(async () => {
    server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const body = Buffer.concat(chunks);
        seen.push(body);
        headers.push(req.headers);
        // "bad" bodies answer 500; "dflt" bodies answer a default output.
        if (body.includes('bad')) return res.writeHead(500).end('{"error":"bad"}');
        res.writeHead(200, { 'content-type': 'application/json' }).end(body.includes('dflt') ? '{"default":true}' : '{"default":false}');
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const addr = server.address();
    url = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}/x/predict`;
  });
  after(() => new Promise<void>((r) => server.close(() => r())));

  it('escapes any bytes into a Lua string literal', () => {
    assert.equal(luaString('a"b\\c\n'), '"a\\034b\\092c\\010"');
    assert.equal(luaString('é'), '"\\195\\169"');
  });

  it('frames bodies as length, newline, bytes', () => {
    assert.deepEqual(bodiesFile(['ab', Buffer.from([0, 10, 255])]), Buffer.from([0x32, 0x0a, 0x61, 0x62, 0x33, 0x0a, 0, 10, 255]));
  });

  it('cycles through binary bodies byte for byte, with the headers, counting non-2xx and defaults', async () => {
    seen.length = 0;
    headers.length = 0;
    const binary = Buffer.from([0, 1, 2, 10, 13, 0x22, 0x5c, 255, 128]);
    const bodies = [binary, 'dflt', 'bad', Buffer.concat([Buffer.from('\n7\n'), binary])];
    const r = await runWrk({
      url, threads: 2, connections: 4, durationSec: 1, bodies: { kind: 'cycle', bodies },
      headers: { 'Content-Type': 'application/octet-stream', 'Inference-Header-Content-Length': '3' }, defaultMarker: '"default":true',
    });
    assert.ok(r.requests > 100, `${r.requests} requests`);
    const sent = new Set(bodies.map((b) => Buffer.from(b).toString('hex')));
    for (const b of seen) assert.ok(sent.has(b.toString('hex')), `unexpected body ${b.toString('hex')}`);
    assert.equal(new Set(seen.map((b) => b.toString('hex'))).size, 4);
    assert.equal(headers[0]!['inference-header-content-length'], '3');
    assert.equal(headers[0]!['content-type'], 'application/octet-stream');
    // About a quarter each; the run's last answers may be cut off, so compare loosely.
    assert.ok(Math.abs(r.non2xx / r.requests - 0.25) < 0.05, `non2xx ${r.non2xx} of ${r.requests}`);
    assert.ok(Math.abs(r.defaults / r.requests - 0.25) < 0.05, `defaults ${r.defaults} of ${r.requests}`);
    assert.ok(r.p50 > 0 && r.p99 >= r.p50);
  });

  it('sends distinct inputs that never repeat, across threads and runs', async () => {
    seen.length = 0;
    const one = await runWrk({ url, threads: 2, connections: 4, durationSec: 1, bodies: { kind: 'distinct', width: 4 } });
    await runWrk({ url, threads: 1, connections: 1, durationSec: 1, bodies: { kind: 'distinct', width: 4 } });
    const texts = seen.map((b) => b.toString('utf8'));
    assert.ok(texts.length >= one.requests);
    for (const t of texts.slice(0, 50)) {
      const input = (JSON.parse(t) as { input: number[] }).input;
      assert.equal(input.length, 4);
      assert.deepEqual(input, [0, 1, 2, 3].map((k) => input[0]! + k));
    }
    const values = texts.flatMap((t) => (JSON.parse(t) as { input: number[] }).input);
    assert.equal(new Set(values).size, values.length, 'an input value was sent twice');
    assert.equal(one.non2xx, 0);
  });

  it('sends one fixed body', async () => {
    seen.length = 0;
    const r = await runWrk({ url, threads: 1, connections: 2, durationSec: 1, bodies: { kind: 'one', body: '{"input":[1,2]}' } });
    assert.ok(r.requests > 0);
    assert.deepEqual(new Set(seen.map((b) => b.toString())), new Set(['{"input":[1,2]}']));
  });

  it('refuses a target other than 127.0.0.1', async () => {
    await assert.rejects(runWrk({ url: 'http://10.0.0.1:1/x', threads: 1, connections: 1, durationSec: 1, bodies: { kind: 'distinct', width: 1 } }), /127\.0\.0\.1 only/);
  });
});
