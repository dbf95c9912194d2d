/** Finds a local replica's process by the CLIPPER_REPLICA_ID in its environment (tests only: the API shows no pids). */
import { readdirSync, readFileSync } from 'node:fs';

export function replicaPid(replicaId: string): number | undefined {
  const needle = `CLIPPER_REPLICA_ID=${replicaId}\0`;
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const env = readFileSync(`/proc/${name}/environ`, 'latin1');
      if (env.includes(needle)) return Number(name);
    } catch {
      // gone, or not ours to read
    }
  }
  return undefined;
}

/** Whether a process exists (signal 0 checks without signalling). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
