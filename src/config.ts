/** Every setting and its default, resolved once into a frozen object (UserConfig → ResolvedConfig). */
import { resolve } from 'node:path';

export interface UserConfig {
  dataDir?: string;
  host?: string;
  queryPort?: number;
  adminPort?: number;
  rpcPort?: number;
  bodyLimitBytes?: number;
  heartbeatTimeoutMs?: number;
  readyTimeoutMs?: number;
  stopGraceMs?: number;
  maxBatchSize?: number;
  maxInflightPerReplica?: number;
  maxQueue?: number;
  maxBatchWaitMs?: number;
  cacheBytes?: number;
}

export type ResolvedConfig = Readonly<Required<UserConfig>>;

export function resolveConfig(user: UserConfig = {}): ResolvedConfig {
  return Object.freeze({
    dataDir: resolve(user.dataDir ?? './.clipper'),
    host: user.host ?? '127.0.0.1',
    queryPort: user.queryPort ?? 1337,
    adminPort: user.adminPort ?? 1338,
    rpcPort: user.rpcPort ?? 7000,
    bodyLimitBytes: user.bodyLimitBytes ?? 10 * 1024 * 1024,
    heartbeatTimeoutMs: user.heartbeatTimeoutMs ?? 5000,
    readyTimeoutMs: user.readyTimeoutMs ?? 30_000,
    stopGraceMs: user.stopGraceMs ?? 3000,
    maxBatchSize: user.maxBatchSize ?? 256,
    maxInflightPerReplica: user.maxInflightPerReplica ?? 1,
    maxQueue: user.maxQueue ?? 100_000,
    maxBatchWaitMs: user.maxBatchWaitMs ?? 0,
    cacheBytes: user.cacheBytes ?? 64 * 1024 * 1024,
  });
}
