/**
 * How one input reaches its version's queue, or does not need to: refused at once when it is
 * quarantined (a query of death), answered from the prediction cache, joined to an identical
 * input already in flight (one model call shared), or queued as a new task. Learns the answers:
 * successful ones go into the cache, quarantine verdicts into the quarantine.
 */
import type { VersionQueue } from './batching/version-queue.ts';
import { PredictionCache } from './cache/prediction-cache.ts';
import type { ModelMetrics } from './metrics.ts';
import type { Quarantine } from './quarantine.ts';
import type { Task, TaskResult, TaskTrace } from './task.ts';

/** What a request's trace learns from here: a cache hit, or a task for each input queued. */
export interface FlightTrace {
  task(model: string): TaskTrace | undefined;
  cacheHit(model: string): void;
}

type Listener = (r: TaskResult) => void;

/** When the input's query gives up, and what a batch carrying it may take (see Task). */
export interface Timing {
  deadline: number;
  now: number;
  budgetMs: number;
}

/** One model call shared by identical inputs in flight; abandoned when nobody waits any more. */
interface Flight {
  input: Buffer;
  listeners: Set<Listener>;
  task: Task;
  leave(listener: Listener): void;
}

export class InputFlights {
  private readonly flights = new Map<string, Flight>();

  constructor(private readonly cache: PredictionCache, private readonly quarantine: Quarantine) {}

  /**
   * Answers one input, or queues it and calls `done` with its answer. Returns how to stop waiting
   * (undefined when answered at once). Throws what the queue throws (QUEUE_FULL, OVERLOADED).
   */
  submit(q: VersionQueue, mm: Pick<ModelMetrics, 'cacheHits' | 'cacheMisses'>, input: Buffer, t: Timing, trace: FlightTrace | undefined, done: Listener): (() => void) | undefined {
    const { deadline, now, budgetMs } = t;
    const held = this.quarantine.check(q.key, input);
    if (held) {
      done({ ok: false, code: 'QUARANTINED', error: `quarantined: ${held}` });
      return undefined;
    }
    const quarantine = this.quarantine;
    const judged = (r: TaskResult) => {
      if (!r.ok && r.code === 'QUARANTINED') quarantine.add(q.key, input, r.error);
    };
    if (!this.cache.enabled) {
      const task: Task = { input, deadline, enqueuedAt: now, budgetMs, attempts: 0, abandoned: false, trace: trace?.task(q.key), done: (r) => { judged(r); done(r); } };
      q.enqueue(task);
      return () => { task.abandoned = true; };
    }
    const key = PredictionCache.key(q.key, input);
    const hit = this.cache.get(key, q.key, input);
    if (hit) {
      mm.cacheHits.inc();
      trace?.cacheHit(q.key);
      done({ ok: true, output: hit });
      return undefined;
    }
    mm.cacheMisses.inc();
    const twin = this.flights.get(key);
    if (twin && twin.input.equals(input)) {
      twin.listeners.add(done);
      twin.task.deadline = Math.max(twin.task.deadline, deadline);
      twin.task.budgetMs = Math.min(twin.task.budgetMs ?? budgetMs, budgetMs);
      return () => twin.leave(done);
    }
    const flights = this.flights;
    const cache = this.cache;
    const flight: Flight = {
      input,
      listeners: new Set([done]),
      task: {
        input, deadline, enqueuedAt: now, budgetMs, attempts: 0, abandoned: false, trace: trace?.task(q.key),
        done: (r) => {
          if (flights.get(key) === flight) flights.delete(key);
          if (r.ok) cache.put(key, q.key, input, r.output);
          judged(r);
          for (const l of flight.listeners) l(r);
        },
      },
      leave(l) {
        flight.listeners.delete(l);
        if (flight.listeners.size > 0) return;
        flight.task.abandoned = true;
        if (flights.get(key) === flight) flights.delete(key);
      },
    };
    q.enqueue(flight.task);
    if (!twin) flights.set(key, flight);
    return () => flight.leave(done);
  }
}
