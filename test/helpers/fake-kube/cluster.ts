/**
 * The test API server's stand-in for the controllers and the kubelet, one tick at a time:
 *   - deployment controller: keeps `spec.replicas` pods of the current template (pods named
 *     <deployment>-<template hash>-<5 chars>, labelled from the template plus pod-template-hash,
 *     owned by the Deployment directly — there are no ReplicaSets here); on scale down removes
 *     not-ready pods first, then the lowest pod-deletion-cost, then the newest; replaces pods of an
 *     older template once the new ones are ready; writes status (replicas, updatedReplicas,
 *     readyReplicas, availableReplicas, observedGeneration);
 *   - garbage collector: pods whose Deployment is gone are deleted;
 *   - kubelet: a Pending pod is Running and Ready on the next tick (unless its Deployment is held
 *     not ready); a terminating pod is gone on the next tick.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { Obj, Store } from './store.ts';

const NODE = 'fake-node-1';
const DELETION_COST = 'controller.kubernetes.io/pod-deletion-cost';

export function templateHash(template: unknown): string {
  return createHash('sha256').update(JSON.stringify(template)).digest('hex').slice(0, 10);
}

function suffix(): string {
  const alphabet = 'bcdfghjklmnpqrstvwxz2456789';
  return [...randomBytes(5)].map((b) => alphabet[b % alphabet.length]).join('');
}

export const isReady = (p: Obj): boolean => p.status?.phase === 'Running' && (p.status?.conditions ?? []).some((c: { type: string; status: string }) => c.type === 'Ready' && c.status === 'True');

export class FakeCluster {
  /** Deployments whose pods run but do not become ready. */
  readonly heldNotReady = new Set<string>();
  readonly logs = new Map<string, string[]>();

  constructor(private readonly store: Store) {}

  tick(): void {
    for (const d of this.store.list('deployments', undefined)) this.reconcileDeployment(d);
    this.collectOrphans();
    this.kubelet();
  }

  /** Marks a pod terminating (DELETE of a pod): the kubelet removes it on the next tick. */
  terminate(p: Obj, graceSeconds = 30): Obj {
    if (p.metadata.deletionTimestamp) return p;
    p.metadata.deletionTimestamp = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
    p.metadata.deletionGracePeriodSeconds = graceSeconds;
    return this.store.update('pods', p);
  }

  /** The replica container of `pod` exits and the kubelet restarts it. */
  crash(ns: string, pod: string, terminated: { exitCode: number; reason: string }): void {
    const p = this.store.get('pods', ns, pod);
    if (!p) throw new Error(`no pod ${pod}`);
    const c = p.status.containerStatuses[0];
    c.restartCount++;
    c.lastState = { terminated: { ...terminated, finishedAt: new Date().toISOString().replace(/\.\d+Z$/, 'Z'), startedAt: c.state.running?.startedAt } };
    this.store.update('pods', p);
  }

  private ownedPods(d: Obj): Obj[] {
    return this.store.list('pods', d.metadata.namespace, (p) => p.metadata.ownerReferences?.[0]?.uid === d.metadata.uid);
  }

  private reconcileDeployment(d: Obj): void {
    const want = d.spec.replicas ?? 1;
    const hash = templateHash(d.spec.template);
    const live = this.ownedPods(d).filter((p) => !p.metadata.deletionTimestamp);
    const current = live.filter((p) => p.metadata.labels?.['pod-template-hash'] === hash);
    const old = live.filter((p) => p.metadata.labels?.['pod-template-hash'] !== hash);
    for (let i = current.length; i < want; i++) current.push(this.createPod(d, hash));
    if (current.length > want) {
      const cost = (p: Obj) => Number(p.metadata.annotations?.[DELETION_COST] ?? 0);
      const ranked = [...current].sort((a, b) => Number(isReady(a)) - Number(isReady(b)) || cost(a) - cost(b)
        || (b.metadata.creationTimestamp ?? '').localeCompare(a.metadata.creationTimestamp ?? '') || b.metadata.name.localeCompare(a.metadata.name));
      for (const p of ranked.slice(0, current.length - want)) this.terminate(p);
    }
    if (old.length && current.filter(isReady).length >= want) for (const p of old) this.terminate(p);
    const now = this.ownedPods(d).filter((p) => !p.metadata.deletionTimestamp);
    const ready = now.filter(isReady).length;
    const status = {
      observedGeneration: d.metadata.generation, replicas: now.length,
      updatedReplicas: now.filter((p) => p.metadata.labels?.['pod-template-hash'] === hash).length,
      readyReplicas: ready, availableReplicas: ready, unavailableReplicas: Math.max(0, want - ready),
    };
    const fresh = this.store.get('deployments', d.metadata.namespace!, d.metadata.name);
    if (fresh && JSON.stringify(fresh.status) !== JSON.stringify(status)) {
      fresh.status = status;
      this.store.update('deployments', fresh);
    }
  }

  private createPod(d: Obj, hash: string): Obj {
    const t = d.spec.template;
    const pod: Obj = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: {
        name: `${d.metadata.name}-${hash}-${suffix()}`,
        labels: { ...(t.metadata?.labels ?? {}), 'pod-template-hash': hash },
        annotations: { ...(t.metadata?.annotations ?? {}) },
        ownerReferences: [{ apiVersion: 'apps/v1', kind: 'Deployment', name: d.metadata.name, uid: d.metadata.uid!, controller: true }],
      },
      spec: { ...structuredClone(t.spec), nodeName: NODE },
      status: { phase: 'Pending', conditions: [{ type: 'PodScheduled', status: 'True' }] },
    };
    return this.store.create({ group: '', version: 'v1', plural: 'pods', kind: 'Pod', namespaced: true }, d.metadata.namespace!, pod);
  }

  private collectOrphans(): void {
    const uids = new Set(this.store.list('deployments', undefined).map((d) => d.metadata.uid));
    for (const p of this.store.list('pods', undefined)) {
      const owner = p.metadata.ownerReferences?.[0];
      if (owner?.kind === 'Deployment' && !uids.has(owner.uid) && !p.metadata.deletionTimestamp) this.terminate(p);
    }
  }

  private kubelet(): void {
    const at = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
    for (const p of this.store.list('pods', undefined)) {
      if (p.metadata.deletionTimestamp) {
        this.store.delete('pods', p.metadata.namespace!, p.metadata.name);
        continue;
      }
      const held = this.heldNotReady.has(p.metadata.ownerReferences?.[0]?.name ?? '');
      if (p.status?.phase === 'Pending') {
        p.status = {
          phase: 'Running', startTime: at, hostIP: '10.0.0.1', podIP: `10.1.0.${1 + (this.store.rv % 250)}`,
          conditions: [{ type: 'PodScheduled', status: 'True' }, { type: 'Initialized', status: 'True' }, { type: 'ContainersReady', status: held ? 'False' : 'True' }, { type: 'Ready', status: held ? 'False' : 'True' }],
          containerStatuses: (p.spec.containers as Array<{ name: string; image: string }>).map((c) => ({
            name: c.name, image: c.image, imageID: '', ready: !held, restartCount: 0, started: true, state: { running: { startedAt: at } },
          })),
        };
        this.logs.set(p.metadata.name, [`pod ${p.metadata.name} started on ${NODE}`]);
        this.store.update('pods', p);
      } else if (p.status?.phase === 'Running' && !held && !isReady(p)) {
        for (const c of p.status.conditions) if (c.type === 'Ready' || c.type === 'ContainersReady') c.status = 'True';
        for (const c of p.status.containerStatuses ?? []) c.ready = true;
        this.store.update('pods', p);
      }
    }
  }
}
