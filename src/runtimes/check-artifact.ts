/**
 * Deploy-time check of an artifact, run in a child process so user code never runs in the
 * frontend: `check-main.ts <runtime> <path>` (or the Python library's `--check`) exits 0, or
 * exits non-zero with its reason as the last line of stderr.
 *
 * Only that one line is shown, never the rest of the output: a model's own prints, a traceback or
 * the offending source line could quote the artifact (see check-main.ts).
 */
import { execFile } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ServingError } from '../errors.ts';
import { PYTHON, REPO_ROOT, TS_LOADER } from '../manager/launch.ts';
import type { Runtime } from '../registry/types.ts';
import { CHECK_MARK } from './check-main.ts';

const HERE = dirname(fileURLToPath(import.meta.url));
/** The Python library's one-line reason (python/clipper_container/__main__.py prints it last). */
const PYTHON_MARK = 'clipper_container: ';

export async function checkArtifact(runtime: Runtime, artifactPath: string): Promise<void> {
  if (runtime === 'command' || runtime === 'image') return;
  const [cmd, args, env, mark] = runtime === 'python'
    ? [PYTHON, ['-m', 'clipper_container', '--check', artifactPath], { PYTHONPATH: join(REPO_ROOT, 'python') }, PYTHON_MARK]
    : [process.execPath, ['--import', TS_LOADER, join(HERE, 'check-main.ts'), runtime, artifactPath], {}, CHECK_MARK];
  await new Promise<void>((resolve, reject) => {
    execFile(cmd, args, { env: { ...process.env, ...env }, timeout: 60_000, maxBuffer: 1 << 20 }, (err, _stdout, stderr) => {
      if (!err) return resolve();
      reject(new ServingError('ARTIFACT_INVALID', `${runtime} artifact refused: ${reasonOf(String(stderr), mark, err)}`));
    });
  });
}

function reasonOf(stderr: string, mark: string, err: Error & { killed?: boolean; code?: unknown; signal?: unknown }): string {
  const line = stderr.split('\n').reverse().find((l) => l.startsWith(mark));
  if (line) return line.slice(mark.length).trim();
  if (err.killed || err.signal) return `the check was stopped (${err.signal ?? 'timed out'}) before it finished`;
  if (err.code === 'ERR_CHILD_PROCESS_STDIO_MAXBUFFER') return 'the check printed more than 1 MiB';
  return `the check failed (exit code ${String(err.code)}) without saying why`;
}
