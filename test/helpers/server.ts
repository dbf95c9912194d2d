/** Starts a real server (SQLite file, ZeroMQ, HTTP, child-process replicas) on free loopback ports. */
import { mkdtempSync, mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startApp, type ClipperApp } from '../../src/app.ts';
import type { UserConfig } from '../../src/config.ts';

export interface TestServer {
  app: ClipperApp;
  dataDir: string;
  /** `token`: sent as `Authorization: Bearer <token>` (servers started with an admin or read token). */
  admin(endpoint: string, body?: unknown, token?: string): Promise<{ status: number; body: any; headers: Headers }>;
  /** `key`: sent as `Authorization: Bearer <key>` (applications with keys). */
  predict(appName: string, body: unknown, key?: string): Promise<{ status: number; body: any; headers: Headers }>;
  close(): Promise<void>;
}

export function tempDir(prefix = 'clipper-test-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

export async function startTestServer(cfg: UserConfig = {}): Promise<TestServer> {
  const dataDir = cfg.dataDir ?? tempDir();
  const logs: string[] = [];
  const app = await startApp({ queryPort: 0, adminPort: 0, rpcPort: 0, grpcPort: 0, heartbeatTimeoutMs: 3000, stopGraceMs: 1500, artifactRoot: tmpdir(), ...cfg, dataDir }, (m) => logs.push(m));
  return {
    app,
    dataDir,
    admin: (endpoint, body = {}, token) => send(`${app.adminUrl}/admin/${endpoint}`, body, false, bearer(token)),
    predict: (appName, body, key) => send(`${app.queryUrl}/${appName}/predict`, body, false, bearer(key)),
    close: () => app.close(),
  };
}

export function bearer(token: string | undefined): Record<string, string> {
  return token === undefined ? {} : { authorization: `Bearer ${token}` };
}

export async function send(url: string, body: unknown, raw = false, headers: Record<string, string> = {}): Promise<{ status: number; body: any; headers: Headers }> {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: raw ? (body as string) : JSON.stringify(body) });
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // not JSON: the assertion on it will say so
  }
  return { status: res.status, body: parsed, headers: res.headers };
}

/** Writes a js model module into a fresh directory and returns the directory. */
export function writeJsModel(source: string, dir = tempDir('clipper-model-')): string {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'index.mjs'), source);
  return dir;
}

export async function waitFor<T>(probe: () => T | Promise<T>, timeoutMs: number, what: string): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Sums each input's numbers. */
export const SUM_MODEL = 'export function predict(inputs) { return inputs.map((x) => Array.from(x).reduce((a, b) => a + b, 0)); }\n';

/** An application with one linked JS model of the same name plus `-model`; fails the test on any refusal. */
export async function deployJsApp(s: TestServer, o: { app: string; inputType: string; source: string; defaultOutput: string; sloMicros?: number }): Promise<void> {
  const steps: Array<[string, unknown]> = [
    ['add_app', { name: o.app, input_type: o.inputType, default_output: o.defaultOutput, latency_slo_micros: o.sloMicros ?? 2_000_000 }],
    ['add_model', { model_name: `${o.app}-model`, model_version: '1', input_type: o.inputType, runtime: 'js', model_data_path: writeJsModel(o.source) }],
    ['add_model_links', { app_name: o.app, model_names: [`${o.app}-model`] }],
  ];
  for (const [endpoint, body] of steps) {
    const r = await s.admin(endpoint, body);
    if (r.status !== 200) throw new Error(`${endpoint} ${JSON.stringify(body)}: ${r.status} ${JSON.stringify(r.body)}`);
  }
}

export const ECHO_MODEL = (tag: string) => `export function predict(inputs) { return inputs.map((x) => '${tag}:' + x); }\n`;
