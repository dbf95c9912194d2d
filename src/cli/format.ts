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
