/**
 * Latency probe, run in its own process (latency.ts spawns it): one request at a time over one
 * keep-alive connection, timed with hrtime (autocannon's histogram rounds to whole milliseconds,
 * too coarse for sub-millisecond overheads). Counts non-2xx answers and `"default":true` answers.
 * Config as JSON in argv[2]; prints one JSON result line.
 */
import { Agent, request } from 'node:http';
import { makeBodyFactory, type BodySpec } from './bodies.ts';

interface Config { url: string; durationSec: number; warmupSec: number; spec: BodySpec }

const cfg = JSON.parse(process.argv[2]!) as Config;
const makeBody = makeBodyFactory(cfg.spec);
const agent = new Agent({ keepAlive: true, maxSockets: 1 });
const target = new URL(cfg.url);

function post(body: string): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = request({
      agent, host: target.hostname, port: target.port, path: target.pathname, method: 'POST',
      headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
    }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString() }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

const latencies: number[] = [];
let errors = 0;
let non2xx = 0;
let defaults = 0;
let i = 0;
const warmEnd = performance.now() + cfg.warmupSec * 1000;
while (performance.now() < warmEnd) await post(makeBody(i++)).catch(() => undefined);
const started = performance.now();
const end = started + cfg.durationSec * 1000;
while (performance.now() < end) {
  const body = makeBody(i++);
  const t0 = process.hrtime.bigint();
  try {
    const res = await post(body);
    latencies.push(Number(process.hrtime.bigint() - t0) / 1e6);
    if (res.status < 200 || res.status >= 300) non2xx++;
    else if (res.text.includes('"default":true')) defaults++;
  } catch {
    errors++;
  }
}
const elapsed = (performance.now() - started) / 1000;
latencies.sort((a, b) => a - b);
const pct = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor((p / 100) * latencies.length))] ?? NaN;
console.log(JSON.stringify({
  rps: latencies.length / elapsed,
  total: latencies.length,
  p50: pct(50),
  p99: pct(99),
  mean: latencies.reduce((a, b) => a + b, 0) / latencies.length,
  errors: errors + non2xx,
  non2xx,
  defaults,
}));
agent.destroy();
