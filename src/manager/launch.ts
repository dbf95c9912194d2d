/** How each runtime's container process is started: program, arguments and environment. */
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ServingError } from '../errors.ts';
import type { ModelVersion } from '../registry/types.ts';
import { formatAddress } from '../rpc/codec.ts';
import { replicaSecret, type RpcEndpoint } from '../rpc/replica-auth.ts';
import type { ResourceLimits } from './container-manager.ts';

const SRC = join(dirname(fileURLToPath(import.meta.url)), '..');
export const REPO_ROOT = join(SRC, '..');
/** Loads the TypeScript sources of the node runtimes (src/loader/hooks.mjs). */
export const TS_LOADER = new URL('../loader/register.mjs', import.meta.url).href;
export const PYTHON = process.env.CLIPPER_PYTHON ?? '/usr/bin/python3';

export interface LaunchSpec { command: string; args: string[]; env: Record<string, string>; cwd: string }

function nodeEntry(file: string): Pick<LaunchSpec, 'command' | 'args'> {
  return { command: process.execPath, args: ['--import', TS_LOADER, join(SRC, file)] };
}

/**
 * The environment every replica gets, wherever it runs. `modelPath` is where the artifact is seen
 * from inside the replica (the copied artifact locally; a mount point in a container).
 * `rpc` is the RPC server's endpoint (RpcServer.endpoint(), handed through the supervisor and the
 * backend unchanged): with its `auth`, the replica gets its own secret and, when the port speaks
 * CurveZMQ, the server's public key.
 * `CLIPPER_INPUT_TYPE` is the type's name, as Clipper's managers set it (its containers read "3"
 * as an unknown type).
 */
export function replicaEnv(v: ModelVersion, rpc: RpcEndpoint, replicaId: string, limits: ResourceLimits, modelPath = v.artifactPath): Record<string, string> {
  const env: Record<string, string> = {
    CLIPPER_MODEL_NAME: v.name,
    CLIPPER_MODEL_VERSION: v.version,
    CLIPPER_INPUT_TYPE: v.inputType,
    CLIPPER_IP: rpc.host === '0.0.0.0' ? '127.0.0.1' : rpc.host,
    CLIPPER_PORT: String(rpc.port),
    CLIPPER_MODEL_PATH: modelPath,
    CLIPPER_REPLICA_ID: replicaId,
  };
  if (rpc.frontends?.length) env.CLIPPER_FRONTENDS = rpc.frontends.map(formatAddress).join(',');
  if (rpc.auth) env.CLIPPER_REPLICA_SECRET = replicaSecret(rpc.auth.replicaKey, replicaId, v.name, v.version);
  if (rpc.auth?.serverKey) env.CLIPPER_RPC_SERVER_KEY = rpc.auth.serverKey;
  // onnxruntime's intra-op pool: as many threads as the replica has whole cores.
  if (limits.cpus > 0) env.CLIPPER_ONNX_INTRA_OP_THREADS = String(Math.max(1, Math.floor(limits.cpus)));
  return env;
}

export function launchSpec(v: ModelVersion, rpc: RpcEndpoint, replicaId: string, limits: ResourceLimits): LaunchSpec {
  const env = { ...replicaEnv(v, rpc, replicaId, limits), CLIPPER_PARENT_PID: String(process.pid) };
  const cwd = v.artifactPath ? dirname(v.artifactPath) : REPO_ROOT;
  switch (v.runtime) {
    case 'js': return { ...nodeEntry('runtimes/js/main.ts'), env, cwd };
    case 'onnx': return { ...nodeEntry('runtimes/onnx/main.ts'), env, cwd };
    case 'spark': return { ...nodeEntry('runtimes/spark/main.ts'), env, cwd };
    case 'python':
      return { command: PYTHON, args: ['-m', 'clipper_container'], env: { ...env, PYTHONPATH: join(REPO_ROOT, 'python'), PYTHONUNBUFFERED: '1' }, cwd };
    case 'command':
      // `exec` so signals reach the program itself, not a shell.
      return { command: '/bin/sh', args: ['-c', `exec ${v.containerName}`], env, cwd };
    case 'image':
      throw new ServingError('INVALID_INPUT', `runtime image (${v.containerName}) needs the Docker backend: start the server with --backend docker`);
  }
}
