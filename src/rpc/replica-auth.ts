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
 * (Docker containers adopted by the next run) still authenticate after a restart.
 * The endpoint a replica is told to use (`RpcEndpoint`) carries what it needs: the resource
 * manager passes that object through unchanged to `replicaEnv` (src/manager/launch.ts).
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { curveKeyPair } from 'zeromq';
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
  const keys: RpcKeys = { replicaKey: randomBytes(32), curve: curveKeyPair() };
  const body = JSON.stringify({ replica_key: keys.replicaKey.toString('hex'), curve_public: keys.curve.publicKey, curve_secret: keys.curve.secretKey });
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

/** Constant-time check of a registration's secret. */
export function verifyReplicaSecret(replicaKey: Buffer, replicaId: string, modelName: string, modelVersion: string, secret: string): boolean {
  const want = Buffer.from(replicaSecret(replicaKey, replicaId, modelName, modelVersion), 'utf8');
  const got = Buffer.from(secret, 'utf8');
  return got.length === want.length && timingSafeEqual(got, want);
}

/** The RPC port's security from the resolved config: keys from the data directory, curve when off loopback ('auto'). */
export function rpcSecurity(cfg: {
  dataDir: string; host: string; rpcCurve: 'auto' | 'on' | 'off'; rpcAllowPlain: boolean; rpcMaxMessageBytes: number;
}): RpcSecurity {
  const keys = loadRpcKeys(cfg.dataDir);
  const curve = cfg.rpcCurve === 'on' || (cfg.rpcCurve === 'auto' && !isLoopback(cfg.host));
  return { curve: curve ? keys.curve : undefined, allowPlain: cfg.rpcAllowPlain, replicaKey: keys.replicaKey, maxMessageBytes: cfg.rpcMaxMessageBytes };
}
