/**
 * Sends hostile requests to a running server's two HTTP ports and judges every answer into a
 * Tally (tally.ts): over keep-alive (`send`), on a fresh raw socket (`raw`), or as a pipelined
 * connection (`pipelined`).
 */
import { pipelinedCase, type RawCase } from './requests.ts';
import { KeepAliveClient, rawExchange, type Exchange, type HttpAnswer, type HttpRequestSpec } from './http.ts';
import { describeAnswer, judgeAnswer, judgeExchange, preview, type Tally } from './tally.ts';

export type Api = 'query' | 'admin';

export class Prober {
  private clients: Record<Api, KeepAliveClient>;
  private readonly ports: Record<Api, number>;

  constructor(private readonly tally: Tally, private readonly urls: Record<Api, string>, private readonly deadlineMs: number, private readonly sockets: number) {
    this.clients = { query: new KeepAliveClient(urls.query, sockets), admin: new KeepAliveClient(urls.admin, sockets) };
    this.ports = { query: Number(new URL(urls.query).port), admin: Number(new URL(urls.admin).port) };
  }

  /** Sends one well-formed HTTP request over keep-alive and judges it. */
  async send(category: string, api: Api, spec: HttpRequestSpec, label: string, opts: { expectStatus?: number[]; timeoutMs?: number } = {}): Promise<HttpAnswer | undefined> {
    const x = await this.clients[api].send(spec, opts.timeoutMs ?? this.deadlineMs);
    const request = `${spec.method} ${api}${spec.path.length > 100 ? `${spec.path.slice(0, 100)}…` : spec.path} [${label}] body=${preview(spec.body)}`;
    return judgeExchange(this.tally, category, request, spec.path, x, opts);
  }

  /** Sends over keep-alive without judging (warm-up, probes). */
  sendQuietly(api: Api, spec: HttpRequestSpec, timeoutMs = this.deadlineMs): Promise<Exchange> {
    return this.clients[api].send(spec, timeoutMs);
  }

  /** Writes one raw case on a fresh socket and judges its answer (and any further ones). */
  async raw(category: string, api: Api, c: RawCase, timeoutMs = 6000, expectStatus?: number[]): Promise<Exchange> {
    const x = await rawExchange({ port: this.ports[api], parts: c.parts, expect: c.expect, timeoutMs, heads: c.heads, endAfterWrite: c.endAfterWrite });
    const first = c.parts.find((p): p is Buffer | string => typeof p !== 'number');
    const request = `${api} [${c.label}] ${preview(first, 120)}`;
    judgeExchange(this.tally, category, request, c.path, x, { allowClose: c.allowClose, expectStatus });
    for (const extra of x.answers.slice(1)) {
      this.tally.record(category, extra.status);
      const why = judgeAnswer(extra, c.path);
      if (why) this.tally.violate(category, request, `${why}: ${describeAnswer(extra)}`);
    }
    return x;
  }

  /**
   * Writes a pipelined connection (requests.ts `pipelinedCase`): every valid request must be answered
   * 200, in order; the garbage after them with a 4xx or a close. Returns how many valid requests got no answer.
   */
  async pipelined(category: string, api: Api, validCount: number, c: ReturnType<typeof pipelinedCase>): Promise<number> {
    const x = await rawExchange({ port: this.ports[api], parts: c.parts, expect: c.expect, timeoutMs: 6000, heads: c.heads, endAfterWrite: c.endAfterWrite });
    const request = `${api} [${c.label}]`;
    x.answers.forEach((ans, i) => {
      this.tally.record(category, ans.status);
      const why = judgeAnswer(ans, c.paths[i] ?? '/');
      if (why) this.tally.violate(category, request, `answer ${i + 1}: ${why}: ${describeAnswer(ans)}`);
      else if (i < validCount && ans.status !== 200) this.tally.violate(category, request, `answer ${i + 1}, to valid request ${i + 1}: ${describeAnswer(ans)}`);
      else if (i >= validCount && (ans.status < 400 || ans.status >= 500)) this.tally.violate(category, request, `answer to the garbage: ${describeAnswer(ans)}`);
    });
    const missing = validCount - Math.min(validCount, x.answers.length);
    if (missing > 0) {
      this.tally.record(category, x.timedOut ? 'timeout' : 'closed', missing);
      this.tally.violate(category, request, `${missing} of ${validCount} valid requests got no answer (${x.timedOut ? 'hang' : `closed${x.error ? `, ${x.error}` : ''}`})`);
    }
    if (x.answers.length < c.expect && missing === 0) {
      this.tally.record(category, x.timedOut ? 'garbage:timeout' : 'garbage:closed');
      if (x.timedOut) this.tally.violate(category, request, 'the garbage was neither answered nor the connection closed within 6 s');
    }
    return missing;
  }

  /** Drops every kept-alive connection (so the server's side closes too) and starts new pools of `sockets`. */
  reopen(sockets = this.sockets): void {
    this.close();
    this.clients = { query: new KeepAliveClient(this.urls.query, sockets), admin: new KeepAliveClient(this.urls.admin, sockets) };
  }

  close(): void {
    this.clients.query.close();
    this.clients.admin.close();
  }
}
