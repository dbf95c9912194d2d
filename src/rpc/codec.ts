/**
 * Clipper RPC v3 message encoding (see docs/rpc.md). Pure functions over frames;
 * the sockets live in router-server.ts (frontend) and runtimes/sdk.ts (container).
 * Identity frames are handled by the socket owners, not here.
 */
import { DATATYPES, DATATYPE_INFO, type Datatype } from '../v2/datatypes.ts';

export const RPC_VERSION = 3;

/** `ContentWithStatus` (3) and `Tensors` (4) are our extensions' responses (EXT_STATUS, EXT_TENSORS). */
export const MessageType = { NewContainer: 0, ContainerContent: 1, Heartbeat: 2, ContentWithStatus: 3, Tensors: 4 } as const;
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
/**
 * Responses of message type 4: each output is text or a typed tensor (raw little-endian bytes plus
 * a datatype and shape given once per batch), with a status per output and the batch's compute time.
 */
export const EXT_TENSORS = 'tensors';
/** The extensions this codec speaks; a frontend accepts those of them a container declares. */
export const KNOWN_EXTENSIONS: readonly string[] = [EXT_STATUS, EXT_FRONTENDS, EXT_TENSORS];

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

/** A malformed message; `msgId` is set when the response's msg id could be read, so its batch can be failed. */
export class RpcDecodeError extends Error {
  constructor(message: string, readonly msgId?: number) {
    super(message);
    this.name = 'RpcDecodeError';
  }
}

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

/**
 * Heartbeat type 2 with the extensions the frontend accepted, as one JSON frame
 * `{"accepted": [...]}`. A frontend that predates the frame sends type 2 alone, which means `status`.
 */
export function encodeExtensionsAccepted(accepted: readonly string[]): Buffer[] {
  return [EMPTY, u32(RPC_VERSION), u32(MessageType.Heartbeat), u32(HeartbeatType.ExtensionsAccepted), Buffer.from(JSON.stringify({ accepted }))];
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
  /** Heartbeat type 2: the extensions the frontend accepted (`["status"]` when it sent no list). */
  | { kind: 'accepted'; extensions: string[] }
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
    if (heartbeatType === HeartbeatType.ExtensionsAccepted) return decodeAccepted(frames[i]);
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

function decodeAccepted(frame: Buffer | undefined): FrontendMessage {
  if (!frame || frame.length === 0) return { kind: 'accepted', extensions: [EXT_STATUS] };
  let parsed: { accepted?: unknown } | null;
  try {
    parsed = JSON.parse(frame.toString()) as typeof parsed;
  } catch {
    throw new RpcDecodeError('extensions accepted: the frame is not JSON');
  }
  const list = parsed?.accepted;
  if (!Array.isArray(list) || !list.every((e): e is string => typeof e === 'string')) {
    throw new RpcDecodeError('extensions accepted: expected {"accepted": [names]}');
  }
  return { kind: 'accepted', extensions: list };
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

function responseHeader(outputs: readonly Buffer[]): Buffer {
  const header = Buffer.allocUnsafe(8 + 8 * outputs.length);
  header.writeBigUInt64LE(BigInt(outputs.length), 0);
  for (let i = 0; i < outputs.length; i++) header.writeBigUInt64LE(BigInt(outputs[i]!.length), 8 + 8 * i);
  return header;
}

export function encodeResponse(msgId: Buffer, outputs: Buffer[], status?: Uint8Array): Buffer[] {
  const header = responseHeader(outputs);
  const type = status ? MessageType.ContentWithStatus : MessageType.ContainerContent;
  const frames = [EMPTY, u32(type), msgId, u64(header.length), header, ...outputs];
  if (status) frames.push(Buffer.from(status));
  return frames;
}

/** The element types a tensor output may have (BYTES outputs travel as text). */
export type TensorDatatype = Exclude<Datatype, 'BYTES'>;

/** One tensor output's datatype and shape: one input's output, without the batch dimension. */
export interface TensorLayout {
  datatype: TensorDatatype;
  shape: number[];
}

/** One output of a `tensors` response. */
export interface ResponseOutput {
  ok: boolean;
  /** UTF-8 text (the error message when !ok), or the tensor's raw little-endian bytes when `tensor` is set. */
  data: Buffer;
  /** A tensor output's layout (ignored when !ok). */
  tensor?: TensorLayout;
}

/** Most dimensions a tensor output may have. */
export const MAX_TENSOR_RANK = 32;

/** Bytes a tensor of this layout holds, or NaN when that is beyond exact arithmetic. */
export function tensorByteLength(t: TensorLayout): number {
  let n = DATATYPE_INFO[t.datatype].byteSize;
  for (const d of t.shape) n *= d;
  return Number.isSafeInteger(n) ? n : NaN;
}

/**
 * Message type 4 (EXT_TENSORS), sent only once the frontend accepted the extension: the frames of a
 * type 3 response (outputs, then one status byte per output) and a JSON trailer for the whole batch:
 * `{"compute_us": 812, "tensors": [{"datatype": "FP32", "shape": [10]}], "tensor_index": [0, -1, 0]}`.
 * `tensors` lists each distinct layout once; `tensor_index` gives each output's entry in it (-1: text),
 * and is left out when every ok output has the one layout listed, or when no output is a tensor.
 */
export function encodeTensorResponse(msgId: Buffer, outputs: readonly ResponseOutput[], computeUs?: number): Buffer[] {
  const layouts: TensorLayout[] = [];
  const byKey = new Map<string, number>();
  const index = outputs.map((o) => {
    if (!o.ok || !o.tensor) return -1;
    const key = `${o.tensor.datatype}:${o.tensor.shape.join(',')}`;
    let k = byKey.get(key);
    if (k === undefined) {
      k = layouts.length;
      byKey.set(key, k);
      layouts.push({ datatype: o.tensor.datatype, shape: [...o.tensor.shape] });
    }
    return k;
  });
  const trailer: { compute_us?: number; tensors?: TensorLayout[]; tensor_index?: number[] } = {};
  if (computeUs !== undefined) trailer.compute_us = Math.max(0, Math.round(computeUs));
  if (layouts.length > 0) trailer.tensors = layouts;
  const implied = layouts.length === 0 || (layouts.length === 1 && outputs.every((o, i) => !o.ok || index[i] === 0));
  if (!implied) trailer.tensor_index = index;
  const data = outputs.map((o) => o.data);
  const header = responseHeader(data);
  const status = Buffer.from(outputs.map((o) => (o.ok ? 0 : 1)));
  return [EMPTY, u32(MessageType.Tensors), msgId, u64(header.length), header, ...data, status, Buffer.from(JSON.stringify(trailer))];
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
  | {
    kind: 'response'; msgId: number; outputs: Buffer[]; status: Uint8Array | undefined;
    /** Type 4 only: each output's tensor layout (undefined: text, or an error). */
    tensors?: Array<TensorLayout | undefined>;
    /** Type 4 only, when the container reported it: microseconds it spent on the batch. */
    computeUs?: number;
  };

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
    case MessageType.ContentWithStatus:
    case MessageType.Tensors: {
      const msgId = readU32(frames[i++], 'msg id');
      const fail = (why: string): never => {
        throw new RpcDecodeError(why, msgId);
      };
      i++; // header length
      const header = frames[i++];
      let count: number;
      try {
        count = readU64(header, 0, 'response header');
      } catch (e) {
        return fail((e as Error).message);
      }
      const outputs = frames.slice(i, i + count);
      if (outputs.length !== count) fail(`response announces ${count} outputs, ${outputs.length} frames arrived`);
      const status = type === MessageType.ContainerContent ? undefined : frames[i + count];
      if (type === MessageType.Tensors && !status) fail('tensors response: the status frame is missing');
      if (status && status.length !== count) fail('status frame length differs from output count');
      if (type !== MessageType.Tensors) return { kind: 'response', msgId, outputs, status };
      const { tensors, computeUs } = decodeTensorTrailer(frames[i + count + 1], outputs, status!, fail);
      return computeUs === undefined ? { kind: 'response', msgId, outputs, status, tensors } : { kind: 'response', msgId, outputs, status, tensors, computeUs };
    }
    default:
      throw new RpcDecodeError(`unknown message type ${type}`);
  }
}

const TENSOR_DATATYPES: ReadonlySet<string> = new Set(DATATYPES.filter((d) => d !== 'BYTES'));

function isLayout(v: unknown): v is TensorLayout {
  if (typeof v !== 'object' || v === null) return false;
  const { datatype, shape } = v as { datatype?: unknown; shape?: unknown };
  return typeof datatype === 'string' && TENSOR_DATATYPES.has(datatype) && Array.isArray(shape) && shape.length <= MAX_TENSOR_RANK
    && shape.every((d) => Number.isSafeInteger(d) && (d as number) >= 0);
}

/** Reads a type 4 trailer and checks every tensor output's byte length against its layout. */
function decodeTensorTrailer(frame: Buffer | undefined, outputs: Buffer[], status: Buffer, fail: (why: string) => never): { tensors: Array<TensorLayout | undefined>; computeUs: number | undefined } {
  if (!frame) fail('tensors response: the JSON trailer is missing');
  let trailer: { compute_us?: unknown; tensors?: unknown; tensor_index?: unknown };
  try {
    trailer = JSON.parse(frame!.toString()) as typeof trailer;
  } catch {
    return fail('tensors response: the trailer is not JSON');
  }
  if (typeof trailer !== 'object' || trailer === null || Array.isArray(trailer)) fail('tensors response: the trailer is not a JSON object');
  const { compute_us: us, tensors: listed = [], tensor_index: index } = trailer;
  if (us !== undefined && !(typeof us === 'number' && Number.isFinite(us) && us >= 0)) fail('tensors response: compute_us must be a non-negative number');
  if (!Array.isArray(listed) || !listed.every(isLayout)) fail('tensors response: "tensors" must be a list of {"datatype", "shape"} (a V2 datatype other than BYTES, at most 32 non-negative dims)');
  const layouts = listed as TensorLayout[];
  if (index === undefined) {
    if (layouts.length > 1) fail('tensors response: "tensor_index" is required when "tensors" lists several layouts');
  } else if (!Array.isArray(index) || index.length !== outputs.length || !index.every((k) => Number.isInteger(k) && k >= -1 && k < layouts.length)) {
    fail(`tensors response: "tensor_index" must give each of the ${outputs.length} outputs an entry of "tensors" or -1`);
  }
  const tensors = outputs.map((data, k) => {
    if (status[k] !== 0) return undefined;
    const at = index === undefined ? (layouts.length === 1 ? 0 : -1) : (index as number[])[k]!;
    if (at < 0) return undefined;
    const layout = layouts[at]!;
    const expected = tensorByteLength(layout);
    if (data.length !== expected) fail(`tensors response: output ${k} has ${data.length} bytes, its ${layout.datatype} [${layout.shape.join(', ')}] layout needs ${expected}`);
    return { datatype: layout.datatype, shape: [...layout.shape] };
  });
  return { tensors, computeUs: us as number | undefined };
}
