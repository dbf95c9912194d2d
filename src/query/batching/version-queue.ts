/**
 * The shared queue of one model version and the replicas that pull from it.
 * Each replica takes up to its batch size from the head when it has a free slot
 * (one batch in flight per replica by default). Work whose query has stopped waiting
 * is dropped before it is sent; a batch lost with its replica is re-queued at the head.
 */
import { ServingError } from '../../errors.ts';
import type { Replica, RpcOutput } from '../../rpc/replica.ts';
import { decodeOutput } from '../output.ts';
import type { Clock, Task } from '../task.ts';
import { BatchSizePolicy, type BatchSizeConfig } from './batch-size-policy.ts';

export type SendBatch = (replica: Replica, inputs: Buffer[]) => Promise<RpcOutput[]>;

export interface VersionQueueOptions {
  batch: BatchSizeConfig;
  maxInflightPerReplica: number;
  maxQueue: number;
  maxAttempts: number;
  /** Share of the SLO a batch may take (the rest is queueing and transport). */
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
  dropped(reason: 'deadline' | 'full', n: number): void;
  queued(waitMs: number): void;
  depth(n: number): void;
}

interface Worker { replica: Replica; inflight: number; sizer: BatchSizePolicy }

export class VersionQueue {
  private items: Task[] = [];
  private head = 0;
  private readonly workers = new Map<string, Worker>();
  private budgetMs = 100;
  private closedReason: string | undefined;
  private waitTimer: NodeJS.Timeout | undefined;

  constructor(
    readonly key: string,
    private readonly send: SendBatch,
    private readonly opts: VersionQueueOptions,
    private readonly clock: Clock,
    private readonly observer: QueueObserver,
  ) {}

  get depth(): number { return this.items.length - this.head; }
  get replicaCount(): number { return this.workers.size; }
  batchSizes(): number[] { return [...this.workers.values()].map((w) => w.sizer.current()); }

  setLatencyBudget(sloMs: number): void {
    this.budgetMs = Math.max(0.1, sloMs * this.opts.budgetFraction);
  }

  enqueue(task: Task): void {
    if (this.closedReason) {
      task.done({ ok: false, code: 'UNAVAILABLE', error: this.closedReason });
      return;
    }
    if (this.depth >= this.opts.maxQueue) {
      this.observer.dropped('full', 1);
      throw new ServingError('QUEUE_FULL', `queue of ${this.key} is full (${this.opts.maxQueue} waiting)`);
    }
    this.items.push(task);
    this.pump();
  }

  addReplica(replica: Replica): void {
    this.workers.set(replica.key, { replica, inflight: 0, sizer: new BatchSizePolicy(this.opts.batch) });
    this.pump();
  }

  removeReplica(replica: Replica): void {
    this.workers.delete(replica.key);
  }

  /** The version is gone: everything waiting gets `reason`. */
  close(reason: string): void {
    this.closedReason = reason;
    for (const t of this.takeAll()) t.done({ ok: false, code: 'UNAVAILABLE', error: reason });
  }

  private takeAll(): Task[] {
    const rest = this.items.slice(this.head);
    this.items = [];
    this.head = 0;
    return rest;
  }

  private pump(): void {
    if (this.depth === 0) return;
    for (const w of this.workers.values()) {
      while (w.inflight < this.opts.maxInflightPerReplica && this.depth > 0) {
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
      this.waitTimer = setTimeout(() => {
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
      const t = this.items[this.head++]!;
      if (t.abandoned || t.deadline <= now) {
        expired++;
        if (!t.abandoned) t.done({ ok: false, code: 'DEADLINE_EXCEEDED', error: 'deadline passed while queued' });
        continue;
      }
      this.observer.queued(now - t.enqueuedAt);
      out.push(t);
    }
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    if (expired) this.observer.dropped('deadline', expired);
    return out;
  }

  private async dispatch(w: Worker, batch: Task[]): Promise<void> {
    w.inflight++;
    const started = this.clock.now();
    this.observer.batchSent(batch.length);
    try {
      const outputs = await this.send(w.replica, batch.map((t) => t.input));
      const latency = this.clock.now() - started;
      w.sizer.observe(batch.length, latency, this.budgetMs);
      let failed = 0;
      for (let i = 0; i < batch.length; i++) {
        const o = outputs[i]!;
        if (o.ok) batch[i]!.done({ ok: true, value: decodeOutput(o.value), bytes: o.value.length });
        else {
          failed++;
          batch[i]!.done({ ok: false, code: 'MODEL_ERROR', error: o.value.toString('utf8') });
        }
      }
      this.observer.batchDone(batch.length, latency, failed);
    } catch (e) {
      this.observer.batchDone(batch.length, this.clock.now() - started, batch.length);
      const err = e instanceof ServingError ? e : new ServingError('WORKER_FAILED', String(e));
      if (err.code === 'WORKER_FAILED') this.retry(batch, err.message);
      else for (const t of batch) t.done({ ok: false, code: 'MODEL_ERROR', error: err.message });
    } finally {
      w.inflight--;
      this.pump();
    }
  }

  /** A lost batch goes back to the head (order kept) for another replica, unless tried enough. */
  private retry(batch: Task[], reason: string): void {
    const again: Task[] = [];
    for (const t of batch) {
      t.attempts++;
      if (t.abandoned) continue;
      if (t.attempts >= this.opts.maxAttempts || this.closedReason) t.done({ ok: false, code: 'WORKER_FAILED', error: reason });
      else again.push(t);
    }
    if (again.length === 0) return;
    const rest = this.takeAll();
    this.items = [...again, ...rest];
  }
}
