/**
 * The raw model in a tight loop, run as a child process (no server shares it): the onnx runtime's
 * own `loadOnnxModel(...).predict` — what a container runs per batch — on pre-made random inputs,
 * for each intra-op thread count and batch size. Config as JSON in argv[2]; prints one JSON line:
 * `[{threads, batch, samplesPerSec}]`.
 */
import { loadOnnxModel } from '../../src/runtimes/onnx/model.ts';
import { prng } from './bodies.ts';

interface Config { path: string; width: number; threads: number[]; batches: number[]; seconds: number }
export interface LoopResult { threads: number; batch: number; samplesPerSec: number }

const cfg = JSON.parse(process.argv[2]!) as Config;
const rand = prng(3);
const results: LoopResult[] = [];
for (const threads of cfg.threads) {
  const model = await loadOnnxModel(cfg.path, { intraOpThreads: threads, interOpThreads: 1 });
  for (const batch of cfg.batches) {
    const inputs = Array.from({ length: batch }, () => Float32Array.from({ length: cfg.width }, () => rand()));
    const warmEnd = performance.now() + 200;
    while (performance.now() < warmEnd) await model.predict(inputs);
    let samples = 0;
    const started = performance.now();
    const end = started + cfg.seconds * 1000;
    while (performance.now() < end) {
      const out = await model.predict(inputs);
      if (out.length !== batch) throw new Error(`predict answered ${out.length} outputs for ${batch} inputs`);
      samples += batch;
    }
    results.push({ threads, batch, samplesPerSec: samples / ((performance.now() - started) / 1000) });
  }
  await model.close();
}
console.log(JSON.stringify(results));
