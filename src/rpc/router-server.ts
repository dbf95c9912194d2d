/**
 * The frontend end of RPC v3: a ZeroMQ ROUTER that answers heartbeats, registers containers,
 * keeps the replica table, sends prediction batches and evicts silent replicas.
 * Emits 'ready' (replica) when a container registers and 'lost' (replica, reason, silent) when it
 * goes; `silent` is true when the RPC gave up on it (heartbeats, a stuck batch), false when it was
 * told to let it go (evictByReplicaId). Emits 'refused' (claim, reason) for a registration it
 * turns down (registration-policy.ts): nothing is made for it, and no 'ready' follows.
 *
 * Security (docs/rpc.md): CurveZMQ when `security.curve` is given; the per-replica secret and the
 * plain-v3 switch via `security.replicaKey` and `security.allowPlain`; ZeroMQ disconnects a peer
 * that sends a frame larger than `security.maxMessageBytes` before it is read into memory.
 *
 * Extensions: a registration's declared extensions that KNOWN_EXTENSIONS lists are accepted; when
 * they include one the container may only use once told (`status`, `tensors`), the frontend answers
 * with heartbeat type 2 and the accepted list. Type 4 (`tensors`) responses become RpcOutputs with
 * `tensor` and `computeMs`.
 *
 * Cluster: `setFrontends(list, self)` records the frontends' RPC addresses and sends them to every
 * replica that declared the `frontends` extension, now and when each such replica registers.
 */
import { EventEmitter } from 'node:events';
import { Router } from 'zeromq';
import { ServingError } from '../errors.ts';
import {
  EXT_FRONTENDS, EXT_STATUS, EXT_TENSORS, HeartbeatType, KNOWN_EXTENSIONS, RpcDecodeError, decodeContainerMessage, encodeExtensionsAccepted,
  encodeFrontendsMessage, encodeHeartbeatReply, encodePredictRequest, formatAddress, type RpcAddress,
} from './codec.ts';
import { judgeRegistration, type RegistrationRules } from './registration-policy.ts';
import type { CurveKeys, RpcEndpoint } from './replica-auth.ts';
import type { Replica, RpcOutput } from './replica.ts';
import { SocketWriter } from './socket-writer.ts';

export interface RpcSecurity {
  /** CurveZMQ server keys: the port then speaks only CURVE (encrypted, clients need the public key). */
  curve?: CurveKeys;
  /** Accept registrations that carry no per-replica secret (plain v3, Clipper's own containers). Default true. */
  allowPlain?: boolean;
  /** Key the per-replica secrets are derived from (replica-auth.ts); without it only plain registrations can succeed. */
  replicaKey?: Buffer;
  /** Largest frame accepted from a peer (ZeroMQ's maxMessageSize); a peer sending more is disconnected. Default: no limit. */
  maxMessageBytes?: number;
}

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
  /** How long a registered plain v3 replica (no extensions declared) may be silent; default PLAIN_V3_SILENCE_MS. */
  plainSilenceMs?: number;
  security?: RpcSecurity;
  /**
   * The registered version's input type code, or undefined when the registry does not know the
   * model and version: such registrations are refused. Without it every name is accepted.
   */
  lookupVersion?: RegistrationRules['lookupVersion'];
  log?: (msg: string) => void;
}

/**
 * Clipper's own containers (rpc.py) send a heartbeat only after 5 s without a message from the
 * frontend, so an idle one is heard from every ~5 s. A registered replica that declared no
 * extensions (plain v3) is given three of those intervals before it counts as silent.
 */
export const PLAIN_V3_SILENCE_MS = 15_000;

export class RpcServer extends EventEmitter {
  private readonly socket: Router;
  private readonly writer: SocketWriter;
  private readonly rules: RegistrationRules;
  private readonly replicas = new Map<string, Replica>();
  private nextMsgId = 1;
  /** The encoded frontends message, once setFrontends was called (a single frontend never sends one). */
  private frontendsMessage: Buffer[] | undefined;
  private frontendsKey = '';
  private sweepTimer: NodeJS.Timeout | undefined;
  private closed = false;
  boundPort = 0;

  constructor(private readonly opts: RpcServerOptions) {
    super();
    const sec = opts.security ?? {};
    this.socket = new Router({
      mandatory: false,
      maxMessageSize: sec.maxMessageBytes ?? -1,
      ...(sec.curve ? { curveServer: true, curveSecretKey: sec.curve.secretKey, curvePublicKey: sec.curve.publicKey } : {}),
    });
    this.rules = { allowPlain: sec.allowPlain ?? true, replicaKey: sec.replicaKey, lookupVersion: opts.lookupVersion };
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

  /** Where replicas connect and the credentials the resource manager hands them (see launch.ts). */
  endpoint(): RpcEndpoint {
    const sec = this.opts.security;
    return {
      host: this.opts.host, port: this.boundPort,
      auth: sec?.replicaKey ? { replicaKey: sec.replicaKey, serverKey: sec.curve?.publicKey } : undefined,
    };
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

  /**
   * The cluster's frontends (this one included, as `self`): sent to every registered replica that
   * declared EXT_FRONTENDS, so it connects to the ones it lacks and drops the ones not listed.
   * Calling it again with the same list sends nothing.
   */
  setFrontends(frontends: RpcAddress[], self?: RpcAddress): void {
    const list = [...new Set(frontends.map(formatAddress))].sort();
    const me = self && formatAddress(self);
    const key = JSON.stringify([list, me]);
    if (key === this.frontendsKey) return;
    this.frontendsKey = key;
    this.frontendsMessage = encodeFrontendsMessage(list, me);
    for (const r of this.replicas.values()) {
      if (r.state === 'READY' && r.extensions.has(EXT_FRONTENDS)) this.writer.send([r.identity, ...this.frontendsMessage]);
    }
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
    let replica = this.replicas.get(key);
    if (replica?.state === 'REFUSED') return; // not answered: it times out, reconnects and is judged again
    let msg;
    try {
      msg = decodeContainerMessage(frames);
    } catch (e) {
      this.log(`rpc: dropping malformed message from ${key}: ${String(e).slice(0, 300)}`);
      // A malformed answer to a batch in flight fails that batch now rather than at the predict timeout.
      if (replica && e instanceof RpcDecodeError && e.msgId !== undefined) {
        const call = replica.inflight.get(e.msgId);
        if (call) {
          replica.inflight.delete(e.msgId);
          replica.lastSeen = Date.now();
          call.reject(new ServingError('MODEL_ERROR', `the model container sent a malformed answer: ${e.message.slice(0, 300)}`));
        }
      }
      return;
    }
    const now = Date.now();
    if (replica) replica.lastSeen = now;

    switch (msg.kind) {
      case 'heartbeat':
        if (!replica || replica.state !== 'READY') {
          replica ??= this.connected(key, identity, now);
          this.writer.send([identity, ...encodeHeartbeatReply(HeartbeatType.RequestMetadata)]);
        } else {
          this.writer.send([identity, ...encodeHeartbeatReply(HeartbeatType.KeepAlive)]);
        }
        return;
      case 'leaving':
        // Out of rotation at once, its batches retried elsewhere; not silent, so nobody kills it.
        if (replica) this.evict(replica, 'the replica is shutting down', false);
        return;
      case 'register': {
        replica ??= this.connected(key, identity, now);
        if (replica.state === 'READY') return; // duplicate registration
        const verdict = judgeRegistration(msg, this.rules);
        if (!verdict.accept) {
          replica.state = 'REFUSED';
          const claim = `${clip(msg.modelName)}:${clip(msg.modelVersion)}${msg.replicaId === undefined ? '' : ` (replica ${clip(msg.replicaId)})`}`;
          this.log(`rpc: refused the registration of ${claim} from connection ${key}: ${verdict.reason}`);
          this.emit('refused', msg, verdict.reason);
          return;
        }
        Object.assign(replica, {
          state: 'READY', modelName: msg.modelName, modelVersion: msg.modelVersion, inputTypeCode: msg.inputTypeCode,
          replicaId: verdict.replicaId, authenticated: verdict.authenticated, extensions: new Set(msg.extensions ?? []),
        });
        if (!verdict.authenticated) this.log(`rpc: plain v3 container registered as ${clip(msg.modelName)}:${clip(msg.modelVersion)} (no replica secret)`);
        const accepted = KNOWN_EXTENSIONS.filter((e) => replica!.extensions.has(e));
        if (accepted.includes(EXT_STATUS) || accepted.includes(EXT_TENSORS)) this.writer.send([identity, ...encodeExtensionsAccepted(accepted)]);
        if (replica.extensions.has(EXT_FRONTENDS) && this.frontendsMessage) this.writer.send([identity, ...this.frontendsMessage]);
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
        const { status, tensors } = msg;
        const computeMs = msg.computeUs === undefined ? undefined : msg.computeUs / 1000;
        call.resolve(msg.outputs.map((value, i): RpcOutput => {
          const out: RpcOutput = { ok: !status || status[i] === 0, value };
          const tensor = tensors?.[i];
          if (tensor) out.tensor = tensor;
          if (computeMs !== undefined) out.computeMs = computeMs;
          return out;
        }));
        return;
      }
    }
  }

  private connected(key: string, identity: Buffer, now: number): Replica {
    const replica: Replica = {
      key, identity: Buffer.from(identity), state: 'CONNECTED', modelName: '', modelVersion: '', inputTypeCode: -1,
      replicaId: undefined, authenticated: false, extensions: new Set(), connectedAt: now, lastSeen: now, inflight: new Map(),
    };
    this.replicas.set(key, replica);
    return replica;
  }

  private sweep(): void {
    const now = Date.now();
    for (const r of this.replicas.values()) {
      const t = r.state === 'READY' && r.extensions.size === 0 ? Math.max(this.opts.heartbeatTimeoutMs, this.opts.plainSilenceMs ?? PLAIN_V3_SILENCE_MS) : this.opts.heartbeatTimeoutMs;
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
      // A replica stopped or leaving is not news (the manager logs its exit); a silent one is.
      if (silent) this.log(`rpc: evicted replica ${r.replicaId ?? r.key} of ${r.modelName}:${r.modelVersion}: ${reason}`);
      this.emit('lost', r, reason, silent);
    }
  }

  private log(msg: string): void {
    this.opts.log?.(msg);
  }
}

/** Names in log lines come from the network: keep them short. */
function clip(s: string): string {
  return JSON.stringify(s.length > 80 ? `${s.slice(0, 80)}…` : s);
}
