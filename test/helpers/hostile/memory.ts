/** Memory readings for the hostile suite: this process's heap after a forced GC, and any process's RSS. */
import { readFileSync } from 'node:fs';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/** `gc()` without --expose-gc on the command line: the flag set at run time, the function taken from a fresh context. */
const forceGc: () => void = (() => {
  setFlagsFromString('--expose-gc');
  return runInNewContext('gc') as () => void;
})();

/** This process's heap plus external memory (Buffers, ArrayBuffers) after two full GCs, and its RSS, in MB. */
export function heapAfterGcMb(): { heap: number; rss: number } {
  forceGc();
  forceGc();
  const m = process.memoryUsage();
  return { heap: (m.heapUsed + m.external) / 2 ** 20, rss: m.rss / 2 ** 20 };
}

/** VmRSS of a process in MB (NaN when it is gone). */
export function rssMbOf(pid: number | undefined): number {
  if (pid === undefined) return NaN;
  try {
    const m = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : NaN;
  } catch {
    return NaN;
  }
}
