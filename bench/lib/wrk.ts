/**
 * Load from wrk (Debian's C load generator, /usr/bin/wrk): far less CPU per request than a node
 * load generator, which matters when the generator, the server and the containers share 2 cores.
 *
 * `runWrk` writes a Lua script and the request bodies to a temp dir (removed after), runs
 * `wrk -s script.lua` as a child process and parses the one JSON line the script's `done` hook
 * prints. The script:
 * - sends POSTs with the given headers, bodies one of: one fixed body (`one`: wrk formats the
 *   request once), a list of pre-made bodies each thread cycles through from its own offset
 *   (`cycle`; raw bytes are fine: the bodies are read from a length-prefixed file with io.open,
 *   never embedded in Lua source), or `{"input":[v, v+1, ...]}` with a v no run of this process
 *   sends twice (`distinct`: made in Lua per request, so a cache never sees an input again);
 * - counts non-2xx answers, and answers whose body contains `defaultMarker` (a default output);
 * - reports requests, duration and latency percentiles (wrk's histogram, microseconds).
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const WRK = '/usr/bin/wrk';

export type WrkBodies =
  | { kind: 'one'; body: string | Buffer }
  | { kind: 'cycle'; bodies: Array<string | Buffer> }
  | { kind: 'distinct'; width: number };

export interface WrkConfig {
  /** Must be on 127.0.0.1. */
  url: string;
  threads: number;
  connections: number;
  durationSec: number;
  bodies: WrkBodies;
  headers?: Record<string, string>;
  /** A substring of an answer body that means "this is a default output" (counted, per answer). */
  defaultMarker?: string;
  timeoutSec?: number;
}

export interface WrkResult {
  rps: number;
  requests: number;
  durationSec: number;
  /** Latency, milliseconds (wrk measures microseconds). */
  p50: number;
  p99: number;
  mean: number;
  max: number;
  non2xx: number;
  /** Answers containing the default marker. */
  defaults: number;
  /** connect + read + write errors and timeouts. */
  socketErrors: number;
  /** CPU wrk itself used, in cores (CPU seconds / wall seconds); NaN without /proc. */
  wrkCores: number;
}

const RESULT_PREFIX = 'WRK_RESULT ';

/** A Lua string literal for any bytes: printable ASCII as is, everything else as a decimal escape. */
export function luaString(s: string): string {
  let out = '"';
  for (const b of Buffer.from(s, 'utf8')) {
    if (b >= 0x20 && b < 0x7f && b !== 0x22 && b !== 0x5c) out += String.fromCharCode(b);
    else out += `\\${b.toString().padStart(3, '0')}`;
  }
  return `${out}"`;
}

/** Bodies file: for each body, its length in decimal, a newline, then its bytes. */
export function bodiesFile(bodies: Array<string | Buffer>): Buffer {
  const parts: Buffer[] = [];
  for (const b of bodies) {
    const bytes = typeof b === 'string' ? Buffer.from(b, 'utf8') : b;
    parts.push(Buffer.from(`${bytes.length}\n`, 'ascii'), bytes);
  }
  return Buffer.concat(parts);
}

/**
 * Start values for `distinct` runs: each run of this process takes its own 2^26-wide range
 * (room for 16M inputs of width 4), from a random start, so two runs (a warm-up and its
 * measured run, or two processes) never send the same input. Values stay below 2^51: exact
 * as doubles and printed exactly by Lua's %d.
 */
let distinctRun = Math.floor(Math.random() * 2 ** 23);
function nextDistinctBase(): number {
  distinctRun = (distinctRun + 1) % 2 ** 24;
  return distinctRun * 2 ** 26;
}

/** The Lua script for one run. Bodies (if any) are read from `bodiesPath`. */
export function wrkScript(cfg: WrkConfig, bodiesPath: string): string {
  const lines: string[] = [];
  lines.push('wrk.method = "POST"');
  for (const [k, v] of Object.entries(cfg.headers ?? {})) lines.push(`wrk.headers[${luaString(k)}] = ${luaString(v)}`);
  lines.push(`
local threads = {}
function setup(thread)
  thread:set("tid", #threads)
  table.insert(threads, thread)
end

non2xx = 0
defaults = 0
local marker = ${cfg.defaultMarker === undefined ? 'nil' : luaString(cfg.defaultMarker)}
function response(status, headers, body)
  if status < 200 or status > 299 then
    non2xx = non2xx + 1
  elseif marker and body and string.find(body, marker, 1, true) then
    defaults = defaults + 1
  end
end

local function readBodies(path)
  local f = assert(io.open(path, "rb"))
  local data = f:read("*a")
  f:close()
  local list, pos = {}, 1
  while pos <= #data do
    local nl = string.find(data, "\\n", pos, true)
    local len = tonumber(string.sub(data, pos, nl - 1))
    list[#list + 1] = string.sub(data, nl + 1, nl + len)
    pos = nl + len + 1
  end
  return list
end
`);
  const b = cfg.bodies;
  if (b.kind === 'one') {
    // No request(): wrk formats the request once, after init.
    lines.push(`function init(args)\n  wrk.body = readBodies(${luaString(bodiesPath)})[1]\nend`);
  } else if (b.kind === 'cycle') {
    lines.push(`
local reqs, i = {}, 0
function init(args)
  local bodies = readBodies(${luaString(bodiesPath)})
  for k = 1, #bodies do reqs[k] = wrk.format(nil, nil, nil, bodies[k]) end
  i = (tid * math.floor(#reqs / ${cfg.threads})) % #reqs
end
function request()
  i = i % #reqs + 1
  return reqs[i]
end`);
  } else {
    const width = b.width;
    const base = nextDistinctBase();
    const values = Array.from({ length: width }, (_, k) => (k === 0 ? 'v' : `v + ${k}`));
    lines.push(`
local n = 0
function request()
  local v = ${base} + (n * ${cfg.threads} + tid) * ${width}
  n = n + 1
  return wrk.format(nil, nil, nil, string.format('{"input":[${values.map(() => '%d').join(',')}]}', ${values.join(', ')}))
end`);
  }
  lines.push(`
function done(summary, latency, requests)
  local bad, defs = 0, 0
  for _, t in ipairs(threads) do
    bad = bad + t:get("non2xx")
    defs = defs + t:get("defaults")
  end
  local e = summary.errors
  io.write(string.format('${RESULT_PREFIX}{"requests":%d,"durationUs":%d,"p50":%d,"p99":%d,"mean":%.1f,"max":%d,"non2xx":%d,"defaults":%d,"socketErrors":%d}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99), latency.mean, latency.max,
    bad, defs, e.connect + e.read + e.write + e.timeout))
end
`);
  return lines.join('\n');
}

/** CPU seconds of this process's children that have exited and been waited for. */
function childCpuSec(): number {
  if (!existsSync('/proc/self/stat')) return NaN;
  const f = readFileSync('/proc/self/stat', 'utf8');
  const fields = f.slice(f.lastIndexOf(')') + 2).split(' ').map(Number);
  return (fields[13]! + fields[14]!) / 100; // cutime + cstime, USER_HZ ticks
}

export async function runWrk(cfg: WrkConfig): Promise<WrkResult> {
  const target = new URL(cfg.url);
  if (target.hostname !== '127.0.0.1') throw new Error(`wrk load goes to 127.0.0.1 only, not ${cfg.url}`);
  if (cfg.connections < cfg.threads) throw new Error(`wrk needs at least one connection per thread (${cfg.connections} < ${cfg.threads})`);
  const dir = mkdtempSync(join(tmpdir(), 'clipper-bench-wrk-'));
  try {
    const bodiesPath = join(dir, 'bodies.bin');
    const b = cfg.bodies;
    if (b.kind !== 'distinct') writeFileSync(bodiesPath, bodiesFile(b.kind === 'one' ? [b.body] : b.bodies));
    const script = join(dir, 'load.lua');
    writeFileSync(script, wrkScript(cfg, bodiesPath));
    const args = ['-t', String(cfg.threads), '-c', String(cfg.connections), '-d', `${cfg.durationSec}s`, '--timeout', `${cfg.timeoutSec ?? 5}s`, '-s', script, cfg.url];
    const cpu0 = childCpuSec();
    const stdout = await new Promise<string>((resolve, reject) => {
      execFile(WRK, args, { maxBuffer: 1 << 20, timeout: (cfg.durationSec + 60) * 1000 }, (err, out, stderr) => {
        if (err) return reject(new Error(`wrk failed: ${(stderr || out || err.message).slice(-2000)}`));
        resolve(out);
      });
    });
    const wrkCores = (childCpuSec() - cpu0) / cfg.durationSec;
    const line = stdout.split('\n').find((l) => l.startsWith(RESULT_PREFIX));
    if (!line) throw new Error(`wrk printed no result line: ${stdout.slice(-2000)}`);
    const r = JSON.parse(line.slice(RESULT_PREFIX.length)) as {
      requests: number; durationUs: number; p50: number; p99: number; mean: number; max: number; non2xx: number; defaults: number; socketErrors: number;
    };
    const durationSec = r.durationUs / 1e6;
    return {
      rps: r.requests / durationSec, requests: r.requests, durationSec,
      p50: r.p50 / 1000, p99: r.p99 / 1000, mean: r.mean / 1000, max: r.max / 1000,
      non2xx: r.non2xx, defaults: r.defaults, socketErrors: r.socketErrors, wrkCores,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
