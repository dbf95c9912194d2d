/**
 * Load counters of one model version and its replicas, read (and reset) once per measurement
 * interval: arrivals, sheds, answers in time, queue delay, and each replica's busy time.
 */
const MAX_DELAY_SAMPLES = 4096;

export interface ReplicaInterval {
  replicaId: string;
  batchesPerS: number;
  meanBatchMs: number | undefined;
  /** Share of the interval with a batch in flight. */
  busyFraction: number;
}

export interface VersionInterval {
  seconds: number;
  /** Inputs that needed the model (admitted + shed) per second. */
  arrivalRate: number;
  arrivals: number;
  shed: number;
  /** Admitted, but not answered by the deadline (expired in the queue, or still in flight). */
  late: number;
  answered: number;
  /** Answered before the deadline. */
  inTime: number;
  queueDelayP50Ms: number | undefined;
  queueDelayP99Ms: number | undefined;
  /** Batch latency per input over the batches that finished; undefined when none did. */
  serviceMsPerInput: number | undefined;
  replicas: ReplicaInterval[];
}

export class ReplicaLoad {
  private inflight = 0;
  private busySince: number | undefined;
  private busyMs = 0;
  private batches = 0;
  private latencyMs = 0;
  private inputs = 0;

  constructor(readonly replicaId: string, private intervalStart: number) {}

  started(now: number): void {
    if (this.inflight++ === 0) this.busySince = now;
  }

  finished(now: number, inputs: number, latencyMs: number): void {
    this.batches++;
    this.latencyMs += latencyMs;
    this.inputs += inputs;
    if (--this.inflight === 0 && this.busySince !== undefined) {
      this.busyMs += now - this.busySince;
      this.busySince = undefined;
    }
  }

  take(now: number): ReplicaInterval & { latencyMs: number; inputs: number } {
    const seconds = Math.max(1e-3, (now - this.intervalStart) / 1000);
    let busy = this.busyMs;
    if (this.busySince !== undefined) {
      busy += now - Math.max(this.busySince, this.intervalStart);
      this.busySince = now;
    }
    const out = {
      replicaId: this.replicaId,
      batchesPerS: this.batches / seconds,
      meanBatchMs: this.batches ? this.latencyMs / this.batches : undefined,
      busyFraction: Math.min(1, busy / (seconds * 1000)),
      latencyMs: this.latencyMs,
      inputs: this.inputs,
    };
    this.intervalStart = now;
    this.busyMs = 0;
    this.batches = 0;
    this.latencyMs = 0;
    this.inputs = 0;
    return out;
  }
}

export class VersionLoad {
  private arrivals = 0;
  private sheds = 0;
  private lateCount = 0;
  private answeredCount = 0;
  private inTimeCount = 0;
  private delays: number[] = [];
  private delaysSeen = 0;
  private readonly replicas = new Map<string, ReplicaLoad>();

  constructor(private intervalStart: number) {}

  arrived(): void { this.arrivals++; }
  shed(): void { this.sheds++; }
  late(n: number): void { this.lateCount += n; }
  answered(n: number, inTime: number): void {
    this.answeredCount += n;
    this.inTimeCount += inTime;
  }

  queued(ms: number): void {
    // Reservoir sample: percentiles stay honest without holding every delay of a busy second.
    this.delaysSeen++;
    if (this.delays.length < MAX_DELAY_SAMPLES) this.delays.push(ms);
    else {
      const j = Math.floor(Math.random() * this.delaysSeen);
      if (j < MAX_DELAY_SAMPLES) this.delays[j] = ms;
    }
  }

  replica(id: string): ReplicaLoad {
    let r = this.replicas.get(id);
    if (!r) this.replicas.set(id, (r = new ReplicaLoad(id, this.intervalStart)));
    return r;
  }

  forgetReplica(id: string): void {
    this.replicas.delete(id);
  }

  /** The counters since the previous call, and a fresh interval. */
  take(now: number): VersionInterval {
    const seconds = Math.max(1e-3, (now - this.intervalStart) / 1000);
    const reps = [...this.replicas.values()].map((r) => r.take(now));
    const inputs = reps.reduce((s, r) => s + r.inputs, 0);
    const latency = reps.reduce((s, r) => s + r.latencyMs, 0);
    const sorted = this.delays.sort((a, b) => a - b);
    const out: VersionInterval = {
      seconds,
      arrivalRate: this.arrivals / seconds,
      arrivals: this.arrivals,
      shed: this.sheds,
      late: this.lateCount,
      answered: this.answeredCount,
      inTime: this.inTimeCount,
      queueDelayP50Ms: percentile(sorted, 0.5),
      queueDelayP99Ms: percentile(sorted, 0.99),
      serviceMsPerInput: inputs > 0 ? latency / inputs : undefined,
      replicas: reps.map(({ latencyMs: _l, inputs: _i, ...r }) => r),
    };
    this.intervalStart = now;
    this.arrivals = 0;
    this.sheds = 0;
    this.lateCount = 0;
    this.answeredCount = 0;
    this.inTimeCount = 0;
    this.delays = [];
    this.delaysSeen = 0;
    return out;
  }
}

function percentile(sorted: number[], q: number): number | undefined {
  if (sorted.length === 0) return undefined;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}
