/**
 * A private redis-server for tests: its own port on loopback (or a given address), its own
 * directory, append-only file on, no snapshot schedule. `restart()` stops and starts it on the
 * same port and directory (the AOF brings the data back); `stop()` ends it and removes the
 * directory. Returns undefined, with whyNoRedis() saying why, when redis-server is not installed.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { connect } from 'node:net';
import { freePort } from './ports.ts';
import { join } from 'node:path';

export interface TestRedis {
  /** redis://host:port/0 */
  url: string;
  host: string;
  port: number;
  dir: string;
  /** SIGKILL: nothing flushed beyond what the AOF already holds (appendfsync always). */
  kill(): Promise<void>;
  /** Starts it again on the same port and directory. */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

const BIN = ['/usr/bin/redis-server', '/usr/local/bin/redis-server'].find((p) => existsSync(p));
let reason = '';

export function whyNoRedis(): string {
  return reason;
}


/**
 * `wrap` prefixes the command, e.g. ['ip', 'netns', 'exec', 'ns1'] to run it inside a namespace;
 * then readiness is read from its log (the test process may have no route to `host`) and `port`
 * defaults to 6379 (a fresh namespace has every port free).
 */
export async function startRedis(opts: { host?: string; port?: number; wrap?: string[] } = {}): Promise<TestRedis | undefined> {
  if (!BIN) {
    reason = 'redis-server is not installed (apt-get install -y redis-server)';
    return undefined;
  }
  const host = opts.host ?? '127.0.0.1';
  const wrapped = !!opts.wrap?.length;
  const port = opts.port ?? (wrapped ? 6379 : await freePort(host));
  const dir = mkdtempSync('/tmp/redis-test-');
  let child: ChildProcess | undefined;
  let gone: Promise<void> = Promise.resolve();

  const launch = async () => {
    const args = [
      '--bind', host, '--port', String(port), '--dir', dir, '--save', '', '--appendonly', 'yes',
      '--appendfsync', 'always', '--protected-mode', 'no', '--daemonize', 'no', '--logfile', join(dir, 'redis.log'),
    ];
    const [cmd, ...pre] = opts.wrap?.length ? [...opts.wrap, BIN] : [BIN];
    const logFile = join(dir, 'redis.log');
    const logFrom = existsSync(logFile) ? statSync(logFile).size : 0;
    child = spawn(cmd!, [...pre, ...args], { stdio: 'ignore' });
    const c = child;
    gone = new Promise<void>((r) => c.once('exit', () => r()));
    const end = Date.now() + 10_000;
    for (;;) {
      if (wrapped ? logSaysReady(logFile, logFrom) : await answersPing(host, port)) return;
      if (c.exitCode !== null || Date.now() > end) throw new Error(`redis-server did not start on ${host}:${port} (see ${join(dir, 'redis.log')})`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  const onExit = () => child?.kill('SIGKILL');
  process.once('exit', onExit);
  const end = async (signal: NodeJS.Signals) => {
    if (child && child.exitCode === null && child.signalCode === null) child.kill(signal);
    await gone;
  };
  await launch();
  return {
    url: `redis://${host}:${port}/0`, host, port, dir,
    kill: () => end('SIGKILL'),
    restart: async () => {
      await end('SIGTERM');
      await launch();
    },
    stop: async () => {
      await end('SIGTERM');
      process.removeListener('exit', onExit);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

function logSaysReady(file: string, from: number): boolean {
  if (!existsSync(file)) return false;
  return readFileSync(file).subarray(from).toString().includes('Ready to accept connections');
}

function answersPing(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host, port });
    const done = (ok: boolean) => { s.destroy(); resolve(ok); };
    s.setTimeout(500, () => done(false));
    s.once('error', () => done(false));
    s.once('connect', () => s.write('PING\r\n'));
    s.once('data', (d) => done(d.toString().startsWith('+PONG')));
  });
}
