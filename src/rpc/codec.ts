/**
 * Clipper RPC v3 message encoding (see docs/rpc.md). Pure functions over frames;
 * the sockets live in router-server.ts (frontend) and runtimes/sdk.ts (container).
 * Identity frames are handled by the socket owners, not here.
 */
export const RPC_VERSION = 3;

export const MessageType = { NewContainer: 0, ContainerContent: 1, Heartbeat: 2, ContentWithStatus: 3 } as const;
/** `Frontends` (3) is our extension's: a heartbeat reply carrying the cluster's frontends (EXT_FRONTENDS). */
export const HeartbeatType = { KeepAlive: 0, RequestMetadata: 1, ExtensionsAccepted: 2, Frontends: 3 } as const;
export const RequestType = { Predict: 0 } as const;

/** Extensions a container may declare in its registration's optional trailing JSON frame. */
export const EXT_STATUS = 'status';
/**
 * The replica connects to every frontend of a cluster: the frontend sends it the frontends' RPC
 * addresses (heartbeat type 3 plus a JSON frame) on registration and whenever membership changes.
 */
export const EXT_FRONTENDS = 'frontends';

const EMPTY = Buffer.alloc(0);

function u32(n: number): Buffer {
  const b = Buffer.allocUnsafe(4);
  b.writeUInt32LE(n >>> 0, 0);
  return b;
}
function u64(n: number): Buffer {
  const b = Buffer.allocUnsafe(8);
  b.writeBigUInt64LE(BigInt(n), 0);
  return b;
}
function readU32(f: Buffer | undefined, what: string): number {
  if (!f || f.length < 4) throw new RpcDecodeError(`${what}: expected a u32 frame`);
  return f.readUInt32LE(0);
}
function readU64(b: Buffer | undefined, offset: number, what: string): number {
  if (!b || b.length < offset + 8) throw new RpcDecodeError(`${what}: frame too short`);
  return Number(b.readBigUInt64LE(offset));
}

export class RpcDecodeError extends Error {}

// ---------- frontend → container ----------

const HEARTBEAT_REPLIES = [0, 1, 2].map((t) => [EMPTY, u32(RPC_VERSION), u32(MessageType.Heartbeat), u32(t)]);

export function encodeHeartbeatReply(type: number): Buffer[] {
  return HEARTBEAT_REPLIES[type]!;
}

/**
 * The cluster's frontends, to a replica that declared EXT_FRONTENDS: a heartbeat reply of type 3
 * followed by one JSON frame `{"frontends": ["host:port", ...], "self": "host:port"}`; `self` is
 * the sender's own entry, so a replica that reached it by another address does not connect twice.
 */
export function encodeFrontendsMessage(frontends: string[], self?: string): Buffer[] {
  const body: { frontends: string[]; self?: string } = { frontends };
  if (self !== undefined) body.self = self;
  return [EMPTY, u32(RPC_VERSION), u32(MessageType.Heartbeat), u32(HeartbeatType.Frontends), Buffer.from(JSON.stringify(body))];
}

export function encodePredictRequest(msgId: number, inputTypeCode: number, inputs: Buffer[]): Buffer[] {
  const header = Buffer.allocUnsafe(16 + 8 * inputs.length);
  header.writeBigUInt64LE(BigInt(inputTypeCode), 0);
  header.writeBigUInt64LE(BigInt(inputs.length), 8);
  for (let i = 0; i < inputs.length; i++) header.writeBigUInt64LE(BigInt(inputs[i]!.length), 16 + 8 * i);
  return [EMPTY, u32(RPC_VERSION), u32(MessageType.ContainerContent), u32(msgId), u32(RequestType.Predict), u64(header.length), header, ...inputs];
}

export type FrontendMessage =
  | { kind: 'heartbeat'; heartbeatType: number }
  | { kind: 'frontends'; frontends: string[]; self: string | undefined }
  | { kind: 'predict'; msgId: Buffer; inputTypeCode: number; inputs: Buffer[] };

/** Decodes frames (without the router identity) received by a container. */
export function decodeFrontendMessage(frames: Buffer[]): FrontendMessage {
  let i = frames[0]?.length === 0 ? 1 : 0;
  const version = readU32(frames[i++], 'rpc version');
  if (version !== RPC_VERSION) throw new RpcDecodeError(`unsupported rpc version ${version}`);
  const type = readU32(frames[i++], 'message type');
  if (type === MessageType.Heartbeat) {
    const heartbeatType = readU32(frames[i++], 'heartbeat type');
    if (heartbeatType === HeartbeatType.Frontends) return decodeFrontends(frames[i]);
    return { kind: 'heartbeat', heartbeatType };
  }
  if (type !== MessageType.ContainerContent) throw new RpcDecodeError(`unexpected message type ${type}`);
  const msgId = frames[i++];
  if (!msgId || msgId.length !== 4) throw new RpcDecodeError('msg id: expected 4 bytes');
  const reqType = readU32(frames[i++], 'request type');
  if (reqType !== RequestType.Predict) throw new RpcDecodeError(`unsupported request type ${reqType}`);
  i++; // header length: the header frame carries its own length
  const header = frames[i++];
  const inputTypeCode = readU64(header, 0, 'header');
  const count = readU64(header, 8, 'header');
  const inputs = frames.slice(i, i + count);
  if (inputs.length !== count) throw new RpcDecodeError(`header announces ${count} inputs, ${inputs.length} frames arrived`);
  return { kind: 'predict', msgId, inputTypeCode, inputs };
}

function decodeFrontends(frame: Buffer | undefined): FrontendMessage {
  let parsed: { frontends?: unknown; self?: unknown } | null;
  try {
    parsed = JSON.parse(frame?.toString() ?? '') as typeof parsed;
  } catch {
    throw new RpcDecodeError('frontends: the frame is not JSON');
  }
  const list = parsed?.frontends;
  if (!Array.isArray(list) || !list.every((a): a is string => typeof a === 'string' && parseAddress(a) !== undefined)) {
    throw new RpcDecodeError('frontends: expected a list of "host:port" addresses');
  }
  const self = typeof parsed?.self === 'string' && parseAddress(parsed.self) ? parsed.self : undefined;
  return { kind: 'frontends', frontends: list, self };
}

/** A frontend's RPC address as it appears in the frontends list and CLIPPER_FRONTENDS. */
export interface RpcAddress { host: string; port: number }

/** `host:port`, IPv6 hosts in brackets (`[::1]:7000`). */
export function formatAddress(a: RpcAddress): string {
  return a.host.includes(':') ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`;
}

/** Reads `host:port` or `[v6]:port`; undefined unless both parts are there and the port is 1..65535. */
export function parseAddress(text: string): RpcAddress | undefined {
  const m = /^(?:\[([^\]]+)\]|([^:\s]+)):([0-9]{1,5})$/.exec(text.trim());
  if (!m) return undefined;
  const port = Number(m[3]);
  if (port < 1 || port > 65535) return undefined;
  return { host: (m[1] ?? m[2])!, port };
}

// ---------- container → frontend ----------

const HEARTBEAT = [EMPTY, u32(MessageType.Heartbeat)];
export function encodeHeartbeat(): Buffer[] {
  return HEARTBEAT;
}

export interface Registration {
  modelName: string;
  modelVersion: string;
  inputTypeCode: number;
  /**
   * Our optional trailing frame: extensions, the replica id assigned by the resource manager and
   * that replica's secret (CLIPPER_REPLICA_SECRET), which proves the manager started it.
   */
  extensions?: string[];
  replicaId?: string;
  secret?: string;
}

export function encodeRegistration(r: Registration): Buffer[] {
  const frames = [EMPTY, u32(MessageType.NewContainer), Buffer.from(r.modelName), Buffer.from(r.modelVersion), Buffer.from(String(r.inputTypeCode)), u32(RPC_VERSION)];
  if (r.extensions || r.replicaId || r.secret) {
    frames.push(Buffer.from(JSON.stringify({ extensions: r.extensions ?? [], replica_id: r.replicaId, secret: r.secret })));
  }
  return frames;
}

export function encodeResponse(msgId: Buffer, outputs: Buffer[], status?: Uint8Array): Buffer[] {
  const header = Buffer.allocUnsafe(8 + 8 * outputs.length);
  header.writeBigUInt64LE(BigInt(outputs.length), 0);
  for (let i = 0; i < outputs.length; i++) header.writeBigUInt64LE(BigInt(outputs[i]!.length), 8 + 8 * i);
  const type = status ? MessageType.ContentWithStatus : MessageType.ContainerContent;
  const frames = [EMPTY, u32(type), msgId, u64(header.length), header, ...outputs];
  if (status) frames.push(Buffer.from(status));
  return frames;
}

/**
 * A replica that stops on purpose says so (our extension, sent only by replicas that declared
 * EXT_FRONTENDS): a heartbeat with a trailing JSON frame. Frontends that do not know it read a heartbeat.
 */
export function encodeLeaving(): Buffer[] {
  return [EMPTY, u32(MessageType.Heartbeat), Buffer.from('{"leaving":true}')];
}

export type ContainerMessage =
  | { kind: 'heartbeat' }
  | { kind: 'leaving' }
  | ({ kind: 'register' } & Registration)
  | { kind: 'response'; msgId: number; outputs: Buffer[]; status: Uint8Array | undefined };

/** Decodes frames (identity removed) received by the frontend. */
export function decodeContainerMessage(frames: Buffer[]): ContainerMessage {
  let i = frames[0]?.length === 0 ? 1 : 0;
  const type = readU32(frames[i++], 'message type');
  switch (type) {
    case MessageType.Heartbeat:
      return frames[i]?.toString() === '{"leaving":true}' ? { kind: 'leaving' } : { kind: 'heartbeat' };
    case MessageType.NewContainer: {
      const [name, version, typeText, rpcVersion, ext] = frames.slice(i);
      if (!name || !version || !typeText) throw new RpcDecodeError('registration: missing frames');
      const v = readU32(rpcVersion, 'registration rpc version');
      if (v !== RPC_VERSION) throw new RpcDecodeError(`registration: unsupported rpc version ${v}`);
      // Decimal text only ("1e300", "" or " 3" are not type codes); the range is the server's to judge.
      const text = typeText.toString();
      const inputTypeCode = /^-?[0-9]{1,20}$/.test(text) ? Number(text) : NaN;
      const reg: Registration = { modelName: name.toString(), modelVersion: version.toString(), inputTypeCode };
      if (ext && ext.length > 0) {
        try {
          const parsed = JSON.parse(ext.toString()) as { extensions?: unknown; replica_id?: unknown; secret?: unknown } | null;
          if (Array.isArray(parsed?.extensions)) reg.extensions = parsed.extensions.filter((e): e is string => typeof e === 'string');
          if (typeof parsed?.replica_id === 'string') reg.replicaId = parsed.replica_id;
          if (typeof parsed?.secret === 'string') reg.secret = parsed.secret;
        } catch {
          // An unreadable extension frame means a plain v3 container.
        }
      }
      return { kind: 'register', ...reg };
    }
    case MessageType.ContainerContent:
    case MessageType.ContentWithStatus: {
      const msgId = readU32(frames[i++], 'msg id');
      i++; // header length
      const header = frames[i++];
      const count = readU64(header, 0, 'response header');
      const outputs = frames.slice(i, i + count);
      if (outputs.length !== count) throw new RpcDecodeError(`response announces ${count} outputs, ${outputs.length} frames arrived`);
      const status = type === MessageType.ContentWithStatus ? frames[i + count] : undefined;
      if (status && status.length !== count) throw new RpcDecodeError('status frame length differs from output count');
      return { kind: 'response', msgId, outputs, status };
    }
    default:
      throw new RpcDecodeError(`unknown message type ${type}`);
  }
}
