/**
 * Container SDK: `serve(predict)` turns a function into a model container speaking RPC v3.
 * It connects a DEALER to the frontend, heartbeats, registers, and answers prediction batches.
 * A predict that throws or returns a wrong answer fails that batch's queries with a clear message
 * (logged to stderr, which the resource manager keeps); the container keeps serving.
 */
import { Dealer, curveKeyPair } from 'zeromq';
import { errorMessage } from '../errors.ts';
import { decodeInput, inputTypeFromCode, parseInputType, INPUT_TYPE_CODE, type InputType } from '../registry/input-types.ts';
import {
  EXT_STATUS, HeartbeatType, decodeFrontendMessage, encodeHeartbeat, encodeRegistration, encodeResponse,
} from '../rpc/codec.ts';
import { SocketWriter } from '../rpc/socket-writer.ts';

export type PredictFn = (inputs: unknown[]) => unknown[] | Promise<unknown[]>;

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
  };
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

/** Outputs are strings; other JSON-serialisable values are sent as their JSON text. */
export function outputToBuffer(value: unknown): Buffer {
  if (typeof value === 'string') return Buffer.from(value, 'utf8');
  if (value === undefined || typeof value === 'function' || typeof value === 'symbol' || typeof value === 'bigint') {
    throw new Error(`predict returned ${value === undefined ? 'undefined' : `a ${typeof value}`}, which is neither a string nor JSON-serialisable`);
  }
  const text = JSON.stringify(value);
  if (text === undefined) throw new Error('predict returned a value that is not JSON-serialisable');
  return Buffer.from(text, 'utf8');
}

export async function serve(predict: PredictFn, opts: ServeOptions = optionsFromEnv()): Promise<void> {
  const container = new ContainerClient(predict, opts);
  const stop = () => { container.stop(); };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
  watchParent();
  await container.run();
  process.exit(0);
}

/** A replica started by the resource manager exits when the frontend that started it is gone. */
function watchParent(): void {
  const parent = Number(process.env.CLIPPER_PARENT_PID);
  if (!parent) return;
  setInterval(() => {
    if (process.ppid !== parent) process.exit(0);
  }, 1000).unref();
}

class ContainerClient {
  private stopped = false;
  private wake: (() => void) | undefined;
  /** This container's CurveZMQ keypair, made once (the frontend accepts any client key; the secret authenticates). */
  private readonly curveKeys: { publicKey: string; secretKey: string } | undefined;

  constructor(private readonly predict: PredictFn, private readonly opts: ServeOptions) {
    this.curveKeys = opts.serverKey ? curveKeyPair() : undefined;
  }

  stop(): void {
    this.stopped = true;
    this.wake?.();
  }

  async run(): Promise<void> {
    while (!this.stopped) {
      await this.session();
      if (!this.stopped) await new Promise((r) => setTimeout(r, 200));
    }
  }

  /** One connection: lasts until the frontend is silent too long or we stop. */
  private async session(): Promise<void> {
    const curve = this.curveKeys && { curveServerKey: this.opts.serverKey!, curvePublicKey: this.curveKeys.publicKey, curveSecretKey: this.curveKeys.secretKey };
    const socket = new Dealer({ linger: 0, ...curve });
    const writer = new SocketWriter(socket);
    socket.connect(`tcp://${this.opts.host}:${this.opts.port}`);
    let lastHeard = Date.now();
    let statusExt = false;
    let chain: Promise<void> = Promise.resolve();

    const beat = setInterval(() => {
      if (Date.now() - lastHeard > this.opts.frontendTimeoutMs) {
        socket.close();
        return;
      }
      writer.send(encodeHeartbeat());
    }, this.opts.heartbeatIntervalMs);
    writer.send(encodeHeartbeat());
    this.wake = () => socket.close();

    try {
      for await (const frames of socket) {
        lastHeard = Date.now();
        let msg;
        try {
          msg = decodeFrontendMessage(frames as Buffer[]);
        } catch (e) {
          console.error(`clipper container: ignoring malformed message: ${errorMessage(e)}`);
          continue;
        }
        if (msg.kind === 'heartbeat') {
          if (msg.heartbeatType === HeartbeatType.RequestMetadata) {
            writer.send(encodeRegistration({
              modelName: this.opts.modelName, modelVersion: this.opts.modelVersion,
              inputTypeCode: INPUT_TYPE_CODE[this.opts.inputType], extensions: [EXT_STATUS], replicaId: this.opts.replicaId,
              secret: this.opts.secret,
            }));
          } else if (msg.heartbeatType === HeartbeatType.ExtensionsAccepted) {
            statusExt = true;
          }
          continue;
        }
        const { msgId, inputs, inputTypeCode } = msg;
        const type = inputTypeFromCode(inputTypeCode) ?? this.opts.inputType;
        const ext = statusExt;
        chain = chain.then(async () => writer.send(await this.answer(msgId, type, inputs, ext)));
      }
    } catch {
      // socket closed
    } finally {
      clearInterval(beat);
      writer.close();
      if (!socket.closed) socket.close();
    }
  }

  private async answer(msgId: Buffer, type: InputType, raw: Buffer[], statusExt: boolean): Promise<Buffer[]> {
    try {
      const inputs = raw.map((b) => decodeInput(type, b));
      const outputs = await this.predict(inputs);
      if (!Array.isArray(outputs)) throw new Error(`predict must return an array, got ${outputs === null ? 'null' : typeof outputs}`);
      if (outputs.length !== inputs.length) throw new Error(`predict returned ${outputs.length} outputs for ${inputs.length} inputs`);
      const status = new Uint8Array(outputs.length);
      const buffers = outputs.map((o, i) => {
        if (!(o instanceof InputError)) return outputToBuffer(o);
        status[i] = 1;
        return Buffer.from(statusExt ? o.message : JSON.stringify({ error: o.message }));
      });
      return encodeResponse(msgId, buffers, statusExt ? status : undefined);
    } catch (e) {
      const message = e instanceof Error && e.message.startsWith('predict ') ? e.message : `predict failed: ${errorMessage(e)}`;
      console.error(`clipper container: batch of ${raw.length} failed: ${e instanceof Error && e.stack ? e.stack : message}`);
      if (statusExt) return encodeResponse(msgId, raw.map(() => Buffer.from(message)), new Uint8Array(raw.length).fill(1));
      return encodeResponse(msgId, raw.map(() => Buffer.from(JSON.stringify({ error: message }))));
    }
  }
}
