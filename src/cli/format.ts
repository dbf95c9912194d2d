/** Output for people (aligned tables) or scripts (--json). */
export function table(rows: Array<Record<string, unknown>>, columns?: string[]): string {
  if (rows.length === 0) return '(none)';
  const cols = columns ?? Object.keys(rows[0]!);
  const cell = (v: unknown) => (v === null || v === undefined ? '-' : typeof v === 'object' ? JSON.stringify(v) : String(v));
  const widths = cols.map((c) => Math.max(c.length, ...rows.map((r) => cell(r[c]).length)));
  const line = (vals: string[]) => vals.map((v, i) => v.padEnd(widths[i]!)).join('  ').trimEnd();
  return [line(cols.map((c) => c.toUpperCase())), ...rows.map((r) => line(cols.map((c) => cell(r[c]))))].join('\n');
}

export function print(json: boolean, data: unknown, human: () => string): void {
  console.log(json ? JSON.stringify(data, null, 2) : human());
}

/** A progress line on a terminal; silent otherwise (CI, pipes). */
export function spinner(text: string): { stop(final?: string): void } {
  if (!process.stderr.isTTY) return { stop: () => {} };
  const frames = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];
  let i = 0;
  const started = Date.now();
  const timer = setInterval(() => {
    process.stderr.write(`\r${frames[i++ % frames.length]} ${text} ${((Date.now() - started) / 1000).toFixed(1)}s`);
  }, 80);
  return {
    stop(final) {
      clearInterval(timer);
      process.stderr.write(`\r\x1b[K${final ? `${final}\n` : ''}`);
    },
  };
}

/** A number for a column: '-' when missing, fewer decimals as it grows, k/M past ten thousand. */
export function num(x: number | null | undefined, digits = 1): string {
  if (x === null || x === undefined || !Number.isFinite(x)) return '-';
  const a = Math.abs(x);
  if (a >= 10_000_000) return `${(x / 1_000_000).toFixed(1)}M`;
  if (a >= 10_000) return `${(x / 1000).toFixed(1)}k`;
  if (a >= 1000) return x.toFixed(0);
  return x.toFixed(digits);
}

/** A 0..1 share as a percentage. */
export const pct = (fraction: number | null | undefined, digits = 1): string => num(fraction == null ? fraction : fraction * 100, digits);

export const mib = (bytes: number | null | undefined): string => num(bytes == null ? bytes : bytes / 2 ** 20, 1);

export const gib = (bytes: number | null | undefined): string => num(bytes == null ? bytes : bytes / 2 ** 30, 1);

/** Cuts `s` to `width` characters, marking the cut with '…'. */
export function truncate(s: string, width: number): string {
  if (width <= 0) return '';
  return s.length <= width ? s : `${s.slice(0, width - 1)}…`;
}

/** An htop-style meter: `[|||||     ]`, `width` inside the brackets. */
export function bar(fraction: number, width = 10): string {
  const f = Number.isFinite(fraction) ? Math.min(1, Math.max(0, fraction)) : 0;
  const n = Math.round(f * width);
  return `[${'|'.repeat(n)}${' '.repeat(width - n)}]`;
}
