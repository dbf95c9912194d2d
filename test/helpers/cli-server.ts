/** Runs `clipper start` as a child process (the real CLI, signals and exit codes) for fault tests. */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const CLI = join(dirname(fileURLToPath(import.meta.url)), '../../bin/clipper.js');

export interface CliServer {
  proc: ChildProcess;
  /** Everything it printed so far, stdout and stderr together. */
  output(): string;
  queryUrl: string;
  adminUrl: string;
  /** Resolves with the exit code (or the signal's name). */
  exited: Promise<number | string>;
}

/** `clipper start` with the given arguments; free ports unless the arguments say otherwise. */
export function spawnClipper(args: string[]): { proc: ChildProcess; output: () => string; exited: Promise<number | string> } {
  // cwd: the temp directory, where the tests' models live (the default artifact root is the working directory).
  const proc = spawn(process.execPath, [CLI, 'start', ...args], { cwd: tmpdir(), stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout!.on('data', (d) => { out += d; });
  proc.stderr!.on('data', (d) => { out += d; });
  const exited = once(proc, 'exit').then(([code, signal]) => (code ?? signal) as number | string);
  return { proc, output: () => out, exited };
}

export async function startClipper(dataDir: string, extra: string[] = []): Promise<CliServer> {
  const ports = ['--query-port', '0', '--admin-port', '0', '--rpc-port', '0', '--grpc-port', '0'];
  const s = spawnClipper(['--data-dir', dataDir, ...ports, ...extra]);
  let code: number | string | undefined;
  void s.exited.then((c) => { code = c; });
  const end = Date.now() + 30_000;
  while (!/admin API (\S+),/.test(s.output())) {
    if (code !== undefined || Date.now() > end) {
      s.proc.kill('SIGKILL');
      throw new Error(`clipper start did not come up (exit ${code}): ${s.output()}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return { ...s, queryUrl: /query API (\S+),/.exec(s.output())![1]!, adminUrl: /admin API (\S+),/.exec(s.output())![1]! };
}
