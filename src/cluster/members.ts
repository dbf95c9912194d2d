/**
 * Which frontends make up the cluster. Each frontend announces itself in Redis with a TTL and
 * renews it every ttl/3; everyone polls the live set every `pollMs` and gets 'changed' (members)
 * when it differs from the last one seen. A frontend that dies without leaving (kill -9, a
 * partition) drops out when its key expires; close() removes it at once.
 *
 * Keys: `<prefix>frontend:<id>` (the member's JSON, PX ttl) and `<prefix>frontends` (the set of
 * ids, so listing needs no SCAN; ids whose key expired are removed from it while listing).
 * While Redis cannot be reached the last list is kept: replicas should not leave every frontend
 * because the registry blinked.
 */
import { EventEmitter } from 'node:events';
import type { Redis } from 'ioredis';
import { systemClock, type Clock, type TimerHandle } from '../clock.ts';
import type { RpcAddress } from '../rpc/codec.ts';
import { DEFAULT_PREFIX } from './lease.ts';

export interface Member {
  id: string;
  /** The RPC address replicas can reach this frontend at (its advertised address, not 0.0.0.0). */
  rpc: RpcAddress;
  queryUrl: string;
  adminUrl: string;
  /** Wall-clock ms since the epoch. */
  startedAt: number;
}

export interface MembersOptions {
  self: Member;
  prefix?: string;
  /** How long an announcement lives without renewal. Default 5000 ms. */
  ttlMs?: number;
  /** How often the live set is read. Default 1000 ms. */
  pollMs?: number;
  clock?: Clock;
  log?: (msg: string) => void;
}

export const memberKey = (prefix: string, id: string): string => `${prefix}frontend:${id}`;
export const membersSetKey = (prefix: string): string => `${prefix}frontends`;

/** KEYS[1] the id set; ARGV[1] the member key prefix. Returns the live members' JSON, forgetting expired ids. */
const LIST = `
local out = {}
for _, id in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local v = redis.call('GET', ARGV[1] .. id)
  if v then table.insert(out, v) else redis.call('SREM', KEYS[1], id) end
end
return out`;

export class Members extends EventEmitter {
  private readonly prefix: string;
  private readonly ttlMs: number;
  private readonly pollMs: number;
  private readonly clock: Clock;
  private readonly log: (msg: string) => void;
  private members: Member[] = [];
  private lastKey = '';
  private announceTimer: TimerHandle | undefined;
  private pollTimer: TimerHandle | undefined;
  private closed = false;
  private inFlight = new Set<Promise<unknown>>();

  constructor(private readonly redis: Redis, private readonly opts: MembersOptions) {
    super();
    this.prefix = opts.prefix ?? DEFAULT_PREFIX;
    this.ttlMs = opts.ttlMs ?? 5000;
    this.pollMs = opts.pollMs ?? 1000;
    this.clock = opts.clock ?? systemClock;
    this.log = opts.log ?? (() => {});
  }

  get self(): Member {
    return this.opts.self;
  }

  /** Announces this frontend and reads the members once (errors are logged and retried), then keeps both going. */
  async start(): Promise<void> {
    await this.track(this.announce());
    await this.track(this.refresh());
    this.scheduleAnnounce();
    this.schedulePoll();
  }

  /** The members last read, sorted by id. */
  list(): Member[] {
    return this.members;
  }

  /** Reads the live members now; emits 'changed' if they differ from the last read. Keeps the old list when Redis fails. */
  async refresh(): Promise<Member[]> {
    let raw: unknown;
    try {
      raw = await this.withTimeout(this.redis.eval(LIST, 1, membersSetKey(this.prefix), memberKey(this.prefix, '')));
    } catch (e) {
      this.log(`members: cannot read the frontends from Redis: ${msg(e)}`);
      return this.members;
    }
    if (this.closed) return this.members;
    const members = (Array.isArray(raw) ? raw : []).map(parseMember).filter((m): m is Member => m !== undefined)
      .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    const key = JSON.stringify(members);
    if (key !== this.lastKey) {
      this.lastKey = key;
      this.members = members;
      this.emit('changed', members);
    }
    return members;
  }

  /** Stops announcing and removes this frontend, so the others see it leave at their next poll. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.clock.clearTimeout(this.announceTimer);
    this.clock.clearTimeout(this.pollTimer);
    await Promise.allSettled([...this.inFlight]);
    try {
      await this.withTimeout(this.redis.multi().del(memberKey(this.prefix, this.opts.self.id)).srem(membersSetKey(this.prefix), this.opts.self.id).exec());
    } catch (e) {
      this.log(`members: could not remove ${this.opts.self.id} (it expires by itself): ${msg(e)}`);
    }
  }

  private async announce(): Promise<void> {
    const { self } = this.opts;
    try {
      await this.withTimeout(this.redis.multi()
        .set(memberKey(this.prefix, self.id), JSON.stringify(self), 'PX', this.ttlMs)
        .sadd(membersSetKey(this.prefix), self.id)
        .exec());
    } catch (e) {
      this.log(`members: cannot announce ${self.id}: ${msg(e)}`);
    }
  }

  private scheduleAnnounce(): void {
    if (this.closed) return;
    this.announceTimer = this.clock.setTimeout(() => {
      void this.track(this.announce()).finally(() => this.scheduleAnnounce());
    }, Math.max(10, Math.floor(this.ttlMs / 3)));
  }

  private schedulePoll(): void {
    if (this.closed) return;
    this.pollTimer = this.clock.setTimeout(() => {
      void this.track(this.refresh()).finally(() => this.schedulePoll());
    }, this.pollMs);
  }

  /** A command unanswered within ttl/3 counts as failed, so start() and close() never hang on a lost Redis. */
  private withTimeout<T>(p: Promise<T>): Promise<T> {
    let timer: TimerHandle | undefined;
    const ms = Math.max(10, Math.floor(this.ttlMs / 3));
    const timeout = new Promise<never>((_, reject) => {
      timer = this.clock.setTimeout(() => reject(new Error(`no answer from Redis within ${ms} ms`)), ms);
    });
    return Promise.race([p, timeout]).finally(() => this.clock.clearTimeout(timer));
  }

  private track<T>(p: Promise<T>): Promise<T> {
    this.inFlight.add(p);
    return p.finally(() => this.inFlight.delete(p));
  }
}

function parseMember(v: unknown): Member | undefined {
  if (typeof v !== 'string') return undefined;
  try {
    const m = JSON.parse(v) as Partial<Member> | null;
    if (!m || typeof m.id !== 'string' || typeof m.rpc?.host !== 'string' || typeof m.rpc.port !== 'number') return undefined;
    return { id: m.id, rpc: { host: m.rpc.host, port: m.rpc.port }, queryUrl: String(m.queryUrl ?? ''), adminUrl: String(m.adminUrl ?? ''), startedAt: Number(m.startedAt ?? 0) };
  } catch {
    return undefined;
  }
}

function msg(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
