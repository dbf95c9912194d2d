/**
 * Deploy-time check of an artifact, run in a child process so user code never runs in the
 * frontend: `check-main.ts <runtime> <path>` exits 0, or prints what is wrong and exits 2.
 */
import { execFile } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ServingError } from '../errors.ts';
import { PYTHON, REPO_ROOT } from '../manager/launch.ts';
import type { Runtime } from '../registry/types.ts';

const HERE = dirname(fileURLToPath(import.meta.url));
const TSX = import.meta.resolve('tsx');

export async function checkArtifact(runtime: Runtime, artifactPath: string): Promise<void> {
  if (runtime === 'command' || runtime === 'image') return;
  const [cmd, args, env] = runtime === 'python'
    ? [PYTHON, ['-m', 'clipper_container', '--check', artifactPath], { PYTHONPATH: join(REPO_ROOT, 'python') }]
    : [process.execPath, ['--import', TSX, join(HERE, 'check-main.ts'), runtime, artifactPath], {}];
  await new Promise<void>((resolve, reject) => {
    execFile(cmd, args, { env: { ...process.env, ...env }, timeout: 60_000, maxBuffer: 1 << 20 }, (err, _stdout, stderr) => {
      if (!err) return resolve();
      const msg = stderr.trim().split('\n').filter(Boolean).slice(-5).join('\n') || err.message;
      reject(new ServingError('ARTIFACT_INVALID', `${runtime} artifact refused: ${msg}`));
    });
  });
}
