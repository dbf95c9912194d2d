/**
 * Two ways to send hostile HTTP, each with a deadline so a hang is seen rather than waited out:
 *
 * - `KeepAliveClient`: well-formed HTTP/1.1 (node:http, a keep-alive Agent) carrying any method,
 *   path and body bytes — the bulk of the suite;
 * - `rawExchange`: bytes written on a fresh TCP socket, with pauses, and the answers read back by
 *   a small HTTP/1.1 response parser — for what node:http would refuse to send (bad request lines,
 *   headers, encodings, pipelining, slow clients).
 */
import { Agent, request } from 'node:http';
import { connect } from 'node:net';

export interface HttpAnswer {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
}

export interface Exchange {
  /** Complete answers, in order. */
  answers: HttpAnswer[];
  /** The deadline passed before the exchange finished. */
  timedOut: boolean;
  /** The server closed the connection (before or after its answers). */
  closed: boolean;
  /** A socket error seen by the client (reset, refused). */
  error?: string;
  ms: number;
}

export interface HttpRequestSpec {
  method: string;
  path: string;
  headers?: Record<string, string>;
  body?: Buffer | string;
}

/** node:http with keep-alive; a request lost on a reused socket the server had just closed is retried, as any client would. */
export class KeepAliveClient {
  private readonly agent: Agent;

  constructor(private readonly base: string, sockets = 16) {
    this.agent = new Agent({ keepAlive: true, maxSockets: sockets, maxFreeSockets: sockets });
  }

  async send(spec: HttpRequestSpec, timeoutMs: number): Promise<Exchange> {
    let x = await this.once(spec, timeoutMs);
    // A kept-alive socket the server closed (its keep-alive timeout) as the request left: the
    // request never reached a handler, so it is sent again, as any HTTP client does.
    for (let retry = 0; retry < 2 && x.error && x.reused && x.answers.length === 0; retry++) x = await this.once(spec, timeoutMs);
    return x;
  }

  close(): void {
    this.agent.destroy();
  }

  private once(spec: HttpRequestSpec, timeoutMs: number): Promise<Exchange & { reused: boolean }> {
    const url = new URL(this.base);
    const started = performance.now();
    return new Promise((resolve) => {
      let done = false;
      let reused = false;
      const finish = (x: Omit<Exchange, 'ms'>) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        resolve({ ...x, ms: performance.now() - started, reused });
      };
      const body = spec.body === undefined ? undefined : Buffer.isBuffer(spec.body) ? spec.body : Buffer.from(spec.body);
      const headers: Record<string, string | number> = { ...(spec.headers ?? {}) };
      if (body && !Object.keys(headers).some((h) => h.toLowerCase() === 'content-length' || h.toLowerCase() === 'transfer-encoding')) {
        headers['content-length'] = body.length;
      }
      let req: ReturnType<typeof request>;
      try {
        req = request({ agent: this.agent, host: url.hostname, port: url.port, method: spec.method, path: spec.path, headers }, (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => finish({
            answers: [{ status: res.statusCode ?? 0, headers: flatHeaders(res.headers), body: Buffer.concat(chunks) }],
            timedOut: false, closed: false,
          }));
          res.on('error', (e) => finish({ answers: [], timedOut: false, closed: true, error: e.message }));
        });
      } catch (e) {
        // node:http refused to send it (a generator bug: such requests belong to rawExchange).
        resolve({ answers: [], timedOut: false, closed: false, error: `client refused to send: ${(e as Error).message}`, ms: 0, reused: false });
        return;
      }
      const timer = setTimeout(() => {
        finish({ answers: [], timedOut: true, closed: false });
        req.destroy();
      }, timeoutMs);
      req.on('socket', () => { reused = req.reusedSocket; });
      req.on('error', (e) => finish({ answers: [], timedOut: false, closed: true, error: (e as NodeJS.ErrnoException).code ?? e.message }));
      req.end(body);
    });
  }
}

function flatHeaders(h: Record<string, string | string[] | undefined>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(h)) if (v !== undefined) out[k] = Array.isArray(v) ? v.join(', ') : v;
  return out;
}

export interface RawPlan {
  port: number;
  /** Bytes to write in order; a number is a pause of that many ms. */
  parts: Array<Buffer | string | number>;
  /** Stop once this many answers have arrived (the connection is then closed by the client). */
  expect: number;
  timeoutMs: number;
  /** Which answers (by index) are to HEAD requests and so carry no body. */
  heads?: ReadonlySet<number>;
  /** Half-close (FIN) once everything is written. */
  endAfterWrite?: boolean;
}

/** Writes the plan on a fresh socket and parses what comes back. */
export function rawExchange(plan: RawPlan): Promise<Exchange> {
  const started = performance.now();
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port: plan.port, allowHalfOpen: true });
    let data: Buffer = Buffer.alloc(0);
    let done = false;
    let error: string | undefined;
    const parser = new ResponseParser(plan.heads ?? new Set());
    const finish = (closed: boolean, timedOut: boolean) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      const answers = parser.parse(data, closed);
      socket.destroy();
      resolve({ answers, timedOut, closed, ...(error ? { error } : {}), ms: performance.now() - started });
    };
    const timer = setTimeout(() => finish(false, true), plan.timeoutMs);
    socket.on('data', (chunk: Buffer) => {
      data = data.length === 0 ? chunk : Buffer.concat([data, chunk]);
      if (parser.parse(data, false).length >= plan.expect) finish(false, false);
    });
    socket.on('end', () => finish(true, false));
    socket.on('close', () => finish(true, false));
    socket.on('error', (e: NodeJS.ErrnoException) => { error ??= e.code ?? e.message; });
    socket.on('connect', () => void (async () => {
      for (const part of plan.parts) {
        if (done || socket.destroyed) return;
        if (typeof part === 'number') {
          await new Promise((r) => setTimeout(r, part));
          continue;
        }
        const ok = socket.write(part);
        if (!ok) await new Promise<void>((r) => { socket.once('drain', r); socket.once('close', r); });
      }
      if (plan.endAfterWrite && !socket.destroyed) socket.end();
    })());
  });
}

/** HTTP/1.x responses from a byte stream: Content-Length, chunked, or until close; 1xx skipped. */
class ResponseParser {
  constructor(private readonly heads: ReadonlySet<number>) {}

  parse(buf: Buffer, closed: boolean): HttpAnswer[] {
    const out: HttpAnswer[] = [];
    let pos = 0;
    for (;;) {
      const end = buf.indexOf('\r\n\r\n', pos);
      if (end < 0) return out;
      const head = buf.toString('latin1', pos, end).split('\r\n');
      const m = /^HTTP\/1\.[01] (\d{3})/.exec(head[0] ?? '');
      if (!m) return out;
      const status = Number(m[1]);
      const headers: Record<string, string> = {};
      for (const line of head.slice(1)) {
        const i = line.indexOf(':');
        if (i > 0) {
          const k = line.slice(0, i).trim().toLowerCase();
          const v = line.slice(i + 1).trim();
          headers[k] = headers[k] === undefined ? v : `${headers[k]}, ${v}`;
        }
      }
      let bodyStart = end + 4;
      if (status >= 100 && status < 200 && status !== 101) {
        pos = bodyStart;
        continue;
      }
      if (this.heads.has(out.length) || status === 204 || status === 304) {
        out.push({ status, headers, body: Buffer.alloc(0) });
        pos = bodyStart;
        continue;
      }
      if (/chunked/i.test(headers['transfer-encoding'] ?? '')) {
        const chunks: Buffer[] = [];
        for (;;) {
          const lineEnd = buf.indexOf('\r\n', bodyStart);
          if (lineEnd < 0) return out;
          const size = parseInt(buf.toString('latin1', bodyStart, lineEnd), 16);
          if (!Number.isFinite(size)) return out;
          if (size === 0) {
            const trailerEnd = buf.indexOf('\r\n\r\n', lineEnd);
            if (trailerEnd < 0 && buf.indexOf('\r\n', lineEnd + 2) !== lineEnd + 2) return out;
            pos = trailerEnd >= 0 ? trailerEnd + 4 : lineEnd + 4;
            break;
          }
          if (buf.length < lineEnd + 2 + size + 2) return out;
          chunks.push(buf.subarray(lineEnd + 2, lineEnd + 2 + size));
          bodyStart = lineEnd + 2 + size + 2;
        }
        out.push({ status, headers, body: Buffer.concat(chunks) });
        continue;
      }
      if (headers['content-length'] !== undefined) {
        const n = Number(headers['content-length']);
        if (buf.length < bodyStart + n) return out;
        out.push({ status, headers, body: buf.subarray(bodyStart, bodyStart + n) });
        pos = bodyStart + n;
        continue;
      }
      // No length: the body runs to the close.
      if (!closed) return out;
      out.push({ status, headers, body: buf.subarray(bodyStart) });
      return out;
    }
  }
}

/** Runs `tasks` with at most `concurrency` at a time. */
export async function pool<T>(items: readonly T[], concurrency: number, run: (item: T, index: number) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      await run(items[i]!, i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, worker));
}
