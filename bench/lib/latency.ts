/** Sub-millisecond latency at concurrency 1, measured in a separate process (latency-worker.ts). */
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { BodySpec } from './bodies.ts';
import { runChild } from './child.ts';

const WORKER = join(dirname(fileURLToPath(import.meta.url)), 'latency-worker.ts');

export interface ProbeResult { rps: number; total: number; p50: number; p99: number; mean: number; errors: number; non2xx: number; defaults: number }

export function probeLatency(url: string, spec: BodySpec, durationSec: number, warmupSec = 1): Promise<ProbeResult> {
  return runChild<ProbeResult>(WORKER, { url, durationSec, warmupSec, spec }, (durationSec + warmupSec + 60) * 1000);
}
