/**
 * A model container written in the test straight against the wire (docs/rpc.md), with none of the
 * project's codec: what a hostile or foreign program can send to the RPC port.
 */
import { Dealer, curveKeyPair } from 'zeromq';

const u32 = (n: number) => { const b = Buffer.alloc(4); b.writeUInt32LE(n >>> 0); return b; };
const u64 = (n: number) => { const b = Buffer.alloc(8); b.writeBigUInt64LE(BigInt(n)); return b; };
const EMPTY = Buffer.alloc(0);

export interface RawClaim {
  name: string;
  version: string;
  /** Sent as is: "-1" and "1e300" are what a hostile container may send. */
  typeText: string;
  /** The optional JSON extension frame. */
  ext?: Record<string, unknown>;
}

export class RawContainer {
  readonly socket: Dealer;
  /** Heartbeat types received (0 keep-alive, 1 send metadata, 2 extensions accepted). */
  readonly heartbeats: number[] = [];
  /** Prediction requests received. */
  predicts = 0;
  private sending: Promise<unknown> = Promise.resolve();
  private beat: NodeJS.Timeout | undefined;
  private claim: RawClaim | undefined;

  /** Connects (as a CURVE client when `serverKey` is given) and starts heartbeating every `beatMs`. */
  constructor(port: number, opts: { serverKey?: string; beatMs?: number; answer?: (inputs: Buffer[]) => string[] } = {}) {
    const keys = opts.serverKey ? curveKeyPair() : undefined;
    this.socket = new Dealer({ linger: 0, ...(keys ? { curveServerKey: opts.serverKey, curvePublicKey: keys.publicKey, curveSecretKey: keys.secretKey } : {}) });
    this.socket.connect(`tcp://127.0.0.1:${port}`);
    this.send([EMPTY, u32(2)]);
    this.beat = setInterval(() => this.send([EMPTY, u32(2)]), opts.beatMs ?? 500);
    void this.receive(opts.answer ?? ((inputs) => inputs.map(() => 'fake')));
  }

  /** Registers with `claim` whenever the frontend asks for metadata. */
  register(claim: RawClaim): this {
    this.claim = claim;
    return this;
  }

  send(frames: Buffer[]): void {
    this.sending = this.sending.then(() => this.socket.send(frames)).catch(() => {});
  }

  close(): void {
    clearInterval(this.beat);
    this.socket.close();
  }

  private async receive(answer: (inputs: Buffer[]) => string[]): Promise<void> {
    try {
      for await (const f of this.socket) {
        const type = f[2]!.readUInt32LE();
        if (type === 2) {
          const hb = f[3]!.readUInt32LE();
          this.heartbeats.push(hb);
          if (hb === 1 && this.claim) this.send(registrationFrames(this.claim));
          continue;
        }
        this.predicts++;
        const count = Number(f[6]!.readBigUInt64LE(8));
        const outputs = answer(f.slice(7, 7 + count)).map((o) => Buffer.from(o));
        const header = Buffer.concat([u64(count), ...outputs.map((o) => u64(o.length))]);
        this.send([EMPTY, u32(1), f[3]!, u64(header.length), header, ...outputs]);
      }
    } catch {
      // closed
    }
  }
}

export function registrationFrames(c: RawClaim): Buffer[] {
  const frames = [EMPTY, u32(0), Buffer.from(c.name), Buffer.from(c.version), Buffer.from(c.typeText), u32(3)];
  if (c.ext) frames.push(Buffer.from(JSON.stringify(c.ext)));
  return frames;
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
