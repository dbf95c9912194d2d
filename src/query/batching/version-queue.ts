/**
 * The shared queue of one model version and the replicas that pull from it.
 * Each replica takes up to its batch size from the head when it has a free slot
 * (one batch in flight per replica by default). Work whose query has stopped waiting
 * is dropped before it is sent; a batch lost with its replica is re-queued at the head.
 *
 * Admission (see docs/batching.md): an input is queued only if, by the learned service-time
 * profile, the queue ahead of it and the batches in flight, it can still be answered before its
 * deadline. The rest is shed at once (OVERLOADED), so under overload the queue holds only work
 * that will be answered in time instead of work that will expire at its head.
 *
 * Bounds: `maxQueue` inputs and `maxQueueBytes` of input bytes waiting (QUEUE_FULL past either);
 * a task's slot is cleared as it is taken, so nothing finished stays referenced. With no replica
 * to drain it, inputs whose query stopped waiting are released from the head on every arrival,
 * and from the whole queue when it is full.
 *
 * A batch lost with a replica that died is handled by loss-policy.ts: its inputs are retried one
 * at a time, and an input alone in flight on a replica that crashed is quarantined (QUARANTINED).
 */
import type { Clock, TimerHandle } from '../../clock.ts';
import { ServingError } from '../../errors.ts';
import type { Replica, RpcOutput } from '../../rpc/replica.ts';
import { ModelOutput } from '../output.ts';
import type { Task } from '../task.ts';
import { BatchSizePolicy, type BatchSizeConfig } from './batch-size-policy.ts';
import { lossVerdict, quarantineReason, type LossCause } from './loss-policy.ts';
import { ServiceProfile } from './service-profile.ts';
import { VersionLoad, type ReplicaLoad } from './version-load.ts';

const ADMISSION_MARGIN = 0.1;

export type SendBatch = (replica: Replica, inputs: Buffer[]) => Promise<RpcOutput[]>;

export interface VersionQueueOptions {
  batch: BatchSizeConfig;
  maxInflightPerReplica: number;
  maxQueue: number;
  /** Bytes of inputs waiting (not yet sent) past which arrivals are refused. */
  maxQueueBytes: number;
  maxAttempts: number;
  /** Share of the SLO a batch may take (the rest is waiting for a free replica and transport). */
  budgetFraction: number;
  /**
   * Delayed batching: an idle replica waits up to this long (ms) after the oldest queued input
   * for a fuller batch before it sends a smaller one. 0 sends at once.
   */
  maxBatchWaitMs: number;
}

export interface QueueObserver {
  batchSent(n: number): void;
  batchDone(n: number, latencyMs: number, failed: number): void;
  dropped(reason: 'deadline' | 'full' | 'shed' | 'quarantine', n: number): void;
  queued(waitMs: number): void;
  depth(n: number): void;
}

interface Worker {
  replica: Replica;
  /** Batches in flight, the inputs in them, and how many of those batches carry a suspect. */
  inflight: number;
  inflightInputs: number;
  suspects: number;
  /** Set when its process died, before its batches are failed (replicaLost). */
  lost?: { cause: LossCause; exit: string; inputs: number };
  sizer: BatchSizePolicy;
  /** When its batches in flight are expected back (clock ms). */
  busyUntil: number;
  load: ReplicaLoad;
}

export class VersionQueue {
  private items: Task[] = [];
  private head = 0;
  private queuedBytes = 0;
  private readonly workers = new Map<string, Worker>();
  private budgetMs = 100;
  private closedReason: string | undefined;
  private waitTimer: TimerHandle | undefined;
  readonly profile = new ServiceProfile();
  /** Counters for the measurements (arrivals, sheds, busy time, queue delay). */
  readonly load: VersionLoad;

  constructor(
    readonly key: string,
    private readonly send: SendBatch,
    private readonly opts: VersionQueueOptions,
    private readonly clock: Clock,
    private readonly observer: QueueObserver,
  ) {
    this.load = new VersionLoad(clock.now());
  }

  get depth(): number { return this.items.length - this.head; }
  get bytes(): number { return this.queuedBytes; }
  get replicaCount(): number { return this.workers.size; }
  batchSizes(): number[] { return [...this.workers.values()].map((w) => w.sizer.current()); }
  replicaLoads(): Array<{ replicaId: string; inflight: number; batchSize: number }> {
    return [...this.workers.values()].map((w) => ({ replicaId: w.replica.replicaId ?? w.replica.key, inflight: w.inflight, batchSize: w.sizer.current() }));
  }

  /** The batch budget for tasks that carry none (Task.budgetMs). */
  setLatencyBudget(sloMs: number): void {
    this.budgetMs = Math.max(0.1, sloMs * this.opts.budgetFraction);
  }

  enqueue(task: Task): void {
    this.load.arrived();
    if (this.closedReason) {
      task.done({ ok: false, code: 'UNAVAILABLE', error: this.closedReason });
      return;
    }
    if (this.workers.size === 0) this.releaseDead(false);
    const full = () => this.depth >= this.opts.maxQueue || this.queuedBytes + task.input.length > this.opts.maxQueueBytes;
    if (full() && this.workers.size === 0) this.releaseDead(true);
    if (full()) {
      this.load.shed();
      this.observer.dropped('full', 1);
      const what = this.depth >= this.opts.maxQueue
        ? `${this.opts.maxQueue} inputs waiting`
        : `${size(this.queuedBytes)} of inputs waiting; this input's ${size(task.input.length)} would pass the limit of ${size(this.opts.maxQueueBytes)}`;
      throw new ServingError('QUEUE_FULL', `queue of ${this.key} is full (${what})`);
    }
    const now = this.clock.now();
    // Keep a tenth of the time left as a margin: under overload the queue fills up to the
    // admission boundary, so every admitted input would otherwise sit right at its deadline.
    const limit = task.deadline - ADMISSION_MARGIN * (task.deadline - now);
    const eta = this.estimateAnswerAt(now, limit);
    if (eta > limit) {
      this.load.shed();
      this.observer.dropped('shed', 1);
      const wait = Number.isFinite(eta) ? `about ${Math.round(eta - now)} ms` : 'later';
      throw new ServingError('OVERLOADED', `${this.key} is overloaded: an input queued now would be answered in ${wait}, after its deadline (${Math.max(0, Math.round(task.deadline - now))} ms left)`);
    }
    this.items.push(task);
    this.queuedBytes += task.input.length;
    this.pump();
  }

  /**
   * When an input queued now would be answered: replicas take batches from the head as they come
   * free, each batch costing the profile's estimate for its size. Gives up (Infinity) past `limit`.
   * Always admits when a replica is idle and nothing waits, so the profile keeps learning even
   * after a slow spell.
   */
  estimateAnswerAt(now: number, limit: number): number {
    if (this.workers.size === 0 || !this.profile.known) return now;
    const free: Array<{ at: number; size: number }> = [];
    for (const w of this.workers.values()) {
      const idle = w.inflight < this.opts.maxInflightPerReplica;
      if (idle && this.depth === 0) return now;
      free.push({ at: idle ? now : Math.max(now, w.busyUntil), size: Math.max(1, w.sizer.current()) });
    }
    let remaining = this.depth + 1;
    for (;;) {
      let k = 0;
      for (let i = 1; i < free.length; i++) if (free[i]!.at < free[k]!.at) k = i;
      const w = free[k]!;
      if (w.at > limit) return Infinity;
      // Our batch fills up behind us while we wait, so it costs a full batch unless nothing queues.
      if (remaining <= w.size) return w.at + this.profile.estimate(this.depth === 0 ? 1 : w.size);
      remaining -= w.size;
      w.at += this.profile.estimate(w.size);
    }
  }

  addReplica(replica: Replica): void {
    this.workers.set(replica.key, { replica, inflight: 0, inflightInputs: 0, suspects: 0, sizer: new BatchSizePolicy(this.opts.batch), busyUntil: 0, load: this.load.replica(replica.replicaId ?? replica.key) });
    this.pump();
  }

  removeReplica(replica: Replica): void {
    this.workers.delete(replica.key);
    this.load.forgetReplica(replica.replicaId ?? replica.key);
  }

  /**
   * The replica's process died (`exit` says how). Call before its batches are failed (before the
   * RPC evicts it): they are then judged by loss-policy.ts instead of being retried elsewhere.
   */
  replicaLost(replicaId: string, cause: LossCause, exit: string): void {
    for (const w of this.workers.values()) {
      if ((w.replica.replicaId ?? w.replica.key) === replicaId) w.lost = { cause, exit, inputs: w.inflightInputs };
    }
  }

  /**
   * Releases tasks whose query stopped waiting: from the head only (cheap, and what expires first
   * is mostly at the head), or from the whole queue. For a queue no replica drains.
   */
  releaseDead(all: boolean): void {
    const now = this.clock.now();
    const dead = (t: Task) => isDead(t, now);
    let dropped = 0;
    const drop = (t: Task) => {
      this.queuedBytes -= t.input.length;
      expire(t);
      dropped++;
    };
    while (this.head < this.items.length && dead(this.items[this.head]!)) {
      drop(this.items[this.head]!);
      this.items[this.head++] = undefined as unknown as Task;
    }
    if (all) {
      const live: Task[] = [];
      for (let i = this.head; i < this.items.length; i++) {
        const t = this.items[i]!;
        if (dead(t)) drop(t);
        else live.push(t);
      }
      this.items = live;
      this.head = 0;
    }
    if (this.head === this.items.length) {
      this.items = [];
      this.head = 0;
    }
    if (dropped) {
      this.observer.dropped('deadline', dropped);
      this.observer.depth(this.depth);
    }
  }

  /** The version is gone: everything waiting gets `reason`. */
  close(reason: string): void {
    this.closedReason = reason;
    this.clock.clearTimeout(this.waitTimer);
    for (const t of this.takeAll()) t.done({ ok: false, code: 'UNAVAILABLE', error: reason });
  }

  /** No replica will come (none running, none starting): fail what waits instead of letting it pile up. */
  failWaiting(reason: string): void {
    for (const t of this.takeAll()) if (!t.abandoned) t.done({ ok: false, code: 'UNAVAILABLE', error: reason });
    this.observer.depth(0);
  }

  private takeAll(): Task[] {
    const rest = this.items.slice(this.head);
    this.items = [];
    this.head = 0;
    this.queuedBytes = 0;
    return rest;
  }

  /** Puts tasks back at the head, in order. */
  private requeue(tasks: Task[]): void {
    const rest = this.takeAll();
    this.items = [...tasks, ...rest];
    for (const t of this.items) this.queuedBytes += t.input.length;
  }

  private pump(): void {
    if (this.depth === 0) return;
    for (const w of this.workers.values()) {
      while (w.inflight < this.opts.maxInflightPerReplica && this.depth > 0) {
        // A suspect must be alone on its replica for a death to name it.
        if (w.inflight > 0 && (w.suspects > 0 || this.items[this.head]!.suspect)) break;
        if (this.shouldWait(w.sizer.current())) break;
        const batch = this.take(w.sizer.current());
        if (batch.length === 0) break;
        void this.dispatch(w, batch);
      }
      if (this.depth === 0) break;
    }
    this.observer.depth(this.depth);
  }

  /** Delayed batching: hold a short batch until it fills or its oldest input has waited long enough. */
  private shouldWait(size: number): boolean {
    const wait = this.opts.maxBatchWaitMs;
    if (wait <= 0 || this.depth >= size) return false;
    const oldest = this.items[this.head]!;
    const due = oldest.enqueuedAt + Math.min(wait, Math.max(0, (oldest.deadline - oldest.enqueuedAt) / 2));
    const delay = due - this.clock.now();
    if (delay <= 0) return false;
    if (!this.waitTimer) {
      this.waitTimer = this.clock.setTimeout(() => {
        this.waitTimer = undefined;
        this.pump();
      }, Math.ceil(delay));
    }
    return true;
  }

  /** Takes up to n live tasks from the head, dropping those nobody waits for any more. */
  private take(n: number): Task[] {
    const now = this.clock.now();
    const out: Task[] = [];
    let expired = 0;
    while (out.length < n && this.head < this.items.length) {
      const t = this.items[this.head]!;
      if (t.suspect && out.length > 0) break; // a suspect travels alone
      this.items[this.head++] = undefined as unknown as Task; // let finished tasks be collected
      this.queuedBytes -= t.input.length;
      if (isDead(t, now)) {
        expired++;
        expire(t);
        continue;
      }
      this.observer.queued(now - t.enqueuedAt);
      this.load.queued(now - t.enqueuedAt);
      out.push(t);
      if (t.suspect) break;
    }
    if (this.head === this.items.length) {
      this.items = [];
      this.head = 0;
    } else if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    if (expired) this.observer.dropped('deadline', expired);
    return out;
  }

  private async dispatch(w: Worker, batch: Task[]): Promise<void> {
    const suspect = batch.some((t) => t.suspect);
    w.inflight++;
    w.inflightInputs += batch.length;
    if (suspect) w.suspects++;
    const started = this.clock.now();
    w.busyUntil = Math.max(w.busyUntil, started) + this.profile.estimate(batch.length);
    w.load.started(started);
    this.observer.batchSent(batch.length);
    const replicaId = w.replica.replicaId ?? w.replica.key;
    let budget = Infinity;
    const inputs: Buffer[] = new Array(batch.length);
    for (let i = 0; i < batch.length; i++) {
      const t = batch[i]!;
      inputs[i] = t.input;
      budget = Math.min(budget, t.budgetMs ?? this.budgetMs);
      t.trace?.sent(started, replicaId, batch.length);
    }
    try {
      const outputs = await this.send(w.replica, inputs);
      const now = this.clock.now();
      const latency = now - started;
      w.sizer.observe(batch.length, latency, budget);
      this.profile.observe(batch.length, latency);
      let failed = 0;
      let inTime = 0;
      for (let i = 0; i < batch.length; i++) {
        const o = outputs[i]!;
        const t = batch[i]!;
        t.trace?.answered(now, o.ok, o.computeMs);
        if (o.ok) {
          if (now <= t.deadline) inTime++;
          t.done({ ok: true, output: o.tensor ? ModelOutput.fromTensor({ ...o.tensor, data: o.value }) : ModelOutput.fromText(o.value.toString('utf8')) });
        } else {
          failed++;
          t.done({ ok: false, code: 'MODEL_ERROR', error: o.value.toString('utf8') });
        }
      }
      w.load.finished(now, batch.length, latency);
      this.load.answered(batch.length - failed, inTime);
      this.observer.batchDone(batch.length, latency, failed);
    } catch (e) {
      const now = this.clock.now();
      for (const t of batch) t.trace?.answered(now, false);
      w.load.finished(now, 0, now - started);
      this.observer.batchDone(batch.length, now - started, batch.length);
      const err = e instanceof ServingError ? e : new ServingError('WORKER_FAILED', String(e));
      if (err.code === 'WORKER_FAILED') this.recover(w, batch, err.message);
      else for (const t of batch) t.done({ ok: false, code: 'MODEL_ERROR', error: err.message });
    } finally {
      w.inflight--;
      w.inflightInputs -= batch.length;
      if (suspect) w.suspects--;
      if (w.inflight === 0) w.busyUntil = this.clock.now();
      this.pump();
    }
  }

  /**
   * A batch lost with its replica: back to the head (order kept) for another replica, alone when
   * the replica died, or quarantined when it died with this input alone (loss-policy.ts).
   */
  private recover(w: Worker, batch: Task[], reason: string): void {
    const again: Task[] = [];
    let quarantined = 0;
    for (const t of batch) {
      t.attempts++;
      const verdict = lossVerdict({
        cause: w.lost?.cause, alone: w.lost?.inputs === 1, suspect: t.suspect === true, attempts: t.attempts, maxAttempts: this.opts.maxAttempts,
      });
      if (verdict === 'quarantine') {
        // Even when nobody waits any more: the answer is how the processor learns to refuse it.
        quarantined++;
        t.done({ ok: false, code: 'QUARANTINED', error: quarantineReason(this.key, w.lost!.cause, w.lost!.exit) });
      } else if (t.abandoned) {
        continue;
      } else if (verdict === 'fail' || this.closedReason) {
        t.done({ ok: false, code: 'WORKER_FAILED', error: reason });
      } else {
        if (verdict === 'isolate') t.suspect = true;
        again.push(t);
      }
    }
    if (quarantined) this.observer.dropped('quarantine', quarantined);
    if (again.length) this.requeue(again);
  }
}

/** Nobody waits for it any more: its query was answered, or its deadline passed. */
function isDead(t: Task, now: number): boolean {
  return t.abandoned || t.deadline <= now;
}

function expire(t: Task): void {
  if (!t.abandoned) t.done({ ok: false, code: 'DEADLINE_EXCEEDED', error: 'deadline passed while queued' });
}

function size(bytes: number): string {
  if (bytes < 1024) return `${bytes} bytes`;
  return bytes < 1048576 ? `${(bytes / 1024).toFixed(1)} KiB` : `${(bytes / 1048576).toFixed(1)} MiB`;
}
