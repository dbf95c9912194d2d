/**
 * Open-loop load generator, run in its own process (open-loop.ts spawns it): requests leave on a
 * fixed schedule (phases of constant rate), whether or not earlier ones were answered, so a slow
 * server faces the same arrivals a real client population would send. Keep-alive node:http Agent
 * with many sockets; single-input predicts with a different input every request (or, with
 * `repeat`, a mix of repeated and fresh inputs); 127.0.0.1 only.
 *
 * Latency is measured from the request's scheduled time (not from when it left), so a generator
 * that falls behind shows up as latency instead of hiding it (no coordinated omission).
 *
 * Config as JSON in argv[2]. Prints `{"event":"start","epochMs":...}` (when the schedule's t = 0
 * is, on the wall clock) before the first request, then one `{"event":"result",...}` line.
 */
import { Agent, request } from 'node:http';
import { DEFAULT, FAILED, NON_2XX, REAL, UNANSWERED, schedule, type OpenLoopConfig, type OpenLoopResult } from './open-loop.ts';

const cfg = JSON.parse(process.argv[2]!) as OpenLoopConfig;
const target = new URL(cfg.url);
if (target.hostname !== '127.0.0.1') {
  console.error(`open-loop: refusing to send traffic to ${target.hostname}; only 127.0.0.1 is allowed`);
  process.exit(2);
}
process.once('SIGTERM', () => process.exit(143));

const due = schedule(cfg.phases);
const totalMs = cfg.phases.reduce((s, p) => s + p.seconds * 1000, 0);
const latency = new Float64Array(due.length).fill(NaN);
const outcome = new Uint8Array(due.length).fill(UNANSWERED);
const lag = new Float64Array(due.length);
const errorSamples: string[] = [];
const agent = new Agent({ keepAlive: true, maxSockets: cfg.maxSockets, maxFreeSockets: cfg.maxSockets, scheduling: 'fifo' });
let pending = 0;

/** Which input request i sends: its own, or (cfg.repeat) in turn one of the hot inputs, numbered before the fresh ones. */
function inputIndex(i: number): number {
  const r = cfg.repeat;
  if (!r) return i;
  const repeated = Math.floor((i + 1) * r.share) > Math.floor(i * r.share);
  return repeated ? Math.floor(i * r.share) % r.hot : r.hot + i;
}

function body(i: number): string {
  const n = inputIndex(i);
  const parts: string[] = new Array(cfg.width);
  for (let k = 0; k < cfg.width; k++) parts[k] = String(cfg.inputBase + n * cfg.width + k);
  return `{"input":[${parts.join(',')}]}`;
}

function send(i: number, t0: number): void {
  const text = body(i);
  pending++;
  let settled = false;
  const settle = (kind: number, err?: string) => {
    if (settled) return;
    settled = true;
    pending--;
    latency[i] = performance.now() - (t0 + due[i]!);
    outcome[i] = kind;
    if (err && errorSamples.length < 5) errorSamples.push(err);
  };
  const req = request({
    agent, host: target.hostname, port: target.port, path: target.pathname, method: 'POST',
    headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) },
  }, (res) => {
    const chunks: Buffer[] = [];
    res.on('data', (c: Buffer) => chunks.push(c));
    res.on('end', () => {
      const status = res.statusCode ?? 0;
      const payload = Buffer.concat(chunks).toString();
      if (status < 200 || status >= 300) return settle(NON_2XX, `HTTP ${status}: ${payload.slice(0, 200)}`);
      try {
        const answer = JSON.parse(payload) as { default?: boolean };
        settle(answer.default === false ? REAL : DEFAULT);
      } catch (e) {
        settle(NON_2XX, `unparsable answer: ${(e as Error).message}`);
      }
    });
    res.on('error', (e) => settle(FAILED, e.message));
  });
  req.setTimeout(cfg.timeoutMs, () => req.destroy(new Error(`no answer in ${cfg.timeoutMs} ms`)));
  req.on('error', (e) => settle(FAILED, e.message));
  req.end(text);
  lag[i] = performance.now() - (t0 + due[i]!);
}

const t0 = performance.now() + 300;
const epochMs = performance.timeOrigin + t0;
console.log(JSON.stringify({ event: 'start', epochMs }));

let next = 0;
await new Promise<void>((resolve) => {
  const tick = () => {
    const now = performance.now() - t0;
    while (next < due.length && due[next]! <= now) send(next++, t0);
    if (now >= totalMs && next >= due.length) return resolve();
    const wait = next < due.length ? due[next]! - now : totalMs - now;
    setTimeout(tick, Math.max(0, Math.min(wait, 50)));
  };
  setTimeout(tick, Math.max(0, t0 - performance.now()));
});
const drainEnd = performance.now() + cfg.drainMs;
while (pending > 0 && performance.now() < drainEnd) await new Promise((r) => setTimeout(r, 20));
agent.destroy();

const lags = Array.from(lag).sort((a, b) => a - b);
const result: OpenLoopResult = {
  epochMs,
  latencyMs: Array.from(latency, (l) => (Number.isNaN(l) ? -1 : Math.round(l * 100) / 100)),
  outcome: Array.from(outcome),
  sendLagP99Ms: lags[Math.floor(lags.length * 0.99)] ?? 0,
  sendLagMaxMs: lags[lags.length - 1] ?? 0,
  errorSamples,
};
// Exit only once the line is out: stdout to a pipe is asynchronous, and exit() would cut it short.
process.stdout.write(`${JSON.stringify({ event: 'result', ...result })}\n`, () => process.exit(0));
