/** A real server for a benchmark, in this process (the load generator runs in another). */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startApp, type ClipperApp } from '../../src/app.ts';
import type { UserConfig } from '../../src/config.ts';

/** Artifact root '/': benchmarks deploy models written to the temp directory and the shared Spark fixtures. */
export async function benchServer(cfg: UserConfig = {}): Promise<ClipperApp> {
  return startApp({ dataDir: mkdtempSync(join(tmpdir(), 'clipper-bench-')), queryPort: 0, adminPort: 0, rpcPort: 0, grpcPort: 0, artifactRoot: '/', ...cfg });
}

export async function admin(app: ClipperApp, endpoint: string, body: unknown): Promise<any> {
  const res = await fetch(`${app.adminUrl}/admin/${endpoint}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  const data = await res.json();
  if (!res.ok) throw new Error(`${endpoint}: ${JSON.stringify(data)}`);
  return data;
}
