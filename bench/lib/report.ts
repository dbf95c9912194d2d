/**
 * docs/performance.md is made of sections, one per scenario, each between
 * `<!-- bench:NAME -->` and `<!-- /bench:NAME -->`; a run rewrites the sections it measured
 * and the header (machine, date, commit), and keeps the others.
 */
import { execSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';

export interface Section { name: string; markdown: string }

export function machine(): string {
  const cpu = cpus();
  let commit = 'unknown';
  try {
    commit = execSync('git rev-parse --short HEAD', { stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim();
  } catch {
    // not a git checkout
  }
  return `${cpu.length} × ${cpu[0]?.model ?? 'unknown CPU'}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}, ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC, commit ${commit}`;
}

export function table(header: string[], rows: Array<Array<string | number>>): string {
  const fmt = (v: string | number) => (typeof v === 'number' ? (Number.isInteger(v) ? v.toLocaleString('en-US') : v.toFixed(2)) : v);
  return [`| ${header.join(' | ')} |`, `|${header.map(() => '---').join('|')}|`, ...rows.map((r) => `| ${r.map(fmt).join(' | ')} |`)].join('\n');
}

const HEADER = `# Performance

Measured by \`npm run bench\` (one scenario: \`npm run bench -- <name>\`), each scenario in one run
with its baseline, on the machine named in the scenario. **The machine has 2 cores, shared by the
load generator (autocannon, its own process), the server and the model containers**: every
figure here is what is left after the load generator's share. The \`fastpath\` scenario loads with
wrk instead (Debian's C load generator, \`/usr/bin/wrk\`), which leaves more of the two cores to the server.
`;

export function writeReport(file: string, sections: Section[]): void {
  let text = existsSync(file) ? readFileSync(file, 'utf8') : HEADER;
  if (!text.startsWith('# Performance')) text = HEADER;
  for (const s of sections) {
    const block = `<!-- bench:${s.name} -->\n${s.markdown.trim()}\n<!-- /bench:${s.name} -->`;
    const re = new RegExp(`<!-- bench:${s.name} -->[\\s\\S]*?<!-- /bench:${s.name} -->`);
    text = re.test(text) ? text.replace(re, block) : `${text.trimEnd()}\n\n${block}\n`;
  }
  writeFileSync(file, text.endsWith('\n') ? text : `${text}\n`);
}
