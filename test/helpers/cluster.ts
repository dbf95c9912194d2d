/**
 * Several real `clipper start` processes on one private Redis (a cluster on loopback, local
 * replicas). Everything a test starts is ended by close(): frontends (SIGTERM, then SIGKILL),
 * any replica process one of them left behind, their data directories, the model directories
 * made through model(), and the Redis server.
 */
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import { startClipper, type CliServer } from './cli-server.ts';
import type { TestRedis } from './redis.ts';
import { bearer, send, tempDir, writeJsModel } from './server.ts';

export interface Frontend extends CliServer {
  name: string;
  dataDir: string;
  admin(endpoint: string, body?: unknown): Promise<{ status: number; body: any }>;
  predict(app: string, input: string, key?: string): Promise<{ status: number; body: any }>;
  status(): Promise<any>;
  /** Whether the process has exited. */
  gone(): boolean;
}

export class TestCluster {
  readonly frontends: Frontend[] = [];
  private readonly dirs: string[] = [];
  private count = 0;

  /** `extra`: flags given to every frontend (after --store). */
  constructor(readonly redis: TestRedis, private readonly extra: string[] = ['--lease-ttl-ms', '2000']) {}

  async add(extra: string[] = []): Promise<Frontend> {
    const dataDir = tempDir('clipper-cluster-');
    this.dirs.push(dataDir);
    const s = await startClipper(dataDir, ['--store', this.redis.url, ...this.extra, ...extra]);
    let exited = false;
    void s.exited.then(() => { exited = true; });
    const f: Frontend = {
      ...s,
      name: `frontend ${String.fromCharCode(65 + this.count++)}`,
      dataDir,
      admin: (endpoint, body = {}) => send(`${s.adminUrl}/admin/${endpoint}`, body),
      predict: (app, input, key) => send(`${s.queryUrl}/${app}/predict`, { input }, false, bearer(key)),
      status: async () => (await fetch(`${s.adminUrl}/admin/status`)).json(),
      gone: () => exited,
    };
    this.frontends.push(f);
    return f;
  }

  /** A JS model module in a temp directory removed by close(). */
  model(source: string): string {
    const dir = writeJsModel(source);
    this.dirs.push(dir);
    return dir;
  }

  /** Stops one frontend; SIGKILL when it has not exited within graceMs. Resolves with its exit code or signal. */
  async stop(f: Frontend, signal: NodeJS.Signals = 'SIGTERM', graceMs = 20_000): Promise<number | string> {
    if (!f.gone()) f.proc.kill(signal);
    const timer = setTimeout(() => { if (!f.gone()) f.proc.kill('SIGKILL'); }, graceMs);
    try {
      return await f.exited;
    } finally {
      clearTimeout(timer);
    }
  }

  async close(): Promise<void> {
    if (process.env.CLUSTER_TEST_LOGS) for (const f of this.frontends) console.log(`----- ${f.name} (pid ${f.proc.pid})\n${f.output()}`);
    const pids = this.frontends.map((f) => f.proc.pid).filter((p): p is number => p !== undefined);
    await Promise.allSettled(this.frontends.map((f) => this.stop(f, 'SIGTERM', 15_000)));
    // Replicas exit by themselves within a second of their frontend's death; make sure.
    for (const pid of childReplicas(pids)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    await this.redis.stop();
    for (const d of this.dirs) rmSync(d, { recursive: true, force: true });
  }
}

function parentPid(pid: string): number {
  try {
    // Fields after the command name, which is in parentheses and may hold spaces: state, ppid, ...
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
  } catch {
    return -1;
  }
}

/** Replica processes (of any frontend in `parents`), found by the CLIPPER_PARENT_PID in their environment. */
export function childReplicas(parents: number[]): number[] {
  const wanted = new Set(parents.map((p) => `CLIPPER_PARENT_PID=${p}`));
  const found: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let env: string;
    try {
      env = readFileSync(`/proc/${entry}/environ`, 'latin1');
    } catch {
      continue;
    }
    // The replica itself, a child of its frontend: not a helper process it started (an esbuild
    // transform service while it loads) that inherited its environment.
    if (env.split('\0').some((kv) => wanted.has(kv)) && parents.includes(parentPid(entry))) found.push(Number(entry));
  }
  return found;
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Polls `probe` every `everyMs` until it returns something truthy; the value and the ms it took from `since`. */
export async function pollUntil<T>(probe: () => Promise<T> | T, opts: { timeoutMs: number; everyMs?: number; since?: number; what: string }): Promise<{ value: NonNullable<T>; ms: number }> {
  const start = opts.since ?? Date.now();
  const end = Date.now() + opts.timeoutMs;
  for (;;) {
    const value = await Promise.resolve().then(probe).catch(() => undefined as T);
    if (value) return { value: value as NonNullable<T>, ms: Date.now() - start };
    if (Date.now() > end) throw new Error(`timed out after ${opts.timeoutMs} ms waiting for ${opts.what}`);
    await sleep(opts.everyMs ?? 50);
  }
}
