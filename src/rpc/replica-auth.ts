/**
 * Who may register on the RPC port, and the keys that decide it.
 *
 * - **Per-replica secret.** The frontend keeps one random key (`replicaKey`). A replica the
 *   resource manager starts gets `CLIPPER_REPLICA_SECRET` = HMAC(replicaKey, replica id, model,
 *   version) in its environment and sends it in its registration's extension frame. The secret is
 *   bound to the model and version, so a replica of one model cannot register as another.
 * - **CurveZMQ.** The frontend's long-term keypair (z85). Replicas get the public half as
 *   `CLIPPER_RPC_SERVER_KEY`, make their own keypair and connect as curve clients.
 *
 * Both keys live in `<data dir>/rpc-keys.json` (mode 0600), so replicas that outlive a frontend
 * (Docker containers adopted by the next run) still authenticate after a restart. In a cluster
 * they live in Redis instead (`loadClusterRpcKeys`), so every frontend accepts every replica.
 * - **Version-wide secret.** A replica whose id is not known when its secret is made (a
 *   Kubernetes pod of a Deployment) registers as `pod/<name>` with `versionSecret(key, model,
 *   version)`, the secret of replica id `*`: it proves the manager made it for that version.
 * The endpoint a replica is told to use (`RpcEndpoint`) carries what it needs: the resource
 * manager passes that object through unchanged to `replicaEnv` (src/manager/launch.ts).
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Redis } from 'ioredis';
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { curveKeyPair } from 'zeromq';
import type { RpcAddress } from './codec.ts';
import { isLoopback } from '../config.ts';
import type { RpcSecurity } from './router-server.ts';

export interface CurveKeys { publicKey: string; secretKey: string }

export interface RpcKeys {
  replicaKey: Buffer;
  curve: CurveKeys;
}

/** What a replica needs to be accepted: its secret is derived from `replicaKey`; `serverKey` when curve is on. */
export interface ReplicaAuth {
  replicaKey: Buffer;
  serverKey: string | undefined;
}

/** Where replicas reach the RPC port, and how they prove who they are (absent: plain v3). */
export interface RpcEndpoint {
  host: string;
  port: number;
  auth?: ReplicaAuth;
  /** In a cluster, every frontend's RPC address: a replica connects to each (the `frontends` extension). */
  frontends?: RpcAddress[];
}

export const KEYS_FILE = 'rpc-keys.json';

/** Loads the frontend's RPC keys from the data directory, creating them on first start. */
export function loadRpcKeys(dataDir: string): RpcKeys {
  const file = join(dataDir, KEYS_FILE);
  let text: string | undefined;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw new Error(`cannot read the RPC keys in ${file}: ${(e as Error).message}`);
  }
  if (text !== undefined) {
    const parsed = parseKeys(text);
    if (!parsed) throw new Error(`${file} is not a valid RPC key file (delete it to make new keys; running replicas must then be restarted)`);
    return parsed;
  }
  const keys = newKeys();
  const body = keysText(keys);
  mkdirSync(dataDir, { recursive: true });
  try {
    writeFileSync(file, `${body}\n`, { mode: 0o600, flag: 'wx' });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return loadRpcKeys(dataDir); // made by a racing start
    throw e;
  }
  chmodSync(file, 0o600);
  return keys;
}

/** The key under which a cluster keeps its RPC keys (same JSON as the key file). */
export const clusterKeysKey = (prefix: string): string => `${prefix}rpc-keys`;

/**
 * The cluster's RPC keys from Redis, made by the first frontend that asks (SET NX: two frontends
 * starting at once end up with the same keys). The value holds secrets: Redis must be private
 * to the cluster (password, network policy).
 */
export async function loadClusterRpcKeys(redis: Redis, prefix = 'clipper:'): Promise<RpcKeys> {
  const key = clusterKeysKey(prefix);
  await redis.set(key, keysText(newKeys()), 'NX');
  const text = await redis.get(key);
  if (text === null) throw new Error(`the RPC keys at ${key} vanished right after they were made`);
  const keys = parseKeys(text);
  if (!keys) throw new Error(`${key} in Redis is not a valid RPC key record (delete it to make new keys; running replicas must then be restarted)`);
  return keys;
}

function newKeys(): RpcKeys {
  return { replicaKey: randomBytes(32), curve: curveKeyPair() };
}

function keysText(keys: RpcKeys): string {
  return JSON.stringify({ replica_key: keys.replicaKey.toString('hex'), curve_public: keys.curve.publicKey, curve_secret: keys.curve.secretKey });
}

function parseKeys(text: string): RpcKeys | undefined {
  try {
    const j = JSON.parse(text) as Record<string, unknown>;
    const { replica_key: rk, curve_public: pub, curve_secret: sec } = j;
    if (typeof rk !== 'string' || !/^[0-9a-f]{64}$/.test(rk)) return undefined;
    if (typeof pub !== 'string' || pub.length !== 40 || typeof sec !== 'string' || sec.length !== 40) return undefined;
    return { replicaKey: Buffer.from(rk, 'hex'), curve: { publicKey: pub, secretKey: sec } };
  } catch {
    return undefined;
  }
}

/** The secret of one replica the manager starts: hex HMAC-SHA256 over its id, model and version. */
export function replicaSecret(replicaKey: Buffer, replicaId: string, modelName: string, modelVersion: string): string {
  return createHmac('sha256', replicaKey).update(JSON.stringify([replicaId, modelName, modelVersion])).digest('hex');
}

/** Replica ids of this form may also use the version-wide secret (their names are made by Kubernetes, not by us). */
export const POD_REPLICA_PREFIX = 'pod/';

/** The secret every `pod/<name>` replica of one version may use: the secret of replica id `*`. */
export function versionSecret(replicaKey: Buffer, modelName: string, modelVersion: string): string {
  return replicaSecret(replicaKey, '*', modelName, modelVersion);
}

/**
 * Constant-time check of a registration's secret: the replica's own, or for a `pod/<name>` id
 * also the version-wide one.
 */
export function verifyReplicaSecret(replicaKey: Buffer, replicaId: string, modelName: string, modelVersion: string, secret: string): boolean {
  const got = Buffer.from(secret, 'utf8');
  const same = (want: string) => {
    const w = Buffer.from(want, 'utf8');
    return got.length === w.length && timingSafeEqual(got, w);
  };
  if (same(replicaSecret(replicaKey, replicaId, modelName, modelVersion))) return true;
  return replicaId.startsWith(POD_REPLICA_PREFIX) && replicaId.length > POD_REPLICA_PREFIX.length
    && same(versionSecret(replicaKey, modelName, modelVersion));
}

/** The RPC port's security from the resolved config: keys from the data directory, curve when off loopback ('auto'). */
export function rpcSecurity(cfg: {
  dataDir: string; host: string; rpcCurve: 'auto' | 'on' | 'off'; rpcAllowPlain: boolean; rpcMaxMessageBytes: number;
}): RpcSecurity {
  return securityFromKeys(loadRpcKeys(cfg.dataDir), cfg);
}

/** The same from keys already loaded (a cluster's, from loadClusterRpcKeys). */
export function securityFromKeys(keys: RpcKeys, cfg: {
  host: string; rpcCurve: 'auto' | 'on' | 'off'; rpcAllowPlain: boolean; rpcMaxMessageBytes: number;
}): RpcSecurity {
  const curve = cfg.rpcCurve === 'on' || (cfg.rpcCurve === 'auto' && !isLoopback(cfg.host));
  return { curve: curve ? keys.curve : undefined, allowPlain: cfg.rpcAllowPlain, replicaKey: keys.replicaKey, maxMessageBytes: cfg.rpcMaxMessageBytes };
}
