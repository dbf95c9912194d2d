/**
 * Runs the open-loop load generator (open-loop-worker.ts) in its own process. `startOpenLoop`
 * resolves once the generator has fixed its schedule's t = 0 (wall clock, epoch ms), so the caller
 * can line its own samples up with the requests; `result` resolves with every request's figures.
 */
import { spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { TS_LOADER } from '../../src/manager/launch.ts';

const WORKER = join(dirname(fileURLToPath(import.meta.url)), 'open-loop-worker.ts');

/** A stretch of constant arrival rate (requests per second; 0 = silence). */
export interface Phase { seconds: number; rate: number }

export interface OpenLoopConfig {
  /** Must be on 127.0.0.1 (the worker refuses anything else). */
  url: string;
  phases: Phase[];
  /** Numbers per input. */
  width: number;
  /** First input value; inputs count up from it, so two runs never repeat an input. */
  inputBase: number;
  /**
   * Optional mix of repeated and fresh inputs: this share (0..1) of requests, evenly spread, sends
   * one of `hot` inputs again (in turn); the others send an input never sent before. Without it
   * every input is fresh.
   */
  repeat?: { share: number; hot: number };
  maxSockets: number;
  timeoutMs: number;
  /** After the schedule, how long to wait for the last answers. */
  drainMs: number;
}

/** When each request is due, in ms from t = 0, in order: `rate` evenly spaced requests per second of each phase. */
export function schedule(phases: Phase[]): number[] {
  const due: number[] = [];
  let start = 0;
  for (const p of phases) {
    const n = Math.round(p.rate * p.seconds);
    for (let k = 0; k < n; k++) due.push(start + (k * 1000) / p.rate);
    start += p.seconds * 1000;
  }
  return due;
}

/** Request outcomes. */
export const REAL = 0, DEFAULT = 1, NON_2XX = 2, FAILED = 3, UNANSWERED = 4;

/** Per request, in schedule order (`schedule(phases)` says when each was due): its latency from then, its outcome. */
export interface OpenLoopResult {
  epochMs: number;
  /** -1 when never answered. */
  latencyMs: number[];
  /** REAL (answered by the model), DEFAULT, NON_2XX, FAILED (socket error or timeout), UNANSWERED. */
  outcome: number[];
  /** How late requests left against their schedule (the generator's own health). */
  sendLagP99Ms: number;
  sendLagMaxMs: number;
  errorSamples: string[];
}

export interface OpenLoopRun {
  /** Wall-clock epoch ms of the schedule's t = 0. */
  epochMs: number;
  result: Promise<OpenLoopResult>;
  /** Ends the generator process if it is still running. */
  stop(): Promise<void>;
}

export function startOpenLoop(cfg: OpenLoopConfig): Promise<OpenLoopRun> {
  if (new URL(cfg.url).hostname !== '127.0.0.1') throw new Error(`open-loop load goes to 127.0.0.1 only, not ${cfg.url}`);
  const totalMs = cfg.phases.reduce((s, p) => s + p.seconds * 1000, 0);
  const child = spawn(process.execPath, ['--import', TS_LOADER, WORKER, JSON.stringify(cfg)], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => { stderr = (stderr + d.toString()).slice(-4000); });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    await exited;
  };
  const killer = setTimeout(() => void stop(), totalMs + cfg.drainMs + 60_000);
  const lines = createInterface({ input: child.stdout! });
  let onStart: (epochMs: number) => void;
  const started = new Promise<number>((resolve) => { onStart = resolve; });
  const result = new Promise<OpenLoopResult>((resolve, reject) => {
    let last: OpenLoopResult | undefined;
    let bad: string | undefined;
    lines.on('line', (line) => {
      try {
        const msg = JSON.parse(line) as { event: string; epochMs: number } & OpenLoopResult;
        if (msg.event === 'start') onStart(msg.epochMs);
        if (msg.event === 'result') last = msg;
      } catch (e) {
        bad = `unparsable output line (${line.length} chars): ${(e as Error).message}`;
      }
    });
    void exited.then((code) => {
      clearTimeout(killer);
      if (last) resolve(last);
      else reject(new Error(`open-loop generator exited (${code}) without a result${bad ? ` (${bad})` : ''}: ${stderr}`));
    });
  });
  return Promise.race([
    started.then((epochMs) => ({ epochMs, result, stop })),
    result.then(() => { throw new Error('open-loop generator finished before it started'); }),
  ]);
}
