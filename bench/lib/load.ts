/** Runs the load generator in a separate process and returns its figures. */
import { execFile } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { TS_LOADER } from '../../src/manager/launch.ts';

const WORKER = join(dirname(fileURLToPath(import.meta.url)), 'load-worker.ts');

export interface LoadResult { rps: number; total: number; p50: number; p99: number; errors: number; non2xx: number }
export interface LoadConfig { url: string; connections: number; durationSec: number; bodies?: string[]; generator?: string; generatorArg?: unknown }

export function runLoad(cfg: LoadConfig): Promise<LoadResult> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, ['--import', TS_LOADER, WORKER, JSON.stringify(cfg)], { maxBuffer: 1 << 24, timeout: (cfg.durationSec + 60) * 1000 }, (err, stdout, stderr) => {
      if (err) return reject(new Error(`load generator failed: ${stderr || err.message}`));
      const line = stdout.trim().split('\n').pop()!;
      resolve(JSON.parse(line) as LoadResult);
    });
  });
}

/** Latency at concurrency 1, measured by the same load generator. */
export function runLatency(cfg: Omit<LoadConfig, 'connections'>): Promise<LoadResult> {
  return runLoad({ ...cfg, connections: 1 });
}
