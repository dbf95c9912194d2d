/**
 * A small Docker Engine API client over plain HTTP: `unix:///path/docker.sock` or
 * `tcp://host:port` (no TLS). Only the calls the Docker backend and the image build need.
 * The API version is negotiated once from /_ping (capped at the newest version this client
 * was written against), so one client works with Docker 20.10 up to engines that dropped
 * the old API versions.
 */
import http from 'node:http';
import type { Readable } from 'node:stream';

const MAX_API_VERSION = '1.47';
const DEFAULT_TIMEOUT_MS = 60_000;

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
  /** 0 = no timeout (long polls, image import). */
  timeoutMs?: number;
  signal?: AbortSignal;
}

export class DockerEngine {
  private readonly target: { socketPath: string } | { host: string; port: number };
  private readonly agent = new http.Agent({ keepAlive: true, maxSockets: 16 });
  private readonly inflight = new Set<http.ClientRequest>();
  private prefix: Promise<string> | undefined;
  private closed = false;

  constructor(readonly dockerHost: string) {
    this.target = parseDockerHost(dockerHost);
  }

  async ping(): Promise<void> {
    await this.call('GET', '/_ping', {}, false);
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
    await this.call('POST', `/containers/${id}/stop`, { query: { t: timeoutSec }, timeoutMs: timeoutSec * 1000 + DEFAULT_TIMEOUT_MS });
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

  /** Aborts calls in flight (long polls included) and closes pooled sockets. */
  close(): void {
    this.closed = true;
    for (const req of this.inflight) req.destroy(new Error('docker engine client closed'));
    this.inflight.clear();
    this.agent.destroy();
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

  private async call(method: string, path: string, call: Call = {}, versioned = true): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: Buffer }> {
    const what = `${method} ${path}`;
    if (this.closed) throw new EngineError(0, 'client closed', what);
    const fullPath = (versioned ? await this.apiPrefix() : '') + path + queryString(call.query);
    const streamed = isReadable(call.body);
    const payload = call.body === undefined || streamed ? undefined : Buffer.from(JSON.stringify(call.body));
    const headers: Record<string, string> = { host: 'docker' };
    if (payload) Object.assign(headers, { 'content-type': 'application/json', 'content-length': String(payload.length) });
    if (streamed) headers['content-type'] = call.contentType ?? 'application/octet-stream';
    const timeoutMs = call.timeoutMs ?? DEFAULT_TIMEOUT_MS;

    return new Promise((resolve, reject) => {
      // Long polls and uploads get their own socket so they never starve the pool.
      const req = http.request({ ...this.target, method, path: fullPath, headers, agent: timeoutMs === 0 ? false : this.agent, signal: call.signal });
      this.inflight.add(req);
      const fail = (e: Error) => {
        this.inflight.delete(req);
        reject(e instanceof EngineError ? e : new EngineError(0, e.message, what));
      };
      if (timeoutMs > 0) req.setTimeout(timeoutMs, () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
      req.on('error', fail);
      req.on('response', (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', fail);
        res.on('end', () => {
          this.inflight.delete(req);
          const body = Buffer.concat(chunks);
          const status = res.statusCode ?? 0;
          if (status >= 400) reject(new EngineError(status, engineMessage(body), what));
          else resolve({ status, headers: res.headers, body });
        });
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

export function parseDockerHost(host: string): { socketPath: string } | { host: string; port: number } {
  if (host.startsWith('unix://')) return { socketPath: host.slice('unix://'.length) };
  if (host.startsWith('/')) return { socketPath: host };
  const m = /^(?:tcp|http):\/\/([^:/]+|\[[^\]]+\]):(\d+)\/?$/.exec(host);
  if (!m) throw new Error(`unsupported Docker host ${JSON.stringify(host)}: use unix:///path/docker.sock or tcp://host:port (TLS is not supported)`);
  return { host: m[1]!.replace(/^\[|\]$/g, ''), port: Number(m[2]) };
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
