/**
 * Soak (`npm run bench -- soak`): three minutes at 500 requests per second, open-loop, against
 * `clipper start` in a child process (so its RSS and file descriptors are its own), with the
 * prediction cache on and half the requests repeating one of a thousand hot inputs, the other half
 * fresh. Every second the server's RSS and open file descriptors (/proc/<pid>/status, /proc/<pid>/fd)
 * are sampled, and the replica's RSS. The first minute is warm-up (the cache fills to its bound,
 * V8 sizes its heap); over the remaining two minutes RSS and file descriptors must stay within
 * ±10% of their mean, and the drift — the mean of the last 20 s against the first 20 s after
 * warm-up — within ±10%.
 *
 * Writes its figures into docs/reliability.md (between `<!-- bench:soak -->` markers) and a
 * short section into docs/performance.md.
 */
import { existsSync, readFileSync, readdirSync, readlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startClipper } from '../test/helpers/cli-server.ts';
import { checkedQuery, jsModelDir, metricTotal, pct, tempDir, watchCpu } from './lib/fixtures.ts';
import { DEFAULT, FAILED, NON_2XX, REAL, UNANSWERED, startOpenLoop, type OpenLoopResult } from './lib/open-loop.ts';
import { machine, table, type Section } from './lib/report.ts';

/** CLIPPER_SOAK_SECONDS shortens a trial run; the figures in the docs come from the full 180 s. */
const SECONDS = Number(process.env.CLIPPER_SOAK_SECONDS ?? 180);
const RATE = 500;
const WARMUP_S = Math.min(60, Math.round(SECONDS / 3));
const WIDTH = 64;
const REPEAT = { share: 0.5, hot: 1000 };
/** Small enough that the fresh half of the inputs fills it within the warm-up, so eviction runs throughout. */
const CACHE_BYTES = 8 * 1024 * 1024;
const SLO_MICROS = 100_000;
const MAX_SOCKETS = 64;
const BOUND = 0.1;
/** A model that does a little arithmetic per input, like a small linear model. */
const MODEL = `export function predict(inputs) {
  return inputs.map((x) => { let s = 0; for (let i = 0; i < x.length; i++) s += x[i] * (i + 1); return String(s); });
}
`;

const RELIABILITY = join(dirname(fileURLToPath(import.meta.url)), '../docs/reliability.md');

/** One second's reading: server RSS (MB), its open fds (all, and those that are not sockets), the replica's RSS (MB). */
interface Sample { t: number; rss: number; fds: number; otherFds: number; replicaRss: number }

function rssMb(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : NaN;
  } catch {
    return NaN;
  }
}

/** Open file descriptors of `pid`: all of them, and those that are not sockets (files, pipes, eventfds). */
function fdCount(pid: number): { all: number; other: number } {
  try {
    const fds = readdirSync(`/proc/${pid}/fd`);
    let sockets = 0;
    for (const fd of fds) {
      try {
        if (readlinkSync(`/proc/${pid}/fd/${fd}`).startsWith('socket:')) sockets++;
      } catch {
        // closed meanwhile
      }
    }
    return { all: fds.length, other: fds.length - sockets };
  } catch {
    return { all: NaN, other: NaN };
  }
}

/** Child processes of `pid` (the replicas of a local-backend server). */
function childrenOf(pid: number): number[] {
  const out: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === pid) out.push(Number(name));
    } catch {
      // gone
    }
  }
  return out;
}

async function admin(adminUrl: string, endpoint: string, body: unknown): Promise<any> {
  const res = await fetch(`${adminUrl}/admin/${endpoint}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  const data = await res.json();
  if (!res.ok) throw new Error(`${endpoint}: ${JSON.stringify(data)}`);
  return data;
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
const quantile = (sorted: number[], q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? NaN;

interface Stats { min: number; max: number; mean: number; spreadUp: number; spreadDown: number; drift: number; flat: boolean }

function stats(xs: number[]): Stats {
  const m = mean(xs);
  const min = Math.min(...xs);
  const max = Math.max(...xs);
  const first = mean(xs.slice(0, 20));
  const last = mean(xs.slice(-20));
  const drift = (last - first) / first;
  const spreadUp = (max - m) / m;
  const spreadDown = (m - min) / m;
  return { min, max, mean: m, spreadUp, spreadDown, drift, flat: spreadUp <= BOUND && spreadDown <= BOUND && Math.abs(drift) <= BOUND };
}

export async function benchSoak(): Promise<Section> {
  const cpu = watchCpu();
  const dataDir = tempDir('clipper-soak-');
  const modelDir = jsModelDir(MODEL);
  const server = await startClipper(dataDir, ['--cache-bytes', String(CACHE_BYTES), '--artifact-root', tmpdir()]);
  const pid = server.proc.pid!;
  const samples: Sample[] = [];
  let sampler: NodeJS.Timeout | undefined;
  let result: OpenLoopResult | undefined;
  let hits = 0;
  let misses = 0;
  let before: Sample | undefined;
  try {
    await admin(server.adminUrl, 'add_app', { name: 'soak', input_type: 'doubles', latency_slo_micros: SLO_MICROS, default_output: 'default' });
    const added = await admin(server.adminUrl, 'add_model', { model_name: 'soak', model_version: '1', input_type: 'doubles', runtime: 'js', model_data_path: modelDir });
    if (!added.ready) throw new Error('the soak model did not become ready');
    await admin(server.adminUrl, 'add_model_links', { app_name: 'soak', model_names: ['soak'] });
    const url = `${server.queryUrl}/soak/predict`;
    await checkedQuery(url, JSON.stringify({ input: Array.from({ length: WIDTH }, (_, i) => -1 - i) }));
    const replica = () => childrenOf(pid).reduce((sum, c) => sum + rssMb(c), 0);
    const sample = (t: number): Sample => { const f = fdCount(pid); return { t, rss: rssMb(pid), fds: f.all, otherFds: f.other, replicaRss: replica() }; };
    before = sample(0);

    const run = await startOpenLoop({
      url, phases: [{ seconds: SECONDS, rate: RATE }], width: WIDTH, inputBase: 0, repeat: REPEAT, maxSockets: MAX_SOCKETS, timeoutMs: 5000, drainMs: 5000,
    });
    await new Promise((r) => setTimeout(r, Math.max(0, run.epochMs - Date.now())));
    sampler = setInterval(() => {
      const t = (Date.now() - run.epochMs) / 1000;
      if (t <= SECONDS) samples.push(sample(t));
    }, 1000);
    result = await run.result;
    clearInterval(sampler);
    hits = await metricTotal(server.queryUrl, 'clipper_cache_hits_total');
    misses = await metricTotal(server.queryUrl, 'clipper_cache_misses_total');
  } finally {
    if (sampler) clearInterval(sampler);
    server.proc.kill('SIGTERM');
    await server.exited;
  }

  if (!result || !before) throw new Error('the soak did not run');
  const res = result;
  const warm = samples.filter((s) => s.t > WARMUP_S);
  const rss = stats(warm.map((s) => s.rss));
  const fds = stats(warm.map((s) => s.fds));
  const otherFds = stats(warm.map((s) => s.otherFds));
  // Sockets come and go with the load generator's connections (at most MAX_SOCKETS, closed by the
  // server after 5 s idle): bounded, not flat. Other descriptors must be flat.
  const socketsBound = before.fds - before.otherFds + MAX_SOCKETS;
  const maxSockets = Math.max(...warm.map((s) => s.fds - s.otherFds));
  const replicaRss = stats(warm.map((s) => s.replicaRss));
  const count = (k: number) => res.outcome.filter((o) => o === k).length;
  const answered = res.latencyMs.filter((l, i) => l >= 0 && (res.outcome[i] === REAL || res.outcome[i] === DEFAULT)).sort((x, y) => x - y);
  const at = (sec: number) => samples.reduce((best, s) => (Math.abs(s.t - sec) < Math.abs(best.t - sec) ? s : best), samples[0]!);
  const timeline = Array.from({ length: Math.floor(SECONDS / 15) + 1 }, (_, k) => k * 15).map((sec) => {
    const s = sec === 0 ? before! : at(sec);
    return [`${sec} s${sec === WARMUP_S ? ' (end of warm-up)' : ''}`, s.rss.toFixed(1), s.fds, s.fds - s.otherFds, s.replicaRss.toFixed(1)];
  });
  const verdict = (st: Stats) => (st.flat ? 'flat' : '**not flat**');
  const fdsVerdict = fds.flat ? 'flat' : otherFds.flat && maxSockets <= socketsBound ? 'bounded: sockets follow the load (below)' : '**not flat**';
  const row = (what: string, st: Stats, unit: string, digits: number, v = verdict(st)) => [
    what, `${st.min.toFixed(digits)} ${unit}`, `${st.max.toFixed(digits)} ${unit}`, `${st.mean.toFixed(digits)} ${unit}`,
    `+${pct(st.spreadUp)} / −${pct(st.spreadDown)}`, `${st.drift >= 0 ? '+' : ''}${pct(st.drift)}`, v,
  ];
  const total = res.outcome.length;
  const markdown = `## Soak: 3 minutes at 500 req/s

${machine()}. ${cpu.note()}

\`clipper start\` in a child process (its own RSS and file descriptors), one application (\`doubles\`,
SLO ${SLO_MICROS / 1000} ms) linked to a js model (a weighted sum per input, one replica), **prediction
cache on** (${CACHE_BYTES / 2 ** 20} MiB, small enough that it fills during the warm-up and evicts from then on).
Open-loop load (bench/lib/open-loop.ts, its own process, at most ${MAX_SOCKETS} sockets): ${RATE} requests per second for
${SECONDS} s, each one input of ${WIDTH} doubles; ${pct(REPEAT.share)} of them repeat one of ${REPEAT.hot} hot inputs,
the rest are inputs never sent before. **The machine has 2 cores, shared by the load generator, the
server and the replica.** RSS (VmRSS) and open file descriptors (/proc/<pid>/fd) of the server process
sampled every second; the replica's RSS beside it. The first ${WARMUP_S} s are warm-up; the figures below
are over the ${SECONDS - WARMUP_S} s after it. *Spread* is max and min against the mean; *drift* is the mean of
the last 20 s against the first 20 s after warm-up; both must stay within ±${pct(BOUND)}.

${table(['after warm-up', 'min', 'max', 'mean', 'spread', 'drift', 'verdict'], [
    row('server RSS', rss, 'MB', 1), row('server open fds, all', fds, '', 0, fdsVerdict), row('server fds other than sockets', otherFds, '', 0), row('replica RSS', replicaRss, 'MB', 1),
  ])}

The server's sockets (${maxSockets} at most after warm-up; bound: the ${before.fds - before.otherFds} it holds idle plus the
generator's ${MAX_SOCKETS}) follow the load generator's connections, which it opens as bursts need them
and the server closes after 5 s idle (keep-alive timeout): they are bounded rather than flat, and
${maxSockets <= socketsBound ? 'stayed within that bound' : '**exceeded that bound**'}. Every other descriptor (files, pipes, eventfds) is the
"fds other than sockets" row.

Warm-up and the rest of the run (before the load, then every 15 s):

${table(['t', 'server RSS MB', 'server fds', 'of which sockets', 'replica RSS MB'], timeline)}

Requests: ${total.toLocaleString('en-US')} sent; ${count(REAL).toLocaleString('en-US')} answered by the model or the cache,
${count(DEFAULT).toLocaleString('en-US')} with the default output, ${count(NON_2XX)} non-2xx, ${count(FAILED)} failed, ${count(UNANSWERED)} unanswered.
Latency from the scheduled send: p50 ${quantile(answered, 0.5).toFixed(1)} ms, p99 ${quantile(answered, 0.99).toFixed(1)} ms,
max ${(answered[answered.length - 1] ?? NaN).toFixed(1)} ms (generator send lag p99 ${res.sendLagP99Ms.toFixed(1)} ms).
Cache hit ratio ${pct(hits / Math.max(1, hits + misses))} (${hits.toLocaleString('en-US')} hits, ${misses.toLocaleString('en-US')} misses, from GET /metrics).
${res.errorSamples.length ? `\nError samples: ${res.errorSamples.map((e) => `\`${e.slice(0, 120)}\``).join('; ')}\n` : ''}`;

  writeSoakSection(markdown.replace(/^## /, '### '));
  return {
    name: 'soak',
    markdown: `## Soak (reliability)

${SECONDS} s at ${RATE} req/s, cache on, half the inputs repeated: server RSS ${rss.min.toFixed(0)}–${rss.max.toFixed(0)} MB
after a ${WARMUP_S} s warm-up (drift ${pct(rss.drift)}), open file descriptors ${fds.min}–${fds.max} (${otherFds.min}–${otherFds.max} other than sockets); ${count(REAL) + count(DEFAULT)} of
${total} answered 2xx, p99 ${quantile(answered, 0.99).toFixed(1)} ms. Full figures: [reliability.md](reliability.md#soak).
`,
  };
}

/** Replaces the soak figures in docs/reliability.md (or appends them). */
function writeSoakSection(markdown: string): void {
  const block = `<!-- bench:soak -->\n${markdown.trim()}\n<!-- /bench:soak -->`;
  let text = existsSync(RELIABILITY) ? readFileSync(RELIABILITY, 'utf8') : '# Reliability\n';
  const re = /<!-- bench:soak -->[\s\S]*?<!-- \/bench:soak -->/;
  text = re.test(text) ? text.replace(re, block) : `${text.trimEnd()}\n\n## Soak\n\n${block}\n`;
  writeFileSync(RELIABILITY, text.endsWith('\n') ? text : `${text}\n`);
}
