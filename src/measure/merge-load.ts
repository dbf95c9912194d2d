/**
 * Load of one version as the whole cluster sees it, from each frontend's own sample of the same
 * interval. Every replica serves every frontend, so rates and busy shares add up: a replica busy
 * 40% of the time for one frontend and 30% for another is 70% busy. Queue delays are per frontend;
 * the merged percentile is the worst one, which is what the SLO is judged on.
 */
import type { VersionLoadSample } from '../query/query-processor.ts';
import type { ReplicaInterval, VersionInterval } from '../query/batching/version-load.ts';

export function mergeLoadSamples(samples: VersionLoadSample[]): VersionLoadSample[] {
  const byVersion = new Map<string, VersionLoadSample[]>();
  for (const s of samples) {
    const key = `${s.name}:${s.version}`;
    byVersion.set(key, [...(byVersion.get(key) ?? []), s]);
  }
  return [...byVersion.values()].map((group) => (group.length === 1 ? group[0]! : mergeVersion(group)));
}

function mergeVersion(group: VersionLoadSample[]): VersionLoadSample {
  const first = group[0]!;
  const inflight: Record<string, number> = {};
  for (const s of group) for (const [id, n] of Object.entries(s.inflight)) inflight[id] = (inflight[id] ?? 0) + n;
  return {
    name: first.name, version: first.version,
    depth: sum(group.map((s) => s.depth)),
    readyReplicas: Math.max(...group.map((s) => s.readyReplicas)),
    batchSizes: group.flatMap((s) => s.batchSizes),
    // The fullest profile: the one learned from the most batch sizes.
    profile: group.map((s) => s.profile).sort((a, b) => b.length - a.length)[0]!,
    inflight,
    interval: mergeIntervals(group.map((s) => s.interval)),
  };
}

function mergeIntervals(list: VersionInterval[]): VersionInterval {
  const answeredWeighted = list.filter((i) => i.serviceMsPerInput !== undefined && i.answered > 0);
  const weight = sum(answeredWeighted.map((i) => i.answered));
  const replicas = new Map<string, ReplicaInterval[]>();
  for (const i of list) for (const r of i.replicas) replicas.set(r.replicaId, [...(replicas.get(r.replicaId) ?? []), r]);
  return {
    seconds: Math.max(...list.map((i) => i.seconds)),
    arrivalRate: sum(list.map((i) => i.arrivalRate)),
    arrivals: sum(list.map((i) => i.arrivals)),
    shed: sum(list.map((i) => i.shed)),
    late: sum(list.map((i) => i.late)),
    answered: sum(list.map((i) => i.answered)),
    inTime: sum(list.map((i) => i.inTime)),
    queueDelayP50Ms: worst(list.map((i) => i.queueDelayP50Ms)),
    queueDelayP99Ms: worst(list.map((i) => i.queueDelayP99Ms)),
    serviceMsPerInput: weight > 0 ? sum(answeredWeighted.map((i) => i.serviceMsPerInput! * i.answered)) / weight : undefined,
    replicas: [...replicas.entries()].map(([replicaId, rs]) => {
      const timed = rs.filter((r) => r.meanBatchMs !== undefined && r.batchesPerS > 0);
      const batches = sum(timed.map((r) => r.batchesPerS));
      return {
        replicaId,
        batchesPerS: sum(rs.map((r) => r.batchesPerS)),
        meanBatchMs: batches > 0 ? sum(timed.map((r) => r.meanBatchMs! * r.batchesPerS)) / batches : undefined,
        busyFraction: Math.min(1, sum(rs.map((r) => r.busyFraction))),
      };
    }),
  };
}

function sum(xs: number[]): number {
  let t = 0;
  for (const x of xs) t += x;
  return t;
}

function worst(xs: Array<number | undefined>): number | undefined {
  const known = xs.filter((x): x is number => x !== undefined);
  return known.length ? Math.max(...known) : undefined;
}
