/**
 * Bench programs run in child processes (node --import src/loader/register.mjs): servers that print one JSON line
 * `{"url": ...}` once listening, and one-shot programs that print one JSON result line.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { TS_LOADER } from '../../src/manager/launch.ts';


export interface ChildServer { url: string; pid: number; stop(): Promise<void> }

export function startChildServer(script: string, args: string[] = [], execArgv: string[] = []): Promise<ChildServer> {
  const child: ChildProcess = spawn(process.execPath, [...execArgv, '--import', TS_LOADER, script, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => { stderr = (stderr + d.toString()).slice(-4000); });
  const stop = () => new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    child.once('exit', () => resolve());
    child.kill('SIGTERM');
  });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { void stop(); reject(new Error(`${script} did not start in 30 s: ${stderr}`)); }, 30_000);
    child.once('exit', (code) => { clearTimeout(timer); reject(new Error(`${script} exited (${code}) before listening: ${stderr}`)); });
    const lines = createInterface({ input: child.stdout! });
    lines.once('line', (line) => {
      clearTimeout(timer);
      child.removeAllListeners('exit');
      const { url } = JSON.parse(line) as { url: string };
      resolve({ url, pid: child.pid!, stop });
    });
  });
}

export function runChild<T>(script: string, arg: unknown, timeoutMs: number): Promise<T> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, ['--import', TS_LOADER, script, JSON.stringify(arg)], { maxBuffer: 1 << 24, timeout: timeoutMs }, (err, stdout, stderr) => {
      if (err) return reject(new Error(`${script} failed: ${stderr || err.message}`));
      resolve(JSON.parse(stdout.trim().split('\n').pop()!) as T);
    });
  });
}
