/**
 * A small TypeScript client of the admin and query APIs (used by the CLI; usable by applications).
 *
 * Security (docs/security.md): `token` is sent to the admin API as `Authorization: Bearer`;
 * `appKey` to the query API as `X-Api-Key`, for applications that have keys. Over HTTPS the
 * server's certificate must chain to a trusted CA: the system's, NODE_EXTRA_CA_CERTS, or `ca`
 * (e.g. a self-signed certificate's own PEM). Nothing else is trusted.
 */
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';

export class ClipperHttpError extends Error {
  constructor(readonly status: number, readonly code: string, message: string) {
    super(message);
  }
}

export interface ClientOptions {
  /** Admin API bearer token (admin or read-only). */
  token?: string;
  /** Query API key of the applications that have keys. */
  appKey?: string;
  /** PEM certificate(s) to trust for HTTPS, in addition to the system's. */
  ca?: string | Buffer;
}

export class ClipperClient {
  constructor(
    readonly adminUrl = 'http://127.0.0.1:1338',
    readonly queryUrl = 'http://127.0.0.1:1337',
    private readonly options: ClientOptions = {},
  ) {}

  admin<T = unknown>(endpoint: string, body: Record<string, unknown> = {}): Promise<T> {
    return this.request<T>(`${this.adminUrl}/admin/${endpoint}`, this.bearer(), body);
  }

  status<T = unknown>(): Promise<T> {
    return this.request<T>(`${this.adminUrl}/admin/status`, this.bearer());
  }

  predict<T = unknown>(app: string, body: Record<string, unknown>): Promise<T> {
    const headers: Record<string, string> = this.options.appKey ? { 'x-api-key': this.options.appKey } : {};
    return this.request<T>(`${this.queryUrl}/${encodeURIComponent(app)}/predict`, headers, body);
  }

  private bearer(): Record<string, string> {
    return this.options.token ? { authorization: `Bearer ${this.options.token}` } : {};
  }

  private async request<T>(url: string, headers: Record<string, string>, body?: Record<string, unknown>): Promise<T> {
    let res: { status: number; text: string };
    try {
      res = await send(new URL(url), headers, body === undefined ? undefined : JSON.stringify(body), this.options.ca);
    } catch (e) {
      throw new ClipperHttpError(0, 'UNREACHABLE', `cannot reach ${new URL(url).origin}: ${(e as Error).message}`);
    }
    let data: unknown;
    try {
      data = JSON.parse(res.text);
    } catch {
      data = res.text;
    }
    if (res.status < 200 || res.status >= 300) {
      const err = (data ?? {}) as { error?: string; cause?: string };
      throw new ClipperHttpError(res.status, err.error ?? String(res.status), err.cause ?? res.text);
    }
    return data as T;
  }
}

/** One HTTP(S) exchange; node:http(s) rather than fetch, so that a CA can be given per client. */
function send(url: URL, headers: Record<string, string>, body: string | undefined, ca: string | Buffer | undefined): Promise<{ status: number; text: string }> {
  const https = url.protocol === 'https:';
  if (!https && url.protocol !== 'http:') return Promise.reject(new Error(`unsupported URL scheme ${url.protocol}`));
  const allHeaders = body === undefined ? headers : { ...headers, 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)) };
  const options = { method: body === undefined ? 'GET' : 'POST', headers: allHeaders, ...(https && ca ? { ca } : {}) };
  return new Promise((resolve, reject) => {
    const onResponse = (res: IncomingMessage) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    };
    const req = https ? httpsRequest(url, options, onResponse) : httpRequest(url, options, onResponse);
    req.on('error', reject);
    req.end(body);
  });
}
