/** What the full-stack scenarios share: model artifacts made in code, deployment, metrics, one checked query. */
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ClipperApp } from '../../src/app.ts';
import { buildMlp } from '../../test/helpers/onnx-builder.ts';
import { admin } from './server.ts';

export function tempDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/** A js model: a directory whose index.mjs is `source` (which must export predict(inputs)). */
export function jsModelDir(source: string): string {
  const dir = tempDir('clipper-bench-js-');
  writeFileSync(join(dir, 'index.mjs'), source);
  return dir;
}

/** An ONNX MLP (Gemm + Relu layers, dynamic batch) written to a temp .onnx file. */
export function mlpFile(layers: number[], seed = 7): string {
  const file = join(tempDir('clipper-bench-onnx-'), `mlp-${layers.join('-')}.onnx`);
  writeFileSync(file, buildMlp(layers, { seed }).bytes);
  return file;
}

export interface Deployment {
  name: string;
  inputType: string;
  sloMicros: number;
  runtime: 'js' | 'onnx';
  path: string;
  replicas?: number;
  batchSize?: number;
}

/** add_app + add_model + add_model_links (app and model share the name); returns the predict URL. */
export async function deploy(app: ClipperApp, d: Deployment): Promise<string> {
  await admin(app, 'add_app', { name: d.name, input_type: d.inputType, latency_slo_micros: d.sloMicros, default_output: 'default' });
  const added = await admin(app, 'add_model', {
    model_name: d.name, model_version: '1', input_type: d.inputType, runtime: d.runtime, model_data_path: d.path,
    replicas: d.replicas ?? 1, ...(d.batchSize === undefined ? {} : { batch_size: d.batchSize }),
  });
  if (!added.ready) throw new Error(`model ${d.name}: replicas not ready`);
  await admin(app, 'add_model_links', { app_name: d.name, model_names: [d.name] });
  return `${app.queryUrl}/${d.name}/predict`;
}

export async function setReplicas(app: ClipperApp, name: string, n: number): Promise<void> {
  const res = await admin(app, 'set_num_replicas', { model_name: name, num_replicas: n });
  if (!res.ready) throw new Error(`model ${name}: ${n} replicas not ready`);
}

/** Sum over every series of one metric in the Prometheus text at GET {queryUrl}/metrics. */
export async function metricTotal(queryUrl: string, name: string, labelFilter = ''): Promise<number> {
  const text = await (await fetch(`${queryUrl}/metrics`)).text();
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name) || (line[name.length] !== '{' && line[name.length] !== ' ')) continue;
    if (labelFilter && !line.includes(labelFilter)) continue;
    sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return sum;
}

/** One query, checked: HTTP 200 and `"default": false` (else the scenario's figures would be meaningless). */
export async function checkedQuery(url: string, body: string): Promise<any> {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
  const data = (await res.json()) as { default?: boolean };
  if (!res.ok || data.default !== false) throw new Error(`${url}: expected a non-default answer, got ${res.status} ${JSON.stringify(data).slice(0, 300)}`);
  return data;
}

export const pct = (x: number) => `${(x * 100).toFixed(1)}%`;
export const ms = (x: number) => `${x.toFixed(2)} ms`;
export const times = (x: number) => `${x.toFixed(2)}×`;

/** Machine CPU ticks: user, nice, system, irq, softirq (a process's time includes the softirq it runs). */
function machineBusy(): number {
  const cpu = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  return cpu[0]! + cpu[1]! + cpu[2]! + cpu[5]! + cpu[6]!;
}

/** This process's ticks plus those of its children that have exited (servers, containers, load generators). */
function ownTicks(): number {
  const f = readFileSync('/proc/self/stat', 'utf8');
  const fields = f.slice(f.lastIndexOf(')') + 2).split(' ').map(Number);
  return fields[11]! + fields[12]! + fields[13]! + fields[14]!; // utime stime cutime cstime
}

/**
 * Watches for other processes on the machine during a scenario: every figure here assumes the 2
 * cores are ours. Call at the start; `note()` at the end, once every child has exited.
 */
export function watchCpu(): { note(): string } {
  if (!existsSync('/proc/stat')) return { note: () => '' };
  const [m0, o0, t0] = [machineBusy(), ownTicks(), performance.now()];
  return {
    note() {
      const ticksPerSec = 100; // USER_HZ
      const cores = cpus().length;
      const other = Math.max(0, (machineBusy() - m0) - (ownTicks() - o0)) / ticksPerSec / ((performance.now() - t0) / 1000) / cores;
      if (other > 0.05) console.error(`bench: warning: other processes used ${pct(other)} of the CPU during this scenario; figures may be low`);
      return `Other processes used ${pct(other)} of the machine's CPU during this scenario.`;
    },
  };
}
