/** Shared set-up of the Kubernetes backend tests: a test API server, a manager against it, model versions. */
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KubernetesManager, type KubernetesManagerOptions } from '../../../src/manager/kubernetes/kubernetes-manager.ts';
import type { ModelVersion } from '../../../src/registry/types.ts';
import { FakeKubeApi } from '../fake-kube-api.ts';

export const NS = 'clipper-test';
export const REPLICA_KEY = Buffer.alloc(32, 7);

export interface Rig { fake: FakeKubeApi; manager: KubernetesManager; dir: string; logs: string[]; close(): Promise<void> }

export async function startRig(opts: Partial<KubernetesManagerOptions> = {}): Promise<Rig> {
  const fake = await FakeKubeApi.start();
  fake.createNamespace(NS);
  const dir = mkdtempSync(join(tmpdir(), 'k8s-test-'));
  const logs: string[] = [];
  const manager = new KubernetesManager({
    kubeConfig: { kind: 'url', server: fake.url },
    namespace: NS,
    image: 'clipper-runtime:test',
    rpc: { host: '0.0.0.0', port: 7000, auth: { replicaKey: REPLICA_KEY, serverKey: undefined } },
    stopGraceMs: 3000,
    startTimeoutMs: 60_000,
    log: (m) => logs.push(m),
    ...opts,
  });
  return {
    fake, manager, dir, logs,
    async close() {
      await manager.close();
      await fake.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A js model version with a small directory artifact under `dir`. */
export function version(dir: string, name: string, v: string, extra: Partial<ModelVersion> = {}): ModelVersion {
  const art = join(dir, `${name}-${v}`, 'model');
  mkdirSync(join(art, 'lib'), { recursive: true });
  writeFileSync(join(art, 'index.mjs'), `export default (xs) => xs.map(() => '${v}');\n`);
  writeFileSync(join(art, 'lib', 'weights.bin'), Buffer.alloc(1000, 1));
  return {
    name, version: v, inputType: 'doubles', labels: [], runtime: 'js', containerName: '', artifactPath: art,
    artifactHash: `hash${name}${v}`.padEnd(64, '0'), batchSize: 0, replicas: 1, cpus: 0.5, memoryMb: 64, createdAt: Date.now(), ...extra,
  } as ModelVersion;
}

/** Polls `cond` until it holds; fails after `ms` (generous: never a timing assertion). */
export async function until(cond: () => boolean | Promise<boolean>, what: string, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
