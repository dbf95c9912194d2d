/**
 * Hostile RPC peers: ZeroMQ DEALER sockets that send what a broken or malicious container could —
 * random frames, truncated and wrong-typed messages, huge declared lengths, registrations with
 * invalid input types or unknown names — written straight against the wire (docs/rpc.md), with
 * none of the project's codec.
 */
import { Dealer } from 'zeromq';
import type { Rng } from './rng.ts';

export const u32 = (n: number) => { const b = Buffer.alloc(4); b.writeUInt32LE(n >>> 0); return b; };
export const u64 = (n: bigint | number) => { const b = Buffer.alloc(8); b.writeBigUInt64LE(BigInt(n)); return b; };
const EMPTY = Buffer.alloc(0);

/** A DEALER that counts the frontend's replies; sends are serialised so ordering holds. */
export class Peer {
  readonly socket: Dealer;
  replies = 0;
  /** Heartbeat types received (0 keep-alive, 1 send metadata, 2 extensions accepted). */
  readonly heartbeats: number[] = [];
  private sending: Promise<unknown> = Promise.resolve();
  private closed = false;

  constructor(port: number) {
    this.socket = new Dealer({ linger: 0, sendHighWaterMark: 100_000 });
    this.socket.connect(`tcp://127.0.0.1:${port}`);
    void this.receive();
  }

  send(frames: Buffer[]): Promise<void> {
    const p = this.sending.then(() => (this.closed ? undefined : this.socket.send(frames))).catch(() => {});
    this.sending = p;
    return p as Promise<void>;
  }

  /** Resolves when all queued sends have been handed to ZeroMQ. */
  flushed(): Promise<unknown> {
    return this.sending;
  }

  close(): void {
    this.closed = true;
    this.socket.close();
  }

  private async receive(): Promise<void> {
    try {
      for await (const f of this.socket) {
        this.replies++;
        if (f.length >= 4 && f[2]?.length === 4 && f[2].readUInt32LE() === 2 && f[3]?.length === 4) this.heartbeats.push(f[3].readUInt32LE());
      }
    } catch {
      // closed
    }
  }
}

export const heartbeat = (): Buffer[] => [EMPTY, u32(2)];

export function registration(name: string | Buffer, version: string | Buffer, typeText: string | Buffer, ext?: string | Buffer): Buffer[] {
  const f = [EMPTY, u32(0), Buffer.from(name), Buffer.from(version), Buffer.from(typeText), u32(3)];
  if (ext !== undefined) f.push(Buffer.from(ext));
  return f;
}

function response(msgId: number, outputs: Buffer[], headerCount?: bigint, status?: Buffer): Buffer[] {
  const header = Buffer.concat([u64(headerCount ?? BigInt(outputs.length)), ...outputs.map((o) => u64(o.length))]);
  const f = [EMPTY, u32(status ? 3 : 1), u32(msgId), u64(header.length), header, ...outputs];
  if (status) f.push(status);
  return f;
}

/** 0..8 frames of 0..64 random bytes, sometimes after a plausible delimiter and type. */
export function randomFrames(rng: Rng): { frames: Buffer[]; label: string } {
  const n = rng.int(0, 8);
  const frames = Array.from({ length: n }, () => rng.bytes(rng.int(0, 64)));
  if (rng.chance(0.4)) frames.unshift(EMPTY, u32(rng.pick([0, 1, 2, 3, rng.int(0, 2 ** 32 - 1)])));
  if (frames.length === 0) frames.push(EMPTY);
  return { frames, label: `${frames.length} random frames` };
}

/** A valid-looking message cut short (a frame dropped or a frame cut), never a valid registration of a real model. */
export function truncated(rng: Rng, realModel: string): { frames: Buffer[]; label: string } {
  const msgs: Array<[string, Buffer[]]> = [
    ['heartbeat', heartbeat()],
    ['registration of an unknown model', registration(`ghost-${rng.int(0, 999)}`, '1', '4', '{"extensions":["status"]}')],
    ['registration with a bad type', registration(realModel, '1', '-1')],
    ['response', response(rng.int(1, 1000), [Buffer.from('"a"'), Buffer.from('"b"')])],
    ['status response', response(rng.int(1, 1000), [Buffer.from('x')], undefined, Buffer.from([0]))],
  ];
  const [label, frames] = rng.pick(msgs);
  const keep = rng.int(1, Math.max(1, frames.length - 1));
  const out = frames.slice(0, keep);
  const last = out[out.length - 1]!;
  if (last.length > 1 && rng.chance(0.5)) out[out.length - 1] = last.subarray(0, rng.int(0, last.length - 1));
  // A registration that lost only its extension frame is complete, and ghost names are refused anyway.
  return { frames: out, label: `${label} cut to ${out.length} frames` };
}

/** Messages of a type the frontend never receives, or a right type with the wrong shape. */
export function wrongType(rng: Rng): { frames: Buffer[]; label: string } {
  const cases: Array<[string, () => Buffer[]]> = [
    ['unknown type', () => [EMPTY, u32(rng.pick([4, 5, 7, 255, 65_536, 2 ** 31, 2 ** 32 - 1]))]],
    ['frontend-to-container message', () => [EMPTY, u32(3), u32(1), u32(1), u32(0), u64(24), u64(3), u64(0), u64(0)]],
    ['response from an unregistered peer', () => response(rng.int(1, 2 ** 31), [Buffer.from('"spoofed"')])],
    ['status response with a short status frame', () => response(rng.int(1, 1000), [Buffer.from('a'), Buffer.from('b')], undefined, Buffer.from([0]))],
    ['no delimiter', () => [u32(2)]],
    ['type as a 2-byte frame', () => [EMPTY, Buffer.from([2, 0])]],
    ['type as an 8-byte frame', () => [EMPTY, u64(2)]],
    ['registration with no frames', () => [EMPTY, u32(0)]],
    ['registration with rpc version 2', () => [EMPTY, u32(0), Buffer.from('ghost'), Buffer.from('1'), Buffer.from('4'), u32(2)]],
    ['registration with rpc version frame of 1 byte', () => [EMPTY, u32(0), Buffer.from('ghost'), Buffer.from('1'), Buffer.from('4'), Buffer.from([3])]],
    ['heartbeat with extra frames', () => [EMPTY, u32(2), rng.bytes(16), rng.bytes(16)]],
    ['empty message', () => [EMPTY]],
  ];
  const [label, make] = rng.pick(cases);
  return { frames: make(), label };
}

/** Headers that announce far more than follows. */
export function hugeDeclared(rng: Rng): { frames: Buffer[]; label: string } {
  const cases: Array<[string, () => Buffer[]]> = [
    ['response announcing 2^53 outputs', () => response(1, [Buffer.from('x')], 2n ** 53n)],
    ['response announcing 2^64-1 outputs', () => response(1, [Buffer.from('x')], 2n ** 64n - 1n)],
    ['response header length 2^64-1', () => [EMPTY, u32(1), u32(1), u64(2n ** 64n - 1n), Buffer.concat([u64(1), u64(2n ** 63n)]), Buffer.from('x')]],
    ['response output length 2^63', () => [EMPTY, u32(1), u32(1), u64(16), Buffer.concat([u64(1), u64(2n ** 63n)]), Buffer.from('x')]],
    ['response header of 7 bytes', () => [EMPTY, u32(1), u32(1), u64(7), Buffer.alloc(7, 0xff)]],
    ['registration with a 512 KiB name', () => registration('g'.repeat(512 * 1024), '1', '4')],
    ['registration with a 256 KiB extension frame', () => registration('ghost', '1', '4', `{"extensions":[${'"x",'.repeat(50_000)}"y"]}`)],
    ['10,000 empty frames', () => [EMPTY, u32(1), ...Array.from({ length: 10_000 }, () => EMPTY)]],
  ];
  const [label, make] = rng.pick(cases);
  return { frames: make(), label };
}

/**
 * Registrations the frontend must refuse: bad input types, unknown names, a real name with the
 * wrong type, version or secret. (A plain registration with the right name, version and type is
 * accepted on loopback by design — docs/rpc.md — so none is sent.)
 */
export function badRegistration(rng: Rng, real: { model: string; code: number }): { frames: Buffer[]; label: string } {
  const badTypes = ['-1', '1e300', '', ' 3', '3 ', '5', '4294967296', '18446744073709551616', 'doubles', 'NaN', '0x3', '\u0663', '3\u0000', '+3', '3.0', '03x'];
  const r = rng.int(0, 4);
  if (r === 0) { const t = rng.pick(badTypes); return { frames: registration(real.model, '1', t), label: `real model, input type ${JSON.stringify(t)}` }; }
  if (r === 1) { const c = (real.code + rng.int(1, 4)) % 5; return { frames: registration(real.model, '1', String(c)), label: 'real model, another input type' }; }
  if (r === 2) return { frames: registration(real.model, rng.pick(['2', '0', '', '../1', '1\u0000']), String(real.code)), label: 'real model, unknown version' };
  if (r === 3) {
    const name = rng.pick([`ghost-${rng.int(0, 99_999)}`, '', '../../etc/passwd', '__proto__', 'constructor', rng.units(rng.int(1, 20)), 'x'.repeat(5000)]);
    return { frames: registration(name, '1', String(rng.int(0, 4))), label: 'unknown model name' };
  }
  return {
    frames: registration(real.model, '1', String(real.code), JSON.stringify({ extensions: ['status'], replica_id: `${real.model}:1#0`, secret: rng.bytes(32).toString('hex') })),
    label: 'real model, wrong secret',
  };
}

/**
 * Sends `n` generated messages, starting a fresh connection every 100 (the frontend stops listening
 * to one whose registration it refused), waits until ZeroMQ has them, then closes the connections.
 */
export async function flood(port: number, n: number, next: () => Buffer[]): Promise<void> {
  let peer = new Peer(port);
  const peers = [peer];
  for (let i = 0; i < n; i++) {
    if (i % 100 === 99) peers.push((peer = new Peer(port)));
    void peer.send(next());
  }
  await Promise.all(peers.map((p) => p.flushed()));
  await new Promise((r) => setTimeout(r, 200));
  for (const p of peers) p.close();
}
