/**
 * The measurements on GET /metrics: gauges read at scrape time from the latest snapshot, so the
 * hot path pays nothing for them.
 */
import { Gauge, type Registry } from 'prom-client';
import type { Measurements, Snapshot } from './measurements.ts';

type Row = { labels: Record<string, string>; value: number | undefined };

export function registerMeasureMetrics(registry: Registry, m: Measurements, desired: () => Array<{ model: string; replicas: number }>): void {
  const gauge = (name: string, help: string, labelNames: string[], rows: (s: Snapshot) => Row[]) => new Gauge({
    name, help, labelNames, registers: [registry],
    collect() {
      this.reset();
      for (const r of rows(m.latest())) if (r.value !== undefined && Number.isFinite(r.value)) this.set(r.labels, r.value);
    },
  });
  const machine = (s: Snapshot, f: (x: Snapshot['machines'][number]) => number) => s.machines.map((x) => ({ labels: { machine: x.name }, value: f(x) }));
  gauge('clipper_machine_cores', 'Cores of a machine replicas run on', ['machine'], (s) => machine(s, (x) => x.cores));
  gauge('clipper_machine_cpu_busy_cores', 'Cores busy on the machine (everything, not only replicas)', ['machine'], (s) => machine(s, (x) => x.cpuBusyCores));
  gauge('clipper_machine_memory_available_bytes', 'Memory available on the machine', ['machine'], (s) => machine(s, (x) => x.memoryAvailableBytes));
  gauge('clipper_machine_load1', '1-minute load average of the machine', ['machine'], (s) => machine(s, (x) => x.load1));
  gauge('clipper_machine_up', 'Whether the machine\'s engine answers (1) or it is down (0)', ['machine'], (s) => machine(s, (x) => (x.state === 'down' ? 0 : 1)));

  const replica = (s: Snapshot, f: (x: Snapshot['replicas'][number]) => number | undefined) => s.replicas.map((x) => ({ labels: { replica: x.replicaId }, value: f(x) }));
  gauge('clipper_replica_cpu_cores', 'Cores a replica used over the last interval', ['replica'], (s) => replica(s, (x) => x.cpuCores));
  gauge('clipper_replica_resident_bytes', 'Resident memory of a replica', ['replica'], (s) => replica(s, (x) => x.rssBytes));
  gauge('clipper_replica_busy_ratio', 'Share of the last interval a replica had a batch in flight', ['replica'], (s) => replica(s, (x) => x.busyFraction));

  const version = (s: Snapshot, f: (x: Snapshot['versions'][number]) => number | undefined) => s.versions.map((x) => ({ labels: { model: `${x.model}:${x.version}` }, value: f(x) }));
  gauge('clipper_version_arrival_rate', 'Inputs per second that needed the model version (admitted and shed)', ['model'], (s) => version(s, (x) => x.arrivalRate));
  gauge('clipper_version_shed_rate', 'Inputs per second shed at admission (would have missed their deadline)', ['model'], (s) => version(s, (x) => x.shedRate));
  gauge('clipper_version_slo_attainment_ratio', 'Share of arrivals answered by the model within the SLO over the last interval', ['model'], (s) => version(s, (x) => x.sloAttainment));
  gauge('clipper_version_queue_delay_p99_seconds', '99th percentile of queue delay over the last interval', ['model'], (s) => version(s, (x) => (x.queueDelayP99Ms === undefined ? undefined : x.queueDelayP99Ms / 1000)));
  gauge('clipper_version_service_seconds_per_input', 'Replica time per input over the last interval', ['model'], (s) => version(s, (x) => (x.serviceMsPerInput === undefined ? undefined : x.serviceMsPerInput / 1000)));
  new Gauge({
    name: 'clipper_desired_replicas', help: 'Replicas the current version of a model should run (set by hand or by the autoscaler)', labelNames: ['model'], registers: [registry],
    collect() {
      this.reset();
      for (const d of desired()) this.set({ model: d.model }, d.replicas);
    },
  });
}
