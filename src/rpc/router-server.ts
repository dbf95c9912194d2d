/**
 * The frontend end of RPC v3: a ZeroMQ ROUTER that answers heartbeats, registers containers,
 * keeps the replica table, sends prediction batches and evicts silent replicas.
 * Emits 'ready' (replica) when a container registers and 'lost' (replica, reason, silent) when it
 * goes; `silent` is true when the RPC gave up on it (heartbeats, a stuck batch), false when it was
 * told to let it go (evictByReplicaId).
 */
import { EventEmitter } from 'node:events';
import { Router } from 'zeromq';
import { ServingError } from '../errors.ts';
import {
  EXT_STATUS, HeartbeatType, decodeContainerMessage, encodeHeartbeatReply, encodePredictRequest,
} from './codec.ts';
import type { Replica, RpcOutput } from './replica.ts';
import { SocketWriter } from './socket-writer.ts';

export interface RpcServerOptions {
  host: string;
  port: number;
  /** A replica silent this long (ms) with nothing in flight is evicted. */
  heartbeatTimeoutMs: number;
  /**
   * A replica silent past the heartbeat timeout while a batch has been in flight this long (ms)
   * is evicted as stuck. Longer than the heartbeat timeout because single-threaded containers
   * (Python) cannot heartbeat during a long predict.
   */
  predictTimeoutMs: number;
  log?: (msg: string) => void;
}

export class RpcServer extends EventEmitter {
  private readonly socket = new Router({ mandatory: false });
  private readonly writer: SocketWriter;
  private readonly replicas = new Map<string, Replica>();
  private nextMsgId = 1;
  private sweepTimer: NodeJS.Timeout | undefined;
  private closed = false;
  boundPort = 0;

  constructor(private readonly opts: RpcServerOptions) {
    super();
    this.writer = new SocketWriter(this.socket, (e) => this.log(`rpc send failed: ${String(e)}`));
  }

  async start(): Promise<void> {
    await this.socket.bind(`tcp://${this.opts.host}:${this.opts.port}`);
    const ep = this.socket.lastEndpoint ?? '';
    this.boundPort = Number(ep.slice(ep.lastIndexOf(':') + 1));
    void this.receiveLoop();
    const sweepEvery = Math.max(100, Math.min(1000, this.opts.heartbeatTimeoutMs / 4));
    this.sweepTimer = setInterval(() => this.sweep(), sweepEvery);
    this.sweepTimer.unref();
  }

  readyReplicas(): Replica[] {
    return [...this.replicas.values()].filter((r) => r.state === 'READY');
  }

  /** Sends one batch; resolves with one output per input, rejects WORKER_FAILED if the replica goes away. */
  predict(replica: Replica, inputTypeCode: number, inputs: Buffer[]): Promise<RpcOutput[]> {
    if (replica.state !== 'READY') return Promise.reject(new ServingError('WORKER_FAILED', 'replica is not ready'));
    const msgId = this.nextMsgId;
    this.nextMsgId = (this.nextMsgId + 1) >>> 0 || 1;
    return new Promise((resolve, reject) => {
      replica.inflight.set(msgId, { resolve, reject, count: inputs.length, sentAt: Date.now() });
      this.writer.send([replica.identity, ...encodePredictRequest(msgId, inputTypeCode, inputs)]);
    });
  }

  /** Called by the resource manager when it knows a replica's process died: fail over at once. */
  evictByReplicaId(replicaId: string, reason: string): void {
    for (const r of this.replicas.values()) if (r.replicaId === replicaId) this.evict(r, reason, false);
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    for (const r of [...this.replicas.values()]) this.evict(r, 'frontend shutting down', false);
    this.writer.close();
    this.socket.close();
  }

  private async receiveLoop(): Promise<void> {
    try {
      for await (const frames of this.socket) {
        const [identity, ...rest] = frames as Buffer[];
        if (identity) this.onMessage(identity, rest);
      }
    } catch (e) {
      if (!this.closed) this.log(`rpc receive loop ended: ${String(e)}`);
    }
  }

  private onMessage(identity: Buffer, frames: Buffer[]): void {
    const key = identity.toString('hex');
    let msg;
    try {
      msg = decodeContainerMessage(frames);
    } catch (e) {
      this.log(`rpc: dropping malformed message from ${key}: ${String(e)}`);
      return;
    }
    const now = Date.now();
    let replica = this.replicas.get(key);
    if (replica) replica.lastSeen = now;

    switch (msg.kind) {
      case 'heartbeat':
        if (!replica || replica.state !== 'READY') {
          if (!replica) {
            replica = {
              key, identity: Buffer.from(identity), state: 'CONNECTED', modelName: '', modelVersion: '', inputTypeCode: -1,
              replicaId: undefined, extensions: new Set(), connectedAt: now, lastSeen: now, inflight: new Map(),
            };
            this.replicas.set(key, replica);
          }
          this.writer.send([identity, ...encodeHeartbeatReply(HeartbeatType.RequestMetadata)]);
        } else {
          this.writer.send([identity, ...encodeHeartbeatReply(HeartbeatType.KeepAlive)]);
        }
        return;
      case 'register': {
        if (!replica) {
          replica = {
            key, identity: Buffer.from(identity), state: 'CONNECTED', modelName: '', modelVersion: '', inputTypeCode: -1,
            replicaId: undefined, extensions: new Set(), connectedAt: now, lastSeen: now, inflight: new Map(),
          };
          this.replicas.set(key, replica);
        }
        if (replica.state === 'READY') return; // duplicate registration
        Object.assign(replica, {
          state: 'READY', modelName: msg.modelName, modelVersion: msg.modelVersion, inputTypeCode: msg.inputTypeCode,
          replicaId: msg.replicaId, extensions: new Set(msg.extensions ?? []),
        });
        if (replica.extensions.has(EXT_STATUS)) this.writer.send([identity, ...encodeHeartbeatReply(HeartbeatType.ExtensionsAccepted)]);
        this.emit('ready', replica);
        return;
      }
      case 'response': {
        const call = replica?.inflight.get(msg.msgId);
        if (!replica || !call) return; // late answer for an evicted replica or a failed-over batch
        replica.inflight.delete(msg.msgId);
        if (msg.outputs.length !== call.count) {
          call.reject(new ServingError('MODEL_ERROR', `model returned ${msg.outputs.length} outputs for ${call.count} inputs`));
          return;
        }
        const status = msg.status;
        call.resolve(msg.outputs.map((value, i) => ({ ok: !status || status[i] === 0, value })));
        return;
      }
    }
  }

  private sweep(): void {
    const now = Date.now();
    const t = this.opts.heartbeatTimeoutMs;
    for (const r of this.replicas.values()) {
      const silent = now - r.lastSeen;
      if (silent <= t) continue;
      let oldest = Infinity;
      for (const c of r.inflight.values()) oldest = Math.min(oldest, c.sentAt);
      if (r.inflight.size === 0) this.evict(r, `no heartbeat for ${silent} ms`, true);
      else if (now - oldest > this.opts.predictTimeoutMs) this.evict(r, `a batch has been in flight for ${now - oldest} ms with no heartbeat for ${silent} ms`, true);
    }
  }

  private evict(r: Replica, reason: string, silent: boolean): void {
    if (r.state === 'EVICTED') return;
    const wasReady = r.state === 'READY';
    r.state = 'EVICTED';
    this.replicas.delete(r.key);
    const err = new ServingError('WORKER_FAILED', `replica of ${r.modelName}:${r.modelVersion} lost: ${reason}`);
    for (const call of r.inflight.values()) call.reject(err);
    r.inflight.clear();
    if (wasReady) {
      this.log(`rpc: evicted replica ${r.replicaId ?? r.key} of ${r.modelName}:${r.modelVersion}: ${reason}`);
      this.emit('lost', r, reason, silent);
    }
  }

  private log(msg: string): void {
    this.opts.log?.(msg);
  }
}
