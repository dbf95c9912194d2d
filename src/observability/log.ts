/**
 * The server's log: one record per event, as a JSON line (pino) on stderr, e.g.
 *   {"level":30,"time":1764067200000,"pid":4242,"hostname":"h","msg":"model deployed","model":"m","version":"1","runtime":"js"}
 * or, with `format: 'text'`, one human-readable line per record (for a terminal).
 *
 * Components log through the narrow `Logger` below (pino's calling convention: fields first, then
 * the message), so a test can capture records without pino. Deep code that only says something
 * now and then keeps its `(msg: string) => void` seam; `messageLog` adapts the server's logger to it.
 * The fields and events are listed in docs/observability.md.
 */
import { hostname } from 'node:os';
import pino from 'pino';

export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];
export const LOG_FORMATS = ['json', 'text'] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];

export interface LogFn {
  (fields: object, msg: string): void;
  (msg: string): void;
}

/** What components log through. Check `isLevelEnabled` before building fields on a busy path. */
export interface Logger {
  trace: LogFn;
  debug: LogFn;
  info: LogFn;
  warn: LogFn;
  error: LogFn;
  fatal: LogFn;
  isLevelEnabled(level: LogLevel): boolean;
  /** A logger whose records all carry `bindings` (e.g. `{ component: 'docker' }`). */
  child(bindings: Record<string, unknown>): Logger;
}

/** Something lines can be written to (process.stderr, a test's array). */
export interface LineSink { write(line: string): unknown }

export interface LoggerOptions {
  level?: LogLevel;
  format?: LogFormat;
  /** Where lines go; default stderr (written synchronously, so nothing is lost on exit). */
  sink?: LineSink;
}

/** The server's logger. */
export function createLogger(o: LoggerOptions = {}): Logger {
  const level = o.level ?? 'info';
  const base = { pid: process.pid, hostname: hostname() };
  if (o.format === 'text') {
    const out = o.sink ?? process.stderr;
    return pino({ level, base }, { write: (line: string) => out.write(`${formatRecord(JSON.parse(line) as LogRecord, true)}\n`) });
  }
  return pino({ level, base }, o.sink ?? pino.destination({ dest: 2, sync: true }));
}

/**
 * A logger that hands each record to `fn` as one line of text without time or level
 * (`model deployed model=m version=1`): for callers of startApp that pass a function, such as tests.
 */
export function textLogger(fn: (line: string) => void, level: LogLevel = 'info'): Logger {
  return pino({ level, base: null, timestamp: false }, { write: (line: string) => fn(formatRecord(JSON.parse(line) as LogRecord, false)) });
}

/** A logger that drops everything. */
export const silentLogger: Logger = pino({ enabled: false });

/** Adapts a logger to the `(msg: string) => void` seams of deep code: each message is one record at `level`. */
export function messageLog(logger: Logger, level: LogLevel = 'info'): (msg: string) => void {
  return (msg) => logger[level](msg);
}

/** An error as log fields: its message (and code), never a stack unless it is unexpected. */
export function errorFields(e: unknown, withStack = false): { err: string; code?: string; stack?: string } {
  const err = e instanceof Error ? e.message : String(e);
  const code = (e as { code?: unknown } | null)?.code;
  return {
    err,
    ...(typeof code === 'string' ? { code } : {}),
    ...(withStack && e instanceof Error && e.stack ? { stack: e.stack } : {}),
  };
}

type LogRecord = Record<string, unknown> & { level: number; time?: number; msg?: string };

const LEVEL_NAMES: Record<number, string> = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO', 40: 'WARN', 50: 'ERROR', 60: 'FATAL' };
const OMITTED = new Set(['level', 'time', 'msg', 'pid', 'hostname', 'stack']);

/** `2026-11-25T10:00:00.000Z INFO  msg key=value …` (or without time and level), a stack on the lines after. */
export function formatRecord(r: LogRecord, withTimeAndLevel: boolean): string {
  let s = withTimeAndLevel ? `${new Date(r.time ?? Date.now()).toISOString()} ${(LEVEL_NAMES[r.level] ?? String(r.level)).padEnd(5)} ${r.msg ?? ''}` : String(r.msg ?? '');
  for (const [k, v] of Object.entries(r)) {
    if (OMITTED.has(k) || v === undefined) continue;
    s += ` ${k}=${typeof v === 'string' && /^[^\s"=]+$/.test(v) ? v : JSON.stringify(v)}`;
  }
  return typeof r.stack === 'string' ? `${s}\n${r.stack}` : s;
}
