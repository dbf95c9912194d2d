/**
 * What one frontend of a cluster (several `clipper start` on one Redis store) shares with the
 * others, apart from the registry itself: the RPC keys (so a replica the leader starts is accepted
 * by every frontend), the membership list (pushed to replicas, which connect to every frontend),
 * the resource manager's lease, and each frontend's load (the leader's autoscaler decides on the
 * sum, since every frontend queues its own share of the queries).
 */
import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { hostname } from 'node:os';
import { Redis } from 'ioredis';
import type { VersionLoadSample } from '../query/query-processor.ts';
import type { RpcAddress } from '../rpc/codec.ts';
import { loadClusterRpcKeys, type RpcKeys } from '../rpc/replica-auth.ts';
import { LeaderLease, leaderKey } from './lease.ts';
import { Members, type Member } from './members.ts';

export interface ClusterOptions {
  url: string;
  prefix: string;
  leaseTtlMs: number;
  log: (msg: string) => void;
}

/** A frontend's load as it published it: `seq` lets the leader count each interval once. */
interface PublishedLoad { seq: number; samples: VersionLoadSample[] }

export class ClusterFrontend extends EventEmitter {
  readonly id = `${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`;
  readonly lease: LeaderLease;
  private members: Members | undefined;
  private self: Member | undefined;
  private seq = 0;
  private readonly consumed = new Map<string, number>();
  private remote: VersionLoadSample[] = [];
  private leaderId: string | undefined;
  private readonly timer: NodeJS.Timeout;

  private constructor(private readonly redis: Redis, private readonly opts: ClusterOptions, readonly keys: RpcKeys) {
    super();
    this.lease = new LeaderLease(redis, { id: this.id, prefix: opts.prefix, ttlMs: opts.leaseTtlMs, log: opts.log });
    this.timer = setInterval(() => void this.readLeader(), 1000);
    this.timer.unref();
  }

  static async join(opts: ClusterOptions): Promise<ClusterFrontend> {
    const redis = new Redis(opts.url, { maxRetriesPerRequest: 1, connectTimeout: 2000, lazyConnect: true });
    redis.on('error', () => {}); // reported by the calls that fail; ioredis reconnects by itself
    try {
      await redis.connect();
      const keys = await loadClusterRpcKeys(redis, opts.prefix);
      return new ClusterFrontend(redis, opts, keys);
    } catch (e) {
      redis.disconnect();
      throw e;
    }
  }

  /** Announces this frontend (its ports are bound by now) and starts contending for the lease. */
  async start(self: Omit<Member, 'id' | 'startedAt'>, onFrontends: (list: RpcAddress[], self: RpcAddress) => void): Promise<void> {
    this.self = { ...self, id: this.id, startedAt: Date.now() };
    this.members = new Members(this.redis, { self: this.self, prefix: this.opts.prefix, log: this.opts.log });
    this.members.on('changed', (list: Member[]) => onFrontends(list.map((m) => m.rpc), self.rpc));
    await this.members.start();
    onFrontends(this.members.list().map((m) => m.rpc), self.rpc);
    this.lease.start();
    await this.readLeader();
  }

  /** For status: who this frontend is, whether it leads, and every frontend. */
  view(): Record<string, unknown> {
    return {
      frontend: this.id,
      leader: this.lease.isLeader(),
      leader_frontend: this.lease.isLeader() ? this.id : this.leaderId ?? null,
      leader_admin: this.leaderAdmin() ?? null,
      frontends: (this.members?.list() ?? []).map((m) => ({ id: m.id, rpc: `${m.rpc.host}:${m.rpc.port}`, query_url: m.queryUrl, admin_url: m.adminUrl })),
    };
  }

  /** The admin API of the frontend that leads the resource manager, when known. */
  leaderAdmin(): string | undefined {
    if (this.lease.isLeader()) return this.self?.adminUrl;
    return this.members?.list().find((m) => m.id === this.leaderId)?.adminUrl;
  }

  /**
   * Publishes this frontend's load of the last interval and returns what the leader decides on:
   * its own load plus every other frontend's intervals it has not counted yet.
   */
  shareLoad(own: VersionLoadSample[]): VersionLoadSample[] {
    const seq = ++this.seq;
    const mine: PublishedLoad = { seq, samples: own };
    this.redis.set(this.loadKey(this.id), JSON.stringify(mine), 'PX', 5000).catch(() => {});
    if (!this.lease.isLeader()) return own;
    const others = this.remote;
    this.remote = [];
    void this.fetchLoads();
    return [...own, ...others];
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    await this.lease.close();
    await this.members?.close();
    await this.redis.del(this.loadKey(this.id)).catch(() => {});
    this.redis.disconnect();
  }

  private async fetchLoads(): Promise<void> {
    const others = (this.members?.list() ?? []).filter((m) => m.id !== this.id);
    if (!others.length) return;
    const texts = await this.redis.mget(...others.map((m) => this.loadKey(m.id))).catch(() => [] as Array<string | null>);
    const fresh: VersionLoadSample[] = [];
    texts.forEach((text, i) => {
      if (!text) return;
      const id = others[i]!.id;
      try {
        const p = JSON.parse(text) as PublishedLoad;
        if (p.seq === this.consumed.get(id)) return;
        this.consumed.set(id, p.seq);
        fresh.push(...p.samples);
      } catch {
        // a half-written or foreign value: skip this interval
      }
    });
    this.remote.push(...fresh);
  }

  /** Emits 'other-leader' (id) when another frontend is seen holding the lease. */
  private async readLeader(): Promise<void> {
    const id = (await this.redis.get(leaderKey(this.opts.prefix)).catch(() => null)) ?? undefined;
    this.leaderId = id;
    if (id !== undefined && id !== this.id) this.emit('other-leader', id);
  }

  private loadKey(id: string): string {
    return `${this.opts.prefix}load:${id}`;
  }
}
