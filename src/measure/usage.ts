/** What a backend measures of its machine and its replicas (from /proc, cgroups or a Docker engine). */

export interface MachineUsage {
  /** Name of the machine (host name, or the Docker engine's name). */
  name: string;
  cores: number;
  /** Cores busy, 0..cores, averaged since the previous sample. */
  cpuBusyCores: number;
  memoryTotalBytes: number;
  memoryAvailableBytes: number;
  /** 1-minute load average. */
  load1: number;
  /** Whether its engine answers (several machines); absent for the one machine the frontend runs on. */
  state?: 'up' | 'down' | 'unknown';
  /** Why it is down, e.g. "engine did not answer for 10 s". */
  reason?: string;
}

export interface ReplicaUsage {
  replicaId: string;
  /** Cores used, averaged since the previous sample (1.0 = one full core). */
  cpuCores: number;
  rssBytes: number;
}
