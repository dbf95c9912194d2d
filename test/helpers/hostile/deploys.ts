/**
 * Deploys that hang, exhaust or leak a server that reads whatever it is pointed at: device files,
 * FIFOs, /proc, /sys, a symlink out of the artifact root, the root itself, a module whose text is a
 * secret, and the command runtime. They go to `clipper start` in a child process (artifact root: the
 * temp directory), watched from outside: a server that stops answering or whose RSS runs away is
 * killed and started again, so one hang cannot take the other cases (or the test process) with it.
 *
 * Each case must be refused with a 4xx within 6 s, quote no file contents, leave the server's RSS
 * within 256 MB of where it was, and leave the server answering.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startClipper, type CliServer } from '../cli-server.ts';
import { tempDir } from '../server.ts';
import { rssMbOf } from './memory.ts';

const SECRET = 'HOSTILE_SECRET_f00dfeed';
const RSS_BOUND_MB = 256;

export interface DeployReport {
  /** One line per broken expectation; empty when all held. */
  failures: string[];
  /** One line per case: what it was answered. */
  outcomes: string[];
}

export async function hostileDeploys(): Promise<DeployReport> {
  const work = tempDir('clipper-hostile-artifacts-');
  const marker = join(work, 'command-ran');
  mkdirSync(join(work, 'with-fifo'));
  writeFileSync(join(work, 'with-fifo', 'index.mjs'), 'export const predict = (xs) => xs;\n');
  execFileSync('mkfifo', [join(work, 'fifo'), join(work, 'with-fifo', 'pipe')]);
  symlinkSync('/etc/passwd', join(work, 'passwd-link'));
  mkdirSync(join(work, 'leaky'));
  writeFileSync(join(work, 'leaky', 'index.mjs'), `${SECRET}\n`);
  const cases: Array<[string, Record<string, unknown>]> = [
    ['/dev/zero', { model_data_path: '/dev/zero' }],
    ['/dev/urandom', { model_data_path: '/dev/urandom' }],
    ['/proc/self/mem', { model_data_path: '/proc/self/mem' }],
    ['/proc/self/environ', { model_data_path: '/proc/self/environ' }],
    ['/sys/kernel/mm/transparent_hugepage/enabled', { model_data_path: '/sys/kernel/mm/transparent_hugepage/enabled' }],
    ['a FIFO under the artifact root', { model_data_path: join(work, 'fifo') }],
    ['a directory holding a FIFO', { model_data_path: join(work, 'with-fifo') }],
    ['a symlink to /etc/passwd', { model_data_path: join(work, 'passwd-link') }],
    ['/etc/hostname', { model_data_path: '/etc/hostname' }],
    ['/', { model_data_path: '/' }],
    ['a module whose text is a secret', { model_data_path: join(work, 'leaky') }],
    ['runtime command without --allow-command-runtime', { runtime: 'command', container_name: `sh -c 'touch ${marker}'`, replicas: 1 }],
  ];

  const failures: string[] = [];
  const outcomes: string[] = [];
  let server: CliServer | undefined;
  const start = async () => {
    server = await startClipper(tempDir('clipper-hostile-data-'), ['--ready-timeout-ms', '3000', '--request-timeout-ms', '5000']);
  };
  const kill = async () => {
    if (!server) return;
    server.proc.kill('SIGKILL');
    await server.exited;
    server = undefined;
  };
  try {
    await start();
    for (const [i, [label, fields]] of cases.entries()) {
      const body = { model_name: `hostile-${i}`, model_version: '1', input_type: 'strings', runtime: 'js', replicas: 0, ...fields };
      const pid = server!.proc.pid!;
      const rss0 = rssMbOf(pid);
      let peak = rss0;
      const watch = setInterval(() => {
        peak = Math.max(peak, rssMbOf(pid));
        if (peak - rss0 > 1024) server?.proc.kill('SIGKILL'); // exhausting memory: stop it before the machine suffers
      }, 100);
      let outcome: string;
      try {
        const res = await fetch(`${server!.adminUrl}/admin/add_model`, {
          method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body), signal: AbortSignal.timeout(6000),
        });
        const text = await res.text();
        outcome = `${res.status} ${text.slice(0, 300)}`;
        if (res.status >= 500 || res.status < 400) failures.push(`${label}: expected a 4xx refusal, got ${outcome}`);
        if (text.includes(SECRET) || (label === '/etc/hostname' && /\bvm is not defined\b/.test(text)) || /root:x:0:0/.test(text)) {
          failures.push(`${label}: the answer quotes the file's contents: ${outcome}`);
        }
      } catch (e) {
        outcome = `no answer in 6 s (${(e as Error).name})`;
        failures.push(`${label}: ${outcome}; server RSS ${rss0.toFixed(0)} → ${peak.toFixed(0)} MB`);
      } finally {
        clearInterval(watch);
      }
      if (peak - rss0 > RSS_BOUND_MB) failures.push(`${label}: server RSS grew ${rss0.toFixed(0)} → ${peak.toFixed(0)} MB`);
      const ping = await fetch(`${server!.adminUrl}/admin/ping`, { signal: AbortSignal.timeout(3000) }).then((r) => r.status, () => 0);
      if (ping !== 200) {
        failures.push(`${label}: the server stopped answering (ping ${ping || 'timed out'}); killed and restarted`);
        await kill();
        await start();
      }
      outcomes.push(`${label}: ${outcome} (server RSS ${rss0.toFixed(0)} → peak ${peak.toFixed(0)} MB)`);
    }
    await new Promise((r) => setTimeout(r, 1500));
    if (existsSync(marker)) failures.push(`runtime command ran ${JSON.stringify(`sh -c 'touch ${marker}'`)} without --allow-command-runtime`);
  } finally {
    await kill();
    rmSync(work, { recursive: true, force: true });
  }
  return { failures, outcomes };
}
