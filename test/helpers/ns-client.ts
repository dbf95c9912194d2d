/**
 * A client inside a test network's namespace, so the test never sends a packet from the root
 * namespace to the network's addresses. A small node process runs in the namespace (spawnIn) and
 * listens on a UNIX socket in a temp directory (the filesystem is shared; the network is not);
 * the test speaks HTTP to it over that socket:
 *
 *   POST /fwd         {url, method?, headers?, body?, timeoutMs?} → {status, body, ms} or {error, ms}
 *                     one request made from inside the namespace (a fresh connection each time)
 *   POST /load/start  {url, ratePerS, headers?, timeoutMs?, tag?} → {id}
 *                     an open-loop stream of `POST {input: <unique string>}` at a steady rate
 *                     (a query is sent on schedule whether or not earlier ones have answered)
 *   POST /load/stop   {id} → {samples: [{at, ms, status?, output?, isDefault?, error?}]}
 *                     stops it, waits for the queries in flight (each bounded by timeoutMs), and
 *                     returns one sample per query, `at` being ms since the stream started
 *   GET  /load/peek?id → the samples so far (queries still in flight are not included)
 *
 * Every request gets a fresh TCP connection (agent: false), so no kept-alive socket that the
 * server closes while idle can turn into a spurious client-side error.
 */
import { mkdtempSync, rmSync, existsSync } from 'node:fs';
import http from 'node:http';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import type { Network } from './netns.ts';

export interface FwdResult { status?: number; body?: any; text?: string; ms: number; error?: string }
export interface LoadSample { at: number; ms: number; status?: number; output?: unknown; isDefault?: boolean; error?: string }

export interface NsClient {
  /** One HTTP request from inside the namespace. The body (an object) is sent as JSON. */
  request(url: string, opts?: { method?: string; headers?: Record<string, string>; body?: unknown; timeoutMs?: number }): Promise<FwdResult>;
  startLoad(opts: { url: string; ratePerS: number; headers?: Record<string, string>; timeoutMs?: number; tag?: string }): Promise<string>;
  peekLoad(id: string): Promise<LoadSample[]>;
  stopLoad(id: string): Promise<LoadSample[]>;
  close(): Promise<void>;
}

const SCRIPT = String.raw`
const http = require('node:http');
const fs = require('node:fs');
const sock = process.argv[1];
const loads = new Map();
let nextLoad = 1;

function call(url, { method = 'GET', headers = {}, body, timeoutMs = 15000 } = {}) {
  const t0 = process.hrtime.bigint();
  const ms = () => Number(process.hrtime.bigint() - t0) / 1e6;
  return new Promise((resolve) => {
    let done = false;
    const finish = (v) => { if (!done) { done = true; resolve({ ...v, ms: ms() }); } };
    const data = body === undefined ? undefined : Buffer.from(typeof body === 'string' ? body : JSON.stringify(body));
    const h = { ...headers };
    if (data) { h['content-type'] ??= 'application/json'; h['content-length'] = data.length; }
    let req;
    try {
      req = http.request(url, { method, headers: h, agent: false }, (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString();
          let parsed;
          try { parsed = JSON.parse(text); } catch { parsed = undefined; }
          finish({ status: res.statusCode, body: parsed, text: parsed === undefined ? text.slice(0, 500) : undefined });
        });
        res.on('error', (e) => finish({ error: 'response: ' + (e.code || e.message) }));
      });
    } catch (e) {
      return finish({ error: String(e.message || e) });
    }
    const timer = setTimeout(() => { finish({ error: 'timeout after ' + timeoutMs + ' ms' }); req.destroy(); }, timeoutMs);
    req.on('close', () => clearTimeout(timer));
    req.on('error', (e) => finish({ error: e.code || e.message }));
    req.end(data);
  });
}

function startLoad(o) {
  const id = String(nextLoad++);
  const l = { samples: [], inflight: new Set(), stopped: false, start: Date.now(), seq: 0 };
  const period = 1000 / o.ratePerS;
  const tag = o.tag || ('q' + id);
  const fire = () => {
    if (l.stopped) return;
    const n = l.seq++;
    const at = Date.now() - l.start;
    const p = call(o.url, { method: 'POST', headers: o.headers, body: { input: tag + '-' + n + '-' + Math.random().toString(36).slice(2, 8) }, timeoutMs: o.timeoutMs || 15000 })
      .then((r) => {
        l.samples.push({ at, ms: r.ms, status: r.status, output: r.body && r.body.output, isDefault: r.body && r.body.default, error: r.error || (r.status !== 200 ? (r.text || JSON.stringify(r.body)).slice(0, 300) : undefined) });
      });
    l.inflight.add(p);
    p.then(() => l.inflight.delete(p));
    // On schedule from the start, not from the previous send: a slow event loop catches up.
    const due = l.start + (l.seq) * period;
    l.timer = setTimeout(fire, Math.max(0, due - Date.now()));
  };
  fire();
  loads.set(id, l);
  return id;
}

const server = http.createServer((req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', async () => {
    const reply = (code, v) => { res.writeHead(code, { 'content-type': 'application/json' }); res.end(JSON.stringify(v)); };
    try {
      const u = new URL(req.url, 'http://x');
      const b = chunks.length ? JSON.parse(Buffer.concat(chunks).toString()) : {};
      if (u.pathname === '/fwd') return reply(200, await call(b.url, b));
      if (u.pathname === '/load/start') return reply(200, { id: startLoad(b) });
      if (u.pathname === '/load/peek') {
        const l = loads.get(u.searchParams.get('id'));
        return l ? reply(200, { samples: l.samples }) : reply(404, { error: 'no such load' });
      }
      if (u.pathname === '/load/stop') {
        const l = loads.get(b.id);
        if (!l) return reply(404, { error: 'no such load' });
        l.stopped = true;
        clearTimeout(l.timer);
        await Promise.all([...l.inflight]);
        loads.delete(b.id);
        return reply(200, { samples: l.samples.sort((x, y) => x.at - y.at) });
      }
      reply(404, { error: 'unknown path ' + u.pathname });
    } catch (e) {
      reply(500, { error: String(e && e.message || e) });
    }
  });
});
try { fs.unlinkSync(sock); } catch {}
server.listen(sock, () => console.log('ready'));
`;

/** Starts the forwarder in `host`'s namespace; its socket lives in a fresh directory under `parent`. */
export async function startNsClient(net: Network, host: string, parent = '/tmp'): Promise<NsClient> {
  const dir = mkdtempSync(join(parent, 'ck-nsc-'));
  const sock = join(dir, 'fwd.sock');
  const child: ChildProcess = net.spawnIn(host, process.execPath, ['-e', SCRIPT, sock], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => { stderr = (stderr + d.toString()).slice(-4000); });
  const ready = await new Promise<boolean>((resolve) => {
    let out = '';
    const timer = setTimeout(() => resolve(false), 30_000);
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('ready')) { clearTimeout(timer); resolve(true); }
    });
    child.once('exit', () => { clearTimeout(timer); resolve(false); });
  });
  const kill = () => {
    if (child.pid && child.exitCode === null && child.signalCode === null) {
      try {
        process.kill(-child.pid, 'SIGKILL');
      } catch {
        // gone
      }
    }
  };
  if (!ready) {
    kill();
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`the client forwarder in ${host} did not start: ${stderr}`);
  }

  const ask = <T>(method: string, path: string, body?: unknown, timeoutMs = 120_000): Promise<T> => new Promise((resolve, reject) => {
    const data = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const req = http.request({ socketPath: sock, method, path, agent: false, headers: data ? { 'content-type': 'application/json', 'content-length': data.length } : {} }, (res) => {
      let text = '';
      res.on('data', (d: Buffer) => { text += d.toString(); });
      res.on('end', () => {
        try {
          const v = JSON.parse(text);
          if (res.statusCode !== 200) reject(new Error(`forwarder ${path}: ${res.statusCode} ${text}`));
          else resolve(v as T);
        } catch {
          reject(new Error(`forwarder ${path}: ${res.statusCode} ${text.slice(0, 300)}`));
        }
      });
    });
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`forwarder ${path}: no answer in ${timeoutMs} ms`)));
    req.once('error', reject);
    req.end(data);
  });

  return {
    request: (url, o = {}) => ask<FwdResult>('POST', '/fwd', { url, ...o }, (o.timeoutMs ?? 15_000) + 30_000),
    startLoad: async (o) => (await ask<{ id: string }>('POST', '/load/start', o)).id,
    peekLoad: async (id) => (await ask<{ samples: LoadSample[] }>('GET', `/load/peek?id=${encodeURIComponent(id)}`)).samples,
    stopLoad: async (id) => (await ask<{ samples: LoadSample[] }>('POST', '/load/stop', { id })).samples,
    close: async () => {
      kill();
      if (child.exitCode === null && child.signalCode === null) await new Promise((r) => child.once('exit', r));
      if (existsSync(dir)) rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Counts and latency figures of a load's samples; `real` tells a real answer from a wrong one. */
export function summarize(samples: LoadSample[], real: (s: LoadSample) => boolean) {
  const ok = samples.filter((s) => s.status === 200 && !s.error);
  const lat = samples.filter((s) => !s.error).map((s) => s.ms).sort((a, b) => a - b);
  const pct = (p: number) => (lat.length ? lat[Math.min(lat.length - 1, Math.floor((p / 100) * lat.length))]! : NaN);
  return {
    sent: samples.length,
    real: ok.filter((s) => !s.isDefault && real(s)).length,
    defaults: ok.filter((s) => s.isDefault).length,
    wrong: ok.filter((s) => !s.isDefault && !real(s)).length,
    httpErrors: samples.filter((s) => s.status !== undefined && s.status !== 200).length,
    failures: samples.filter((s) => s.error && s.status === undefined).length,
    p50: pct(50),
    p99: pct(99),
    max: lat.length ? lat[lat.length - 1]! : NaN,
  };
}
