/**
 * Container SDK: `serve(predict)` turns a function into a model container speaking RPC v3.
 * It connects a DEALER to the frontend, heartbeats, registers, and answers prediction batches.
 * A predict that throws or returns a wrong answer fails that batch's queries with a clear message
 * (logged to stderr, which the resource manager keeps); the container keeps serving.
 *
 * Cluster (docs/rpc.md, "Several frontends"): one independent connection per frontend — the
 * primary (CLIPPER_IP:CLIPPER_PORT), those in CLIPPER_FRONTENDS, and those a frontend lists
 * through the `frontends` extension. Connections other than the primary are dropped when the
 * latest list no longer names them. Batches from all connections run one at a time, in arrival
 * order, as with a single frontend. With CLIPPER_READY_FILE the file exists while at least one
 * frontend has accepted the registration and has been heard from within the frontend timeout.
 */
import { rmSync, utimesSync, writeFileSync } from 'node:fs';
import { Dealer, curveKeyPair } from 'zeromq';
import { errorMessage } from '../errors.ts';
import { decodeInput, inputTypeFromCode, parseInputType, INPUT_TYPE_CODE, type InputType } from '../registry/input-types.ts';
import {
  EXT_FRONTENDS, EXT_STATUS, EXT_TENSORS, HeartbeatType, decodeFrontendMessage, encodeHeartbeat, encodeLeaving, encodeRegistration,
  encodeResponse, encodeTensorResponse, formatAddress, parseAddress, type ResponseOutput, type RpcAddress,
} from '../rpc/codec.ts';
import { SocketWriter } from '../rpc/socket-writer.ts';
import { SENDS_TENSORS, TypedTensor, asTensor, isTypedArray } from './typed-tensor.ts';

export { TypedTensor } from './typed-tensor.ts';

/**
 * One output per input: a string (sent as is), a JSON-serialisable value (sent as its JSON text), an
 * InputError, or a tensor — a TypedTensor or a bare typed array such as Float32Array — which travels
 * as raw bytes to a frontend that accepted the `tensors` extension, and as JSON arrays to one that did not.
 */
export type PredictFn = (inputs: unknown[]) => unknown[] | Promise<unknown[]>;

/** The extensions this container declares (`tensors` only where typed arrays are little-endian). */
export const DECLARED_EXTENSIONS: readonly string[] = [EXT_STATUS, EXT_FRONTENDS, ...(SENDS_TENSORS ? [EXT_TENSORS] : [])];

/** What a frontend accepted of DECLARED_EXTENSIONS, as far as answering batches goes. */
export interface Negotiated {
  status: boolean;
  tensors: boolean;
}

const NOTHING_NEGOTIATED: Negotiated = { status: false, tensors: false };

/** Return one of these in place of an output to fail just that input (e.g. a Spark row missing a column). */
export class InputError {
  constructor(readonly message: string) {}
}

export interface ServeOptions {
  modelName: string;
  modelVersion: string;
  inputType: InputType;
  host: string;
  port: number;
  replicaId: string | undefined;
  /** CLIPPER_REPLICA_SECRET: proves to the frontend that its resource manager started this replica. */
  secret: string | undefined;
  /** CLIPPER_RPC_SERVER_KEY: the frontend's CurveZMQ public key (z85); when set, the connection uses CURVE. */
  serverKey: string | undefined;
  heartbeatIntervalMs: number;
  /** Reconnect when the frontend has been silent this long. */
  frontendTimeoutMs: number;
  /** CLIPPER_FRONTENDS: other frontends of the cluster to connect to from the start ("host:port,..."). */
  frontends?: RpcAddress[];
  /** CLIPPER_READY_FILE: kept while a frontend serves this replica (a Kubernetes readiness probe checks it). */
  readyFile?: string | undefined;
}

export function optionsFromEnv(env: NodeJS.ProcessEnv = process.env): ServeOptions {
  const need = (k: string): string => {
    const v = env[k];
    if (!v) throw new Error(`${k} is not set`);
    return v;
  };
  return {
    modelName: need('CLIPPER_MODEL_NAME'),
    modelVersion: need('CLIPPER_MODEL_VERSION'),
    inputType: inputTypeFromEnv(need('CLIPPER_INPUT_TYPE')),
    host: env.CLIPPER_IP ?? '127.0.0.1',
    port: Number(env.CLIPPER_PORT ?? 7000),
    replicaId: env.CLIPPER_REPLICA_ID,
    secret: env.CLIPPER_REPLICA_SECRET || undefined,
    serverKey: env.CLIPPER_RPC_SERVER_KEY || undefined,
    heartbeatIntervalMs: Number(env.CLIPPER_HEARTBEAT_MS ?? 1000),
    frontendTimeoutMs: Number(env.CLIPPER_FRONTEND_TIMEOUT_MS ?? 5000),
    frontends: frontendsFromEnv(env.CLIPPER_FRONTENDS ?? ''),
    readyFile: env.CLIPPER_READY_FILE || undefined,
  };
}

/** `host:port,host:port` (spaces and empty entries ignored); a malformed entry is an error. */
export function frontendsFromEnv(text: string): RpcAddress[] {
  return text.split(',').map((t) => t.trim()).filter((t) => t !== '').map((t) => {
    const a = parseAddress(t);
    if (!a) throw new Error(`CLIPPER_FRONTENDS: ${JSON.stringify(t)} is not host:port`);
    return a;
  });
}

/** The type's name, as Clipper's managers set it (`doubles`), or its code (`3`) as older managers of ours did. */
export function inputTypeFromEnv(text: string): InputType {
  const t = text.trim();
  if (/^[0-9]$/.test(t)) {
    const byCode = inputTypeFromCode(Number(t));
    if (byCode) return byCode;
  }
  return parseInputType(t);
}

/** Typed arrays anywhere in an output are written as JSON arrays (not as `{"0": ...}` objects). */
function typedArraysAsLists(_key: string, v: unknown): unknown {
  return isTypedArray(v) ? new TypedTensor(v).toJSON() : v;
}

/** Outputs are strings; other JSON-serialisable values (tensors included) are sent as their JSON text. */
export function outputToBuffer(value: unknown): Buffer {
  if (typeof value === 'string') return Buffer.from(value, 'utf8');
  if (value === undefined || typeof value === 'function' || typeof value === 'symbol' || typeof value === 'bigint') {
    throw new Error(`predict returned ${value === undefined ? 'undefined' : `a ${typeof value}`}, which is neither a string nor JSON-serialisable`);
  }
  const text = JSON.stringify(value, typedArraysAsLists);
  if (text === undefined) throw new Error('predict returned a value that is not JSON-serialisable');
  return Buffer.from(text, 'utf8');
}

export async function serve(predict: PredictFn, opts: ServeOptions = optionsFromEnv()): Promise<void> {
  const container = new ContainerClient(predict, opts);
  const stop = () => { container.stop(); };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
  watchParent(() => container.stop());
  await container.run();
  process.exit(0);
}

/** A replica started by the resource manager exits when the frontend that started it is gone. */
function watchParent(stop: () => void): void {
  const parent = Number(process.env.CLIPPER_PARENT_PID);
  if (!parent) return;
  setInterval(() => {
    if (process.ppid !== parent) stop();
  }, 1000).unref();
}

/** The replica: its connections to frontends, the one queue its batches run in, the readiness file. */
export class ContainerClient {
  private stopped = false;
  private readonly connections = new Map<string, FrontendConnection>();
  private readonly running = new Set<Promise<void>>();
  private wake: (() => void) | undefined;
  private predictChain: Promise<void> = Promise.resolve();
  private readinessTimer: NodeJS.Timeout | undefined;
  /** This container's CurveZMQ keypair, made once (the frontend accepts any client key; the secret authenticates). */
  readonly curveKeys: { publicKey: string; secretKey: string } | undefined;

  constructor(private readonly predict: PredictFn, readonly opts: ServeOptions) {
    this.curveKeys = opts.serverKey ? curveKeyPair() : undefined;
  }

  stop(): void {
    this.stopped = true;
    for (const c of this.connections.values()) c.stop();
    this.wake?.();
  }

  /** Serves until stop(). */
  async run(): Promise<void> {
    this.add({ host: this.opts.host, port: this.opts.port }, true);
    for (const a of this.opts.frontends ?? []) this.add(a, false);
    this.readinessTimer = setInterval(() => this.checkReadiness(), Math.max(100, this.opts.heartbeatIntervalMs));
    if (!this.stopped) await new Promise<void>((r) => { this.wake = r; });
    clearInterval(this.readinessTimer);
    while (this.running.size > 0) await Promise.all([...this.running]);
    this.removeReadyFile();
  }

  /** The frontends connected to now (the configured address of each connection). */
  frontends(): string[] {
    return [...this.connections.keys()];
  }

  /** A frontend sent the cluster's list: connect to the new ones, drop the unlisted ones (never the primary). */
  onFrontends(from: FrontendConnection, listed: string[], self: string | undefined): void {
    if (this.stopped) return;
    if (self !== undefined) from.learnedSelf = canonical(self);
    const wanted = new Set(listed.map(canonical));
    // A frontend reached by two addresses (its advertised one and the one we were given): keep one connection.
    const byFrontend = new Map<string, FrontendConnection[]>();
    for (const c of this.connections.values()) {
      const k = c.learnedSelf ?? c.key;
      byFrontend.set(k, [...(byFrontend.get(k) ?? []), c]);
    }
    for (const group of byFrontend.values()) {
      if (group.length < 2) continue;
      const keep = group.find((c) => c.primary) ?? group.find((c) => c.learnedSelf !== undefined) ?? group[0]!;
      for (const c of group) if (c !== keep) this.drop(c, 'another connection reaches the same frontend');
    }
    const known = new Set<string>();
    for (const c of this.connections.values()) {
      known.add(c.key);
      if (c.learnedSelf) known.add(c.learnedSelf);
    }
    for (const a of wanted) if (!known.has(a)) this.add(parseAddress(a)!, false);
    for (const c of [...this.connections.values()]) {
      if (!c.primary && !wanted.has(c.key) && !(c.learnedSelf && wanted.has(c.learnedSelf))) this.drop(c, 'no longer a frontend of the cluster');
    }
  }

  /** Runs one batch after the batches before it, whichever frontend sent them. */
  enqueue(task: () => Promise<void>): void {
    this.predictChain = this.predictChain.then(task, task);
  }

  /** A frontend that accepted the registration answered: the replica is serving. */
  onServed(): void {
    if (!this.opts.readyFile) return;
    const now = new Date();
    try {
      utimesSync(this.opts.readyFile, now, now);
    } catch {
      try {
        writeFileSync(this.opts.readyFile, `${process.pid}\n`);
      } catch (e) {
        console.error(`clipper container: cannot write the readiness file ${this.opts.readyFile}: ${errorMessage(e)}`);
      }
    }
  }

  checkReadiness(): void {
    if (![...this.connections.values()].some((c) => c.live())) this.removeReadyFile();
  }

  private removeReadyFile(): void {
    if (this.opts.readyFile) rmSync(this.opts.readyFile, { force: true });
  }

  private add(address: RpcAddress, primary: boolean): void {
    const key = formatAddress(address);
    if (this.stopped || this.connections.has(key)) return;
    const c = new FrontendConnection(this, address, key, primary);
    this.connections.set(key, c);
    if (!primary) console.error(`clipper container: connecting to frontend ${key}`);
    const done: Promise<void> = c.run().finally(() => {
      this.running.delete(done);
      if (this.connections.get(key) === c) this.connections.delete(key);
      this.checkReadiness();
    });
    this.running.add(done);
  }

  private drop(c: FrontendConnection, why: string): void {
    if (c.primary) return;
    console.error(`clipper container: leaving frontend ${c.key}: ${why}`);
    this.connections.delete(c.key);
    c.stop();
  }

  /**
   * One batch: decode, predict, encode; a failure becomes error outputs, never an exception.
   * With `tensors` accepted every answer is a type 4 response carrying the time predict took, each
   * output a tensor (typed arrays) or text (anything else); otherwise tensors go as JSON text.
   */
  async answer(msgId: Buffer, type: InputType, raw: Buffer[], ext: Negotiated = NOTHING_NEGOTIATED): Promise<Buffer[]> {
    let computeUs: number | undefined;
    try {
      const inputs = raw.map((b) => decodeInput(type, b));
      const started = performance.now();
      let outputs: unknown[];
      try {
        outputs = await this.predict(inputs);
      } finally {
        computeUs = (performance.now() - started) * 1000;
      }
      if (!Array.isArray(outputs)) throw new Error(`predict must return an array, got ${outputs === null ? 'null' : typeof outputs}`);
      if (outputs.length !== inputs.length) throw new Error(`predict returned ${outputs.length} outputs for ${inputs.length} inputs`);
      if (ext.tensors) return encodeTensorResponse(msgId, outputs.map(responseOutput), computeUs);
      const status = new Uint8Array(outputs.length);
      const buffers = outputs.map((o, i) => {
        if (!(o instanceof InputError)) return outputToBuffer(o);
        status[i] = 1;
        return Buffer.from(ext.status ? o.message : JSON.stringify({ error: o.message }));
      });
      return encodeResponse(msgId, buffers, ext.status ? status : undefined);
    } catch (e) {
      const message = e instanceof Error && e.message.startsWith('predict ') ? e.message : `predict failed: ${errorMessage(e)}`;
      console.error(`clipper container: batch of ${raw.length} failed: ${e instanceof Error && e.stack ? e.stack : message}`);
      if (ext.tensors) return encodeTensorResponse(msgId, raw.map(() => ({ ok: false, data: Buffer.from(message) })), computeUs);
      if (ext.status) return encodeResponse(msgId, raw.map(() => Buffer.from(message)), new Uint8Array(raw.length).fill(1));
      return encodeResponse(msgId, raw.map(() => Buffer.from(JSON.stringify({ error: message }))));
    }
  }
}

/** One output of a `tensors` response: an error, a tensor (its bytes copied, so the model may reuse its array), or text. */
function responseOutput(o: unknown): ResponseOutput {
  if (o instanceof InputError) return { ok: false, data: Buffer.from(o.message) };
  const t = asTensor(o);
  if (t) return { ok: true, data: Buffer.from(t.bytes()), tensor: t.layout() };
  return { ok: true, data: outputToBuffer(o) };
}

function canonical(address: string): string {
  const a = parseAddress(address);
  return a ? formatAddress(a) : address;
}

/**
 * One frontend: sessions (a DEALER each) one after another until stopped. A session lasts until
 * the frontend is silent for the frontend timeout; the next one starts over with a new socket.
 */
class FrontendConnection {
  private stopped = false;
  private closeSession: (() => void) | undefined;
  /** The address the frontend calls itself (`self` in its frontends message). */
  learnedSelf: string | undefined;
  /** This session's registration was sent and answered (a refused one gets no answer). */
  private accepted = false;
  private lastHeard = 0;

  constructor(private readonly client: ContainerClient, private readonly address: RpcAddress, readonly key: string, readonly primary: boolean) {}

  stop(): void {
    this.stopped = true;
    this.closeSession?.();
  }

  /** Registered, accepted and heard from within the frontend timeout. */
  live(): boolean {
    return this.accepted && Date.now() - this.lastHeard <= this.client.opts.frontendTimeoutMs;
  }

  async run(): Promise<void> {
    while (!this.stopped) {
      await this.session();
      if (!this.stopped) await new Promise((r) => setTimeout(r, 200));
    }
  }

  private async session(): Promise<void> {
    const { opts, curveKeys } = this.client;
    const curve = curveKeys && { curveServerKey: opts.serverKey!, curvePublicKey: curveKeys.publicKey, curveSecretKey: curveKeys.secretKey };
    const socket = new Dealer({ linger: 0, ...curve });
    const writer = new SocketWriter(socket);
    const host = this.address.host.includes(':') ? `[${this.address.host}]` : this.address.host;
    if (this.address.host.includes(':')) socket.ipv6 = true;
    socket.connect(`tcp://${host}:${this.address.port}`);
    this.lastHeard = Date.now();
    this.accepted = false;
    let registered = false;
    let negotiated = NOTHING_NEGOTIATED;

    const beat = setInterval(() => {
      if (Date.now() - this.lastHeard > opts.frontendTimeoutMs) {
        socket.close();
        return;
      }
      writer.send(encodeHeartbeat());
    }, opts.heartbeatIntervalMs);
    writer.send(encodeHeartbeat());
    this.closeSession = () => {
      if (!this.accepted) {
        socket.close();
        return;
      }
      // Say goodbye, so the frontend stops sending batches now rather than at its heartbeat timeout.
      socket.linger = 500;
      writer.send(encodeLeaving());
      void writer.flushed().then(() => socket.close());
    };
    if (this.stopped) socket.close();

    try {
      for await (const frames of socket) {
        this.lastHeard = Date.now();
        let msg;
        try {
          msg = decodeFrontendMessage(frames as Buffer[]);
        } catch (e) {
          console.error(`clipper container: ignoring malformed message from ${this.key}: ${errorMessage(e)}`);
          continue;
        }
        if (msg.kind === 'heartbeat' && msg.heartbeatType === HeartbeatType.RequestMetadata) {
          // First contact, or the frontend forgot us (restarted): (re)register.
          registered = true;
          this.accepted = false;
          negotiated = NOTHING_NEGOTIATED; // renegotiated on every registration
          writer.send(encodeRegistration({
            modelName: opts.modelName, modelVersion: opts.modelVersion,
            inputTypeCode: INPUT_TYPE_CODE[opts.inputType], extensions: [...DECLARED_EXTENSIONS], replicaId: opts.replicaId,
            secret: opts.secret,
          }));
          continue;
        }
        if (registered) {
          this.accepted = true;
          this.client.onServed();
        }
        if (msg.kind === 'frontends') {
          this.client.onFrontends(this, msg.frontends, msg.self);
          continue;
        }
        if (msg.kind === 'accepted') {
          // Only what this container declared: a frontend cannot switch on what it never offered.
          const has = (e: string) => msg.extensions.includes(e) && DECLARED_EXTENSIONS.includes(e);
          negotiated = { status: has(EXT_STATUS), tensors: has(EXT_TENSORS) };
          continue;
        }
        if (msg.kind === 'heartbeat') continue;
        const { msgId, inputs, inputTypeCode } = msg;
        const type = inputTypeFromCode(inputTypeCode) ?? opts.inputType;
        const ext = negotiated;
        this.client.enqueue(async () => writer.send(await this.client.answer(msgId, type, inputs, ext)));
      }
    } catch {
      // socket closed
    } finally {
      clearInterval(beat);
      this.accepted = false;
      this.closeSession = undefined;
      writer.close();
      if (!socket.closed) socket.close();
      this.client.checkReadiness();
    }
  }
}
