/**
 * The resource manager's leader lease, in Redis, with a fencing token.
 *
 *   FOLLOWER ──acquire succeeded──▶ LEADER ──renewal late / lost / Redis down──▶ FOLLOWER
 *       │                              │
 *       └──────────── close() ─────────┴──▶ CLOSED (releases the key if still ours)
 *
 * - `<prefix>leader` holds the holder's id with a PX ttl. Acquiring (a Lua script, atomic) sets
 *   it when it is free (or still ours) and INCRs `<prefix>leader:token`: the new value is the
 *   fencing token, which the store checks on every leader write (a stale token is refused).
 * - The leader renews every ttl/3 with a compare-and-renew script (only if the key still holds
 *   its id). It counts itself leader only until `sent + ttl - safety`, where `sent` is when the
 *   last successful renewal (or the acquisition) was *sent*: Redis started the key's ttl later
 *   than that, so a frozen or partitioned leader steps down before its key can expire and
 *   anyone else can acquire. `isLeader()` checks that bound itself, so a process that was
 *   paused (its timers late) does not act on a stale belief.
 * - Followers try to acquire every ttl/3: a dead leader's key simply expires and someone takes
 *   over within about ttl + ttl/3. close() deletes the key if it is still ours, so a clean
 *   shutdown hands over at the next attempt of the others.
 * - Redis unreachable: renewals fail, the leader steps down when its bound passes, nobody can
 *   acquire; once Redis answers again, one contender acquires.
 *
 * Events: 'acquired' (token: number), 'lost' (reason: string). Each 'acquired' is followed by
 * exactly one 'lost' before the next 'acquired' (close() of a leader emits 'lost' too).
 */
import { EventEmitter } from 'node:events';
import type { Redis } from 'ioredis';
import { systemClock, type Clock, type TimerHandle } from '../clock.ts';

export const DEFAULT_PREFIX = 'clipper:';
export const DEFAULT_LEASE_TTL_MS = 5000;

export const leaderKey = (prefix: string): string => `${prefix}leader`;
export const tokenKey = (prefix: string): string => `${prefix}leader:token`;

/** KEYS[1] leader, KEYS[2] token; ARGV[1] id, ARGV[2] ttl ms. Returns the new token, or 0 when someone else holds it. */
const ACQUIRE = `
local cur = redis.call('GET', KEYS[1])
if cur and cur ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return redis.call('INCR', KEYS[2])`;

/** KEYS[1] leader, KEYS[2] token; ARGV[1] id, ARGV[2] ttl ms, ARGV[3] our token. 1 when renewed, 0 when not ours any more. */
const RENEW = `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
if redis.call('GET', KEYS[2]) ~= ARGV[3] then return 0 end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1`;

/** KEYS[1] leader; ARGV[1] id. Deletes the key only while it is ours. */
const RELEASE = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`;

export interface LeaseOptions {
  /** This frontend's id, unique in the cluster (stored as the key's value). */
  id: string;
  prefix?: string;
  ttlMs?: number;
  /** The leader steps down when no renewal has succeeded for ttl - safety. Default ttl/5 (at least 50 ms). */
  safetyMs?: number;
  clock?: Clock;
  log?: (msg: string) => void;
}

type State = 'FOLLOWER' | 'LEADER' | 'CLOSED';

export class LeaderLease extends EventEmitter {
  readonly id: string;
  private readonly prefix: string;
  private readonly ttlMs: number;
  private readonly safetyMs: number;
  private readonly intervalMs: number;
  private readonly clock: Clock;
  private state: State = 'FOLLOWER';
  private currentToken: number | undefined;
  /** Monotonic time until which the leader may act. */
  private validUntil = 0;
  private tickTimer: TimerHandle | undefined;
  private expiryTimer: TimerHandle | undefined;
  private ticking: Promise<void> | undefined;
  private started = false;
  private readonly log: (msg: string) => void;

  constructor(private readonly redis: Redis, opts: LeaseOptions) {
    super();
    this.id = opts.id;
    this.prefix = opts.prefix ?? DEFAULT_PREFIX;
    this.ttlMs = opts.ttlMs ?? DEFAULT_LEASE_TTL_MS;
    this.safetyMs = opts.safetyMs ?? Math.max(50, Math.floor(this.ttlMs / 5));
    if (this.safetyMs >= this.ttlMs) throw new Error(`lease safety margin ${this.safetyMs} ms must be below its ttl ${this.ttlMs} ms`);
    this.intervalMs = Math.max(10, Math.floor(this.ttlMs / 3));
    this.clock = opts.clock ?? systemClock;
    this.log = opts.log ?? (() => {});
  }

  /** Starts contending (and renewing once leader). */
  start(): void {
    if (this.started || this.state === 'CLOSED') return;
    this.started = true;
    this.tick();
  }

  /** Leader now, and sure of it: the last renewal is recent enough that nobody else can hold the key. */
  isLeader(): boolean {
    return this.state === 'LEADER' && this.clock.now() < this.validUntil;
  }

  /** The fencing token of the current leadership; undefined when not leader. */
  token(): number | undefined {
    return this.isLeader() ? this.currentToken : undefined;
  }

  /** Stops contending; a leader deletes the key (if still its own) so another takes over at once. */
  async close(): Promise<void> {
    if (this.state === 'CLOSED') return;
    const wasLeader = this.state === 'LEADER';
    this.state = 'CLOSED';
    this.clock.clearTimeout(this.tickTimer);
    this.clock.clearTimeout(this.expiryTimer);
    await this.ticking;
    if (wasLeader) {
      this.currentToken = undefined;
      this.emit('lost', 'released: this frontend is shutting down');
      try {
        await this.withTimeout(this.redis.eval(RELEASE, 1, leaderKey(this.prefix), this.id));
      } catch (e) {
        this.log(`lease: could not release ${leaderKey(this.prefix)} (it expires by itself): ${msg(e)}`);
      }
    }
  }

  private tick(): void {
    if (this.state === 'CLOSED') return;
    this.ticking = (this.state === 'LEADER' ? this.renew() : this.acquire()).finally(() => {
      this.ticking = undefined;
      if (this.state !== 'CLOSED') this.tickTimer = this.clock.setTimeout(() => this.tick(), this.intervalMs);
    });
  }

  private async acquire(): Promise<void> {
    const sent = this.clock.now();
    let token: number;
    try {
      token = Number(await this.withTimeout(this.redis.eval(ACQUIRE, 2, leaderKey(this.prefix), tokenKey(this.prefix), this.id, String(this.ttlMs))));
    } catch (e) {
      this.log(`lease: cannot reach Redis to contend for leadership: ${msg(e)}`);
      return;
    }
    if (this.state === 'CLOSED') {
      // close() ran while the acquisition was in flight: give the key back.
      if (token > 0) await this.withTimeout(this.redis.eval(RELEASE, 1, leaderKey(this.prefix), this.id)).catch(() => {});
      return;
    }
    if (!(token > 0)) return;
    this.state = 'LEADER';
    this.currentToken = token;
    this.extend(sent);
    this.log(`lease: ${this.id} leads with fencing token ${token}`);
    this.emit('acquired', token);
  }

  private async renew(): Promise<void> {
    const sent = this.clock.now();
    let ok: boolean;
    try {
      ok = Number(await this.withTimeout(this.redis.eval(
        RENEW, 2, leaderKey(this.prefix), tokenKey(this.prefix), this.id, String(this.ttlMs), String(this.currentToken),
      ))) === 1;
    } catch (e) {
      // Not fatal yet: the expiry timer steps down if no renewal succeeds in time.
      this.log(`lease: renewal failed: ${msg(e)}`);
      return;
    }
    if (this.state !== 'LEADER') return;
    if (!ok) {
      this.stepDown('the lease key is no longer ours (it expired and was taken, or was deleted)');
      return;
    }
    if (this.clock.now() >= this.validUntil) {
      // Too late: we already stepped down locally (or should have). Take it anew, with a new token.
      this.stepDown('the renewal came back after the lease had run out locally');
      return;
    }
    this.extend(sent);
  }

  private extend(sent: number): void {
    this.validUntil = sent + this.ttlMs - this.safetyMs;
    this.clock.clearTimeout(this.expiryTimer);
    this.expiryTimer = this.clock.setTimeout(() => this.checkExpiry(), Math.max(0, this.validUntil - this.clock.now()));
  }

  private checkExpiry(): void {
    if (this.state !== 'LEADER') return;
    if (this.clock.now() >= this.validUntil) {
      this.stepDown(`no renewal succeeded within ${this.ttlMs - this.safetyMs} ms`);
    } else {
      this.expiryTimer = this.clock.setTimeout(() => this.checkExpiry(), this.validUntil - this.clock.now());
    }
  }

  private stepDown(reason: string): void {
    if (this.state !== 'LEADER') return;
    this.state = 'FOLLOWER';
    this.currentToken = undefined;
    this.validUntil = 0;
    this.clock.clearTimeout(this.expiryTimer);
    this.log(`lease: ${this.id} stepped down: ${reason}`);
    this.emit('lost', reason);
  }

  /** A command that does not answer within the renewal interval counts as failed (its late answer is ignored). */
  private withTimeout<T>(p: Promise<T>): Promise<T> {
    let timer: TimerHandle | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = this.clock.setTimeout(() => reject(new Error(`no answer from Redis within ${this.intervalMs} ms`)), this.intervalMs);
    });
    return Promise.race([p, timeout]).finally(() => this.clock.clearTimeout(timer));
  }
}

function msg(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
