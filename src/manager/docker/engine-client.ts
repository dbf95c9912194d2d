/**
 * A small Docker Engine API client, reaching an engine the way a Docker context does:
 * `unix:///path/docker.sock`, `tcp://host:port` (plain, or TLS with a client certificate as
 * `docker --tlsverify --tlscacert --tlscert --tlskey` or `DOCKER_CERT_PATH` does), or
 * `ssh://[user@]host[:port]` (each connection is `ssh host docker system dial-stdio`, as the docker
 * CLI does). Only the calls the Docker backends and the image build need.
 * Every call has a deadline (long polls and image transfers excepted: the machine's health check
 * covers those), so an engine that stops answering never hangs its caller.
 * The API version is negotiated once from /_ping (capped at the newest version this client
 * was written against), so one client works with Docker 20.10 up to engines that dropped
 * the old API versions.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { Duplex, type Readable } from 'node:stream';

const MAX_API_VERSION = '1.47';
const DEFAULT_TIMEOUT_MS = 60_000;
const PING_TIMEOUT_MS = 5_000;

/** A failed engine call: the engine's own message, the HTTP status and the call. */
export class EngineError extends Error {
  constructor(readonly status: number, message: string, readonly call: string) {
    super(`docker engine: ${call}: ${status ? `${status} ` : ''}${message}`);
    this.name = 'EngineError';
  }
}

export function isEngineStatus(e: unknown, ...statuses: number[]): boolean {
  return e instanceof EngineError && statuses.includes(e.status);
}

export interface EngineInfo {
  Name: string;
  NCPU: number;
  MemTotal: number;
  ServerVersion: string;
  OperatingSystem: string;
  CgroupVersion?: string;
}

export interface EngineVersion { Version: string; ApiVersion: string; Os: string; Arch: string }

export interface ImageInspect { Id: string; RepoTags: string[] | null; Size: number; Config: { Labels: Record<string, string> | null } | null }

export interface HostConfig {
  NetworkMode?: string;
  Binds?: string[];
  NanoCpus?: number;
  Memory?: number;
  MemorySwap?: number;
  Init?: boolean;
  AutoRemove?: boolean;
  LogConfig?: { Type: string; Config: Record<string, string> };
}

export interface ContainerCreate {
  Image: string;
  Cmd?: string[];
  Env?: string[];
  Labels?: Record<string, string>;
  WorkingDir?: string;
  Tty?: boolean;
  HostConfig?: HostConfig;
}

export interface ContainerInspect {
  Id: string;
  Name: string;
  State: { Status: string; Running: boolean; ExitCode: number; OOMKilled: boolean; Error: string; StartedAt: string; FinishedAt: string };
  Config: { Labels: Record<string, string> | null; Image: string; Tty: boolean };
  HostConfig: HostConfig;
}

export interface ContainerSummary { Id: string; Names: string[]; Image: string; State: string; Status: string; Labels: Record<string, string> | null }

export interface ContainerStats {
  cpu_stats?: { cpu_usage?: { total_usage?: number } };
  memory_stats?: { usage?: number; limit?: number; stats?: Record<string, number> };
}

type Query = Record<string, string | number | boolean | string[] | undefined>;

interface Call {
  query?: Query;
  /** JSON-serialised, or streamed as is (with `contentType`). */
  body?: unknown;
  contentType?: string;
  /** Deadline of the whole call; 0 = none (long polls, image transfers). Default: the engine's. */
  timeoutMs?: number;
  signal?: AbortSignal;
}

/** TLS towards a `tcp://` engine: file paths, as `docker --tlscacert --tlscert --tlskey`. */
export interface EngineTls {
  /** A directory holding ca.pem, cert.pem and key.pem (DOCKER_CERT_PATH); the explicit files win. */
  certPath?: string;
  ca?: string;
  cert?: string;
  key?: string;
  /** Verify the engine's certificate against `ca` (--tlsverify; default true). */
  verify?: boolean;
}

/** How to reach one engine: what a Docker context holds. */
export interface EngineEndpoint {
  /** unix:///path/docker.sock, tcp://host:port or ssh://[user@]host[:port] */
  host: string;
  /** TLS for tcp:// (also implied by an https:// host). */
  tls?: EngineTls;
  /** Default deadline of a call (60 s). */
  timeoutMs?: number;
  /** ssh:// only: the ssh program and its leading options (default ['ssh']). */
  sshCommand?: string[];
}

export type EngineTarget =
  | { kind: 'unix'; socketPath: string }
  | { kind: 'tcp'; host: string; port: number; tls: boolean }
  | { kind: 'ssh'; user?: string; host: string; port?: number };

/** The endpoint a docker CLI would use from DOCKER_HOST, DOCKER_TLS_VERIFY and DOCKER_CERT_PATH. */
export function engineEndpointFromEnv(env: NodeJS.ProcessEnv = process.env, host = env.DOCKER_HOST || 'unix:///var/run/docker.sock'): EngineEndpoint {
  const verify = !!env.DOCKER_TLS_VERIFY;
  if (!host.startsWith('tcp://') || (!verify && !env.DOCKER_CERT_PATH)) return { host };
  return { host, tls: { certPath: env.DOCKER_CERT_PATH || join(homedir(), '.docker'), verify } };
}

/** Whether the engine shares this machine's filesystem (a unix socket), so artifacts can be bind-mounted. */
export function isLocalEngine(host: string): boolean {
  return parseDockerHost(host).kind === 'unix';
}

export class DockerEngine {
  readonly dockerHost: string;
  readonly target: EngineTarget;
  private readonly transport: Transport;
  private readonly timeoutMs: number;
  private readonly inflight = new Set<http.ClientRequest>();
  private prefix: Promise<string> | undefined;
  private closed = false;

  constructor(endpoint: string | EngineEndpoint) {
    const ep = typeof endpoint === 'string' ? { host: endpoint } : endpoint;
    this.dockerHost = ep.host;
    this.target = parseDockerHost(ep.host);
    this.timeoutMs = ep.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.transport = transportFor(this.target, ep);
  }

  /** `_ping`, with a short deadline: the health check of the machine. */
  async ping(timeoutMs = PING_TIMEOUT_MS): Promise<void> {
    await this.call('GET', '/_ping', { timeoutMs }, false);
  }

  version(): Promise<EngineVersion> { return this.json('GET', '/version'); }
  info(): Promise<EngineInfo> { return this.json('GET', '/info'); }

  async inspectImage(ref: string): Promise<ImageInspect | undefined> {
    try {
      return await this.json<ImageInspect>('GET', `/images/${encodeURIComponent(ref)}/json`);
    } catch (e) {
      if (isEngineStatus(e, 404)) return undefined;
      throw e;
    }
  }

  /** `docker import`: a root filesystem tar stream becomes image `repo:tag`; `changes` are Dockerfile lines (ENV, LABEL, WORKDIR, CMD...). */
  async importImage(tar: Readable, repo: string, tag: string, changes: string[] = []): Promise<void> {
    const res = await this.call('POST', '/images/create', { query: { fromSrc: '-', repo, tag, changes }, body: tar, contentType: 'application/x-tar', timeoutMs: 0 });
    throwProgressError(res.body, 'POST /images/create (import)');
  }

  /** `docker pull`; the engine reports pull failures inside a 200 progress stream. */
  async pullImage(ref: string): Promise<void> {
    const res = await this.call('POST', '/images/create', { query: { fromImage: ref }, timeoutMs: 0 });
    throwProgressError(res.body, `POST /images/create (pull ${ref})`);
  }

  async createContainer(name: string, spec: ContainerCreate): Promise<string> {
    const r = await this.json<{ Id: string }>('POST', '/containers/create', { query: { name }, body: spec });
    return r.Id;
  }

  async startContainer(id: string): Promise<void> {
    await this.call('POST', `/containers/${id}/start`);
  }

  /** SIGTERM, then SIGKILL after `timeoutSec`; returns once stopped. */
  async stopContainer(id: string, timeoutSec: number): Promise<void> {
    await this.call('POST', `/containers/${id}/stop`, { query: { t: timeoutSec }, timeoutMs: timeoutSec * 1000 + this.timeoutMs });
  }

  async killContainer(id: string, signal = 'SIGKILL'): Promise<void> {
    await this.call('POST', `/containers/${id}/kill`, { query: { signal } });
  }

  async removeContainer(id: string, force = true): Promise<void> {
    await this.call('DELETE', `/containers/${id}`, { query: { force, v: true } });
  }

  inspectContainer(id: string): Promise<ContainerInspect> {
    return this.json('GET', `/containers/${id}/json`);
  }

  /** `labels` are `key=value` (or `key`) filters, all of which must match. */
  listContainers(opts: { all?: boolean; labels?: string[] } = {}): Promise<ContainerSummary[]> {
    const filters = opts.labels?.length ? JSON.stringify({ label: opts.labels }) : undefined;
    return this.json('GET', '/containers/json', { query: { all: opts.all ?? false, filters } });
  }

  /** Long poll: resolves when the container is not running (at once if it already is not). */
  waitContainer(id: string, signal?: AbortSignal): Promise<{ StatusCode: number; Error?: { Message: string } | null }> {
    return this.json('POST', `/containers/${id}/wait`, { query: { condition: 'not-running' }, timeoutMs: 0, signal });
  }

  /** stdout and stderr interleaved as the container wrote them; `tail` lines (all when omitted). */
  async containerLogs(id: string, opts: { tail?: number; tty?: boolean } = {}): Promise<string> {
    const res = await this.call('GET', `/containers/${id}/logs`, { query: { stdout: true, stderr: true, tail: opts.tail ?? 'all' } });
    return (opts.tty ? res.body : demultiplex(res.body)).toString('utf8');
  }

  containerStats(id: string): Promise<ContainerStats> {
    return this.json('GET', `/containers/${id}/stats`, { query: { stream: false, 'one-shot': true } });
  }

  /** Extracts a tar stream into the container's filesystem at `path` (which must exist; `/` always does). Works on a created, not yet started container. */
  async putArchive(id: string, path: string, tar: Readable, timeoutMs = 10 * 60_000): Promise<void> {
    await this.call('PUT', `/containers/${id}/archive`, { query: { path }, body: tar, contentType: 'application/x-tar', timeoutMs });
  }

  /** `docker save`: the image (with its tags) as a tar stream. The caller must consume or destroy it. */
  exportImage(ref: string): Promise<Readable> {
    return this.stream('GET', `/images/${encodeURIComponent(ref)}/get`);
  }

  /** `docker load` of a `docker save` stream. */
  async loadImage(tar: Readable): Promise<void> {
    const res = await this.call('POST', '/images/load', { query: { quiet: true }, body: tar, contentType: 'application/x-tar', timeoutMs: 0 });
    throwProgressError(res.body, 'POST /images/load');
  }

  /** Fails every call in flight (long polls and transfers included) with `reason`; the client stays usable. */
  abortInflight(reason: string): void {
    for (const req of [...this.inflight]) req.destroy(new Error(reason));
  }

  /** Aborts calls in flight (long polls included) and closes pooled sockets. */
  close(): void {
    this.closed = true;
    for (const req of this.inflight) req.destroy(new Error('docker engine client closed'));
    this.inflight.clear();
    this.transport.agent.destroy();
    this.transport.longAgent.destroy();
  }

  private async json<T>(method: string, path: string, call: Call = {}): Promise<T> {
    const res = await this.call(method, path, call);
    return JSON.parse(res.body.toString('utf8')) as T;
  }

  private apiPrefix(): Promise<string> {
    this.prefix ??= this.call('GET', '/_ping', {}, false).then((res) => {
      const server = String(res.headers['api-version'] ?? '1.41');
      return `/v${compareVersions(server, MAX_API_VERSION) < 0 ? server : MAX_API_VERSION}`;
    }).catch((e: unknown) => {
      this.prefix = undefined;
      throw e;
    });
    return this.prefix;
  }

  /** A call whose answer is read whole. */
  private async call(method: string, path: string, call: Call = {}, versioned = true): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: Buffer }> {
    const what = `${method} ${path}`;
    const { res, done } = await this.request(method, path, call, versioned);
    return new Promise((resolve, reject) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', (e) => { done(); reject(e instanceof EngineError ? e : new EngineError(0, e.message, what)); });
      res.on('end', () => {
        done();
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) });
      });
    });
  }

  /** A call whose answer is streamed to the caller (no deadline once it has begun). */
  private async stream(method: string, path: string, call: Call = {}): Promise<Readable> {
    const { res, done, begun } = await this.request(method, path, call, true);
    begun();
    res.once('close', done);
    return res;
  }

  /** Sends the request; resolves with the answer once it begins (status < 400), rejects with the engine's message otherwise. */
  private async request(method: string, path: string, call: Call, versioned: boolean): Promise<{ res: http.IncomingMessage; done: () => void; begun: () => void }> {
    const what = `${method} ${path}`;
    if (this.closed) throw new EngineError(0, 'client closed', what);
    const fullPath = (versioned ? await this.apiPrefix() : '') + path + queryString(call.query);
    const streamed = isReadable(call.body);
    const payload = call.body === undefined || streamed ? undefined : Buffer.from(JSON.stringify(call.body));
    // TLS checks the engine's certificate against the host it was asked for (from this header).
    const headers: Record<string, string> = { host: this.target.kind === 'tcp' ? hostHeader(this.target.host, this.target.port) : 'docker' };
    if (payload) Object.assign(headers, { 'content-type': 'application/json', 'content-length': String(payload.length) });
    if (streamed) headers['content-type'] = call.contentType ?? 'application/octet-stream';
    const timeoutMs = call.timeoutMs ?? this.timeoutMs;
    const { request, agent, longAgent, base } = this.transport;

    return new Promise((resolve, reject) => {
      // Long polls and uploads get their own sockets so they never starve the pool.
      const req = request({ ...base, method, path: fullPath, headers, agent: timeoutMs === 0 || streamed ? longAgent : agent, signal: call.signal });
      this.inflight.add(req);
      // A deadline on the whole call, connecting included (a socket timeout starts only once connected).
      const timer = timeoutMs > 0 ? setTimeout(() => req.destroy(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs) : undefined;
      const done = () => {
        clearTimeout(timer);
        this.inflight.delete(req);
      };
      const fail = (e: Error) => {
        done();
        reject(e instanceof EngineError ? e : new EngineError(0, e.message, what));
      };
      req.on('error', fail);
      req.on('response', (res) => {
        const status = res.statusCode ?? 0;
        if (status < 400) {
          resolve({ res, done, begun: () => clearTimeout(timer) });
          return;
        }
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', fail);
        res.on('end', () => fail(new EngineError(status, engineMessage(Buffer.concat(chunks)), what)));
      });
      if (streamed) {
        const src = call.body as Readable;
        src.on('error', (e) => req.destroy(e));
        src.pipe(req);
      } else {
        req.end(payload);
      }
    });
  }
}

export function parseDockerHost(host: string): EngineTarget {
  if (host.startsWith('unix://')) return { kind: 'unix', socketPath: host.slice('unix://'.length) };
  if (host.startsWith('/')) return { kind: 'unix', socketPath: host };
  const tcp = /^(tcp|http|https):\/\/([^:/]+|\[[^\]]+\]):(\d+)\/?$/.exec(host);
  if (tcp) return { kind: 'tcp', host: tcp[2]!.replace(/^\[|\]$/g, ''), port: Number(tcp[3]), tls: tcp[1] === 'https' };
  const ssh = /^ssh:\/\/(?:([^@/:]+)@)?([^:/@]+|\[[^\]]+\])(?::(\d+))?\/?$/.exec(host);
  if (ssh) return { kind: 'ssh', user: ssh[1], host: ssh[2]!.replace(/^\[|\]$/g, ''), port: ssh[3] ? Number(ssh[3]) : undefined };
  throw new Error(`unsupported Docker host ${JSON.stringify(host)}: use unix:///path/docker.sock, tcp://host:port (TLS with tls files) or ssh://[user@]host[:port]`);
}

type Transport = { request: typeof http.request; agent: http.Agent; longAgent: http.Agent; base: http.RequestOptions };

function transportFor(target: EngineTarget, ep: EngineEndpoint): Transport {
  const pooled = { keepAlive: true, maxSockets: 16 };
  const unpooled = { keepAlive: false };
  switch (target.kind) {
    case 'unix':
      return { request: http.request, agent: new http.Agent(pooled), longAgent: new http.Agent(unpooled), base: { socketPath: target.socketPath } };
    case 'tcp': {
      if (!ep.tls && !target.tls) return { request: http.request, agent: new http.Agent(pooled), longAgent: new http.Agent(unpooled), base: { host: target.host, port: target.port } };
      const tls = tlsOptions(ep.tls ?? {});
      return {
        request: https.request, agent: new https.Agent({ ...pooled, ...tls }), longAgent: new https.Agent({ ...unpooled, ...tls }),
        base: { host: target.host, port: target.port },
      };
    }
    case 'ssh': {
      const argv = [...(ep.sshCommand ?? ['ssh']), '-o', 'BatchMode=yes', '-o', 'ConnectTimeout=10',
        ...(target.port ? ['-p', String(target.port)] : []), target.user ? `${target.user}@${target.host}` : target.host, '--', 'docker', 'system', 'dial-stdio'];
      return { request: http.request, agent: new DialStdioAgent(argv, pooled), longAgent: new DialStdioAgent(argv, unpooled), base: { host: 'docker' } };
    }
  }
}

function hostHeader(host: string, port: number): string {
  return `${host.includes(':') ? `[${host}]` : host}:${port}`;
}

function tlsOptions(t: EngineTls): https.AgentOptions {
  const file = (explicit: string | undefined, name: string) => {
    const path = explicit ?? (t.certPath ? join(t.certPath, name) : undefined);
    return path ? readFileSync(path) : undefined;
  };
  return { ca: file(t.ca, 'ca.pem'), cert: file(t.cert, 'cert.pem'), key: file(t.key, 'key.pem'), rejectUnauthorized: t.verify ?? true };
}

/**
 * HTTP over a program's stdin/stdout: each connection is one `ssh host docker system dial-stdio`,
 * which the engine's host relays to its socket (what the docker CLI does for ssh:// hosts).
 */
class DialStdioAgent extends http.Agent {
  constructor(private readonly argv: string[], opts: http.AgentOptions) {
    super(opts);
  }

  override createConnection(): Duplex {
    return new CommandSocket(this.argv);
  }
}

class CommandSocket extends Duplex {
  private readonly child;
  private stderr = '';

  constructor(argv: string[]) {
    super();
    const child = spawn(argv[0]!, argv.slice(1), { stdio: ['pipe', 'pipe', 'pipe'] });
    this.child = child;
    child.stdout.on('data', (c: Buffer) => { if (!this.push(c)) child.stdout.pause(); });
    child.stdout.on('end', () => this.push(null));
    child.stderr.on('data', (c: Buffer) => { this.stderr = (this.stderr + c.toString()).slice(-2000); });
    child.stdin.on('error', () => {}); // the exit says why
    child.on('error', (e) => this.destroy(e));
    child.on('exit', (code, signal) => {
      if (code || (signal && !this.destroyed)) this.destroy(new Error(`${argv[0]} exited with ${code ?? signal}${this.stderr.trim() ? `: ${this.stderr.trim()}` : ''}`));
    });
  }

  override _read(): void {
    this.child.stdout.resume();
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (e?: Error | null) => void): void {
    this.child.stdin.write(chunk, cb);
  }

  override _final(cb: (e?: Error | null) => void): void {
    this.child.stdin.end(cb);
  }

  override _destroy(err: Error | null, cb: (e?: Error | null) => void): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGTERM');
    cb(err);
  }

  // What http.Agent asks of a socket it pools.
  setKeepAlive(): this { return this; }
  setNoDelay(): this { return this; }
  setTimeout(): this { return this; }
  ref(): this { return this; }
  unref(): this { return this; }
}

/**
 * Without a TTY the engine multiplexes stdout and stderr: frames of
 * [stream type: 1 byte][3 zero bytes][payload length: u32 big-endian][payload].
 */
export function demultiplex(buf: Buffer): Buffer {
  const parts: Buffer[] = [];
  let off = 0;
  while (off + 8 <= buf.length) {
    const type = buf[off]!;
    if (type > 2 || buf[off + 1] !== 0 || buf[off + 2] !== 0 || buf[off + 3] !== 0) return Buffer.concat([...parts, buf.subarray(off)]);
    const len = buf.readUInt32BE(off + 4);
    parts.push(buf.subarray(off + 8, off + 8 + len));
    off += 8 + len;
  }
  return Buffer.concat(parts);
}

function queryString(q: Query | undefined): string {
  if (!q) return '';
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(q)) {
    if (v === undefined) continue;
    if (Array.isArray(v)) for (const x of v) p.append(k, x);
    else p.append(k, typeof v === 'boolean' ? (v ? '1' : '0') : String(v));
  }
  const s = p.toString();
  return s ? `?${s}` : '';
}

function engineMessage(body: Buffer): string {
  const text = body.toString('utf8').trim();
  try {
    const j = JSON.parse(text) as { message?: string };
    if (j.message) return j.message;
  } catch {
    // not JSON: the text itself is the message
  }
  return text || 'no message';
}

/** Import and pull answer 200 and report failure as a JSON line `{"error": ...}` in the progress stream. */
function throwProgressError(body: Buffer, what: string): void {
  for (const line of body.toString('utf8').split(/\r?\n/)) {
    if (!line.trim()) continue;
    let j: { error?: string; errorDetail?: { message?: string } };
    try {
      j = JSON.parse(line) as typeof j;
    } catch {
      continue;
    }
    if (j.error || j.errorDetail) throw new EngineError(0, j.errorDetail?.message ?? j.error ?? 'failed', what);
  }
}

function isReadable(x: unknown): x is Readable {
  return typeof x === 'object' && x !== null && typeof (x as Readable).pipe === 'function';
}

function compareVersions(a: string, b: string): number {
  const [a1 = 0, a2 = 0] = a.split('.').map(Number);
  const [b1 = 0, b2 = 0] = b.split('.').map(Number);
  return a1 - b1 || a2 - b2;
}
