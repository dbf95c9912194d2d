/**
 * What the hostile suite counts and what it holds every answer to.
 *
 * An HTTP answer is a violation when it is a 5xx other than 503 (overload, unavailable, storage
 * unavailable) and 507 (storage full); when it has a body that is not JSON (GET /metrics's text
 * excepted); when a 4xx body lacks a string `error` and a string `cause`; or when no answer came
 * within the deadline. 502 and 504 (a model failed, or a deadline passed) are not allowed either:
 * the models here are well-behaved and the SLOs generous, so they would mean the server failed.
 */
import type { Exchange, HttpAnswer } from './http.ts';

export interface Violation {
  category: string;
  request: string;
  answer: string;
}

interface Count {
  sent: number;
  statuses: Map<string, number>;
}

/** 503 codes that are a legitimate "not now"; anything else answered 503 is a violation. */
const UNAVAILABLE_CODES = new Set(['QUEUE_FULL', 'OVERLOADED', 'UNAVAILABLE', 'STORAGE_UNAVAILABLE']);

export class Tally {
  private readonly counts = new Map<string, Count>();
  readonly violations: Violation[] = [];

  /** Counts one request of `category` with its outcome label (a status, "closed", "timeout"). */
  record(category: string, outcome: string | number, n = 1): void {
    let c = this.counts.get(category);
    if (!c) this.counts.set(category, (c = { sent: 0, statuses: new Map() }));
    c.sent += n;
    const key = String(outcome);
    c.statuses.set(key, (c.statuses.get(key) ?? 0) + n);
  }

  violate(category: string, request: string, answer: string): void {
    this.violations.push({ category, request, answer });
  }

  sent(category?: string): number {
    if (category !== undefined) return this.counts.get(category)?.sent ?? 0;
    let n = 0;
    for (const c of this.counts.values()) n += c.sent;
    return n;
  }

  violationsOf(category: string): Violation[] {
    return this.violations.filter((v) => v.category === category);
  }

  /** One line per category: how many were sent and how they were answered. */
  table(): string {
    const rows = [...this.counts.entries()].map(([cat, c]) => {
      const outcomes = [...c.statuses.entries()].sort((a, b) => b[1] - a[1]).map(([k, n]) => `${k}×${n}`).join(' ');
      const bad = this.violationsOf(cat).length;
      return `${cat.padEnd(22)} ${String(c.sent).padStart(6)}  ${bad ? `VIOLATIONS ${bad}  ` : ''}${outcomes}`;
    });
    return [`${'category'.padEnd(22)} ${'sent'.padStart(6)}  outcomes`, ...rows, `${'total'.padEnd(22)} ${String(this.sent()).padStart(6)}`].join('\n');
  }

  /** Violations of a category, one per distinct (request label, answer), with how often each came. */
  describe(category: string, max = 12): string {
    const seen = new Map<string, { v: Violation; n: number }>();
    for (const v of this.violationsOf(category)) {
      const key = `${v.request.slice(0, 120)}|${v.answer.slice(0, 80)}`;
      const e = seen.get(key);
      if (e) e.n++;
      else seen.set(key, { v, n: 1 });
    }
    return [...seen.values()].slice(0, max).map(({ v, n }) => `  ${n}× ${v.request}\n     → ${v.answer}`).join('\n');
  }
}

/** A short, printable view of a request or answer body. */
export function preview(body: Buffer | string | undefined, max = 160): string {
  if (body === undefined) return '(none)';
  const b = Buffer.isBuffer(body) ? body : Buffer.from(body);
  const text = b.subarray(0, max).toString('latin1').replace(/[^\x20-\x7e]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
  return `${JSON.stringify(text)}${b.length > max ? `… (${b.length} bytes)` : ''}`;
}

export function describeAnswer(a: HttpAnswer): string {
  return `${a.status} ${preview(a.body, 240)}`;
}

/** Why one answer breaks the rules above, or undefined when it keeps them. */
export function judgeAnswer(a: HttpAnswer, path: string): string | undefined {
  if (a.status >= 500 && a.status !== 503 && a.status !== 507) return `${a.status} is a server error`;
  if (a.status < 100 || a.status > 599) return `status ${a.status} is not HTTP`;
  if (a.body.length === 0) return undefined;
  if (a.status === 200 && path.split('?')[0] === '/metrics') return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(a.body.toString('utf8'));
  } catch {
    return `the body is not JSON (content-type ${a.headers['content-type'] ?? 'none'})`;
  }
  if (a.status >= 400) {
    const e = parsed as { error?: unknown; cause?: unknown } | null;
    if (e === null || typeof e !== 'object' || typeof e.error !== 'string' || typeof e.cause !== 'string') return 'a 4xx/5xx body without string "error" and "cause"';
    if (a.status === 503 && !UNAVAILABLE_CODES.has(e.error)) return `503 with error ${e.error}`;
  }
  return undefined;
}

/**
 * Records one exchange that should end in exactly one answer: counts its outcome and notes a
 * violation when there is no answer in time, no answer at all, or an answer that breaks the rules.
 * `expectStatus` narrows what is acceptable (e.g. 413 for an oversized body).
 */
export function judgeExchange(
  tally: Tally, category: string, request: string, path: string, x: Exchange,
  opts: { expectStatus?: readonly number[]; allowClose?: boolean } = {},
): HttpAnswer | undefined {
  const a = x.answers[0];
  if (!a) {
    const outcome = x.timedOut ? 'timeout' : x.error ? `closed:${x.error}` : 'closed';
    tally.record(category, outcome);
    if (x.timedOut) tally.violate(category, request, `no answer within ${Math.round(x.ms)} ms (hang)`);
    else if (!opts.allowClose) tally.violate(category, request, `connection closed without an answer${x.error ? ` (${x.error})` : ''}`);
    return undefined;
  }
  tally.record(category, a.status);
  const why = judgeAnswer(a, path);
  if (why) tally.violate(category, request, `${why}: ${describeAnswer(a)}`);
  else if (opts.expectStatus && !opts.expectStatus.includes(a.status)) tally.violate(category, request, `expected ${opts.expectStatus.join('/')}: ${describeAnswer(a)}`);
  return a;
}
