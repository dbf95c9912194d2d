/**
 * `clipper top`: polls `GET /admin/status` and redraws the frame from top-render.ts in place.
 * On a terminal it takes the alternate screen and hides the cursor, and gives both back on q,
 * Ctrl-C or SIGTERM; elsewhere (a pipe) it prints plain frames one after another.
 */
import { ClipperHttpError, type ClipperClient } from '../client.ts';
import type { StatusJson } from './status-types.ts';
import { renderTop } from './top-render.ts';

export interface TopOptions {
  intervalMs: number;
  /** One plain frame, then exit. */
  once: boolean;
  /** The raw status once, then exit. */
  json: boolean;
  /** Columns when not on a terminal (default 120). */
  width?: number;
  /** The admin URL, for the header. */
  server: string;
}

const CSI = '\x1b[';
const ALT_SCREEN = `${CSI}?1049h`;
const MAIN_SCREEN = `${CSI}?1049l`;
const HIDE_CURSOR = `${CSI}?25l`;
const SHOW_CURSOR = `${CSI}?25h`;
const HOME = `${CSI}H`;
const CLEAR_LINE_END = `${CSI}K`;
const CLEAR_SCREEN_END = `${CSI}J`;

const PLAIN_WIDTH = 120;
const MIN_TIMEOUT_MS = 5000;

export async function runTop(client: ClipperClient, o: TopOptions): Promise<void> {
  if (o.json) {
    console.log(JSON.stringify(await client.status(), null, 2));
    return;
  }
  if (o.once) {
    const status = await client.status<StatusJson>();
    const width = o.width ?? (process.stdout.isTTY ? process.stdout.columns : PLAIN_WIDTH);
    process.stdout.write(`${renderTop(status, { width, now: Date.now(), server: o.server }).join('\n')}\n`);
    return;
  }
  await live(client, o);
}

function live(client: ClipperClient, o: TopOptions): Promise<void> {
  const out = process.stdout;
  const input = process.stdin;
  const tty = Boolean(out.isTTY);
  let status: StatusJson | undefined;
  let error: string | undefined;
  let lastOkAt: number | undefined;
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;

  const draw = () => {
    // One column spare: a full-width line would leave the cursor in the pending-wrap state, where
    // clearing to the end of the line erases the line's last character.
    const width = tty ? Math.max(20, out.columns - 1) : (o.width ?? PLAIN_WIDTH);
    const lines = renderTop(status, {
      width, height: tty ? out.rows : undefined, now: Date.now(), server: o.server, error, lastOkAt,
      hint: tty ? `every ${o.intervalMs / 1000}s  q quits` : undefined,
    });
    // Overwrite in place (home, each line then clear its rest, clear below): no blank frame, no flicker.
    if (tty) out.write(`${HOME}${lines.map((l) => `${l}${CLEAR_LINE_END}`).join('\r\n')}${CLEAR_SCREEN_END}`);
    else out.write(`${lines.join('\n')}\n\n`);
  };

  const refresh = async () => {
    try {
      status = await withTimeout(client.status<StatusJson>(), Math.max(MIN_TIMEOUT_MS, 2 * o.intervalMs));
      error = undefined;
      lastOkAt = Date.now();
    } catch (e) {
      error = describe(e);
    }
    if (stopped) return;
    draw();
    timer = setTimeout(() => void refresh(), o.intervalMs);
  };

  return new Promise<void>((resolve) => {
    const restoreOnExit = () => out.write(`${SHOW_CURSOR}${MAIN_SCREEN}`);
    const onKey = (key: Buffer) => {
      const k = key.toString();
      if (k === 'q' || k === 'Q' || k === '\x03') stop();
    };
    const stop = () => {
      if (stopped) return;
      stopped = true;
      clearTimeout(timer);
      out.off('resize', draw);
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      if (input.isTTY) {
        input.off('data', onKey);
        input.setRawMode(false);
        input.pause();
      }
      if (tty) {
        process.off('exit', restoreOnExit);
        restoreOnExit();
      }
      resolve();
    };

    if (tty) {
      out.write(`${ALT_SCREEN}${HIDE_CURSOR}`);
      // Last resort if something throws before stop(): never leave the terminal without a cursor.
      process.on('exit', restoreOnExit);
      out.on('resize', draw);
    }
    if (input.isTTY) {
      input.setRawMode(true);
      input.resume();
      input.on('data', onKey);
    }
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
    void refresh();
  });
}

function describe(e: unknown): string {
  if (e instanceof ClipperHttpError) return e.code === 'UNREACHABLE' ? `server unreachable (${e.message})` : `status failed: ${e.code}: ${e.message}`;
  return `status failed: ${(e as Error).message}`;
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms / 1000} s`)), ms);
  });
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}
