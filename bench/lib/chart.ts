/**
 * A static SVG of stacked time-series panels over one shared x axis, written by hand (no chart
 * library for one static image): per panel a title, a y axis with gridlines, a legend, lines
 * (optionally stepped or dashed) and horizontal reference lines; vertical markers cross every panel.
 */

export interface Series {
  name: string;
  color: string;
  points: Array<[number, number]>;
  /** Hold each value until the next point (counts, such as replicas). */
  step?: boolean;
  dash?: string;
  width?: number;
}

export interface Panel {
  title: string;
  yLabel: string;
  /** The y axis starts at 0; its top is the data's maximum (or at least this), rounded up. */
  yMin?: number;
  series: Series[];
  hlines?: Array<{ y: number; label: string; color: string }>;
}

export interface Chart {
  title: string;
  /** One line each. */
  subtitle: string[];
  xLabel: string;
  xDomain: [number, number];
  panels: Panel[];
  markers?: Array<{ x: number; label: string }>;
  width?: number;
  height?: number;
}

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
const f = (x: number) => (Math.round(x * 10) / 10).toString();

/** Round tick steps (1, 2, 5 × 10^k) giving about `count` ticks up to at least `max`. */
export function niceTicks(max: number, count = 4): number[] {
  const raw = Math.max(max, 1e-9) / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw)!;
  const top = Math.ceil(max / step - 1e-9) * step;
  const ticks: number[] = [];
  for (let v = 0; v <= top + step / 2; v += step) ticks.push(Math.round(v * 1e6) / 1e6);
  return ticks;
}

export function renderChart(c: Chart): string {
  const W = c.width ?? 1200;
  const H = c.height ?? 900;
  const left = 90, right = 30, top = 62 + 18 * c.subtitle.length, bottom = 58, gap = 26, head = 24;
  const plotW = W - left - right;
  const panelH = (H - top - bottom - gap * (c.panels.length - 1)) / c.panels.length;
  const [x0, x1] = c.xDomain;
  const sx = (x: number) => left + ((x - x0) / (x1 - x0)) * plotW;
  const xTicks: number[] = [];
  const xStep = niceTicks(x1 - x0, 10)[1]!;
  for (let v = Math.ceil(x0 / xStep) * xStep; v <= x1 + 1e-9; v += xStep) xTicks.push(Math.round(v * 1e6) / 1e6);

  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="DejaVu Sans, Helvetica, Arial, sans-serif">`);
  out.push(`<rect width="${W}" height="${H}" fill="#ffffff"/>`);
  out.push(`<text x="${W / 2}" y="30" text-anchor="middle" font-size="20" font-weight="bold" fill="#111">${esc(c.title)}</text>`);
  c.subtitle.forEach((line, k) => out.push(`<text x="${W / 2}" y="${52 + 18 * k}" text-anchor="middle" font-size="13" fill="#444">${esc(line)}</text>`));

  c.panels.forEach((p, k) => {
    const pt = top + k * (panelH + gap) + head; // plot top
    const ph = panelH - head; // plot height
    const ymax = Math.max(p.yMin ?? 0, ...p.series.flatMap((s) => s.points.map(([, y]) => y)), ...(p.hlines ?? []).map((h) => h.y * 1.1));
    const yTicks = niceTicks(ymax, 4);
    const yTop = yTicks[yTicks.length - 1]!;
    const sy = (y: number) => pt + ph - (Math.max(0, Math.min(y, yTop)) / yTop) * ph;

    out.push(`<text x="${left}" y="${pt - 8}" font-size="14" font-weight="bold" fill="#222">${esc(p.title)}</text>`);
    // Legend, right-aligned on the title line.
    let lx = left + plotW;
    const legend: string[] = [];
    for (const s of [...p.series].reverse()) {
      const w = 44 + s.name.length * 7.2;
      lx -= w;
      legend.push(`<line x1="${f(lx)}" y1="${pt - 12}" x2="${f(lx + 24)}" y2="${pt - 12}" stroke="${s.color}" stroke-width="${s.width ?? 2.5}"${s.dash ? ` stroke-dasharray="${s.dash}"` : ''}/>`);
      legend.push(`<text x="${f(lx + 29)}" y="${pt - 8}" font-size="12" fill="#333">${esc(s.name)}</text>`);
    }
    out.push(...legend);
    // Grid and y axis.
    for (const t of yTicks) {
      out.push(`<line x1="${left}" y1="${f(sy(t))}" x2="${left + plotW}" y2="${f(sy(t))}" stroke="${t === 0 ? '#888' : '#e3e3e3'}" stroke-width="1"/>`);
      out.push(`<text x="${left - 8}" y="${f(sy(t) + 4)}" text-anchor="end" font-size="12" fill="#333">${t.toLocaleString('en-US')}</text>`);
    }
    for (const t of xTicks) out.push(`<line x1="${f(sx(t))}" y1="${pt}" x2="${f(sx(t))}" y2="${pt + ph}" stroke="#f0f0f0" stroke-width="1"/>`);
    out.push(`<line x1="${left}" y1="${pt}" x2="${left}" y2="${pt + ph}" stroke="#888" stroke-width="1"/>`);
    out.push(`<text transform="translate(${left - 58} ${f(pt + ph / 2)}) rotate(-90)" text-anchor="middle" font-size="12" fill="#333">${esc(p.yLabel)}</text>`);
    // Markers.
    for (const m of c.markers ?? []) {
      out.push(`<line x1="${f(sx(m.x))}" y1="${pt}" x2="${f(sx(m.x))}" y2="${pt + ph}" stroke="#999" stroke-width="1" stroke-dasharray="3 3"/>`);
      if (k === 0) out.push(`<text x="${f(sx(m.x) + 4)}" y="${pt + 13}" font-size="11" fill="#666">${esc(m.label)}</text>`);
    }
    // Reference lines.
    for (const h of p.hlines ?? []) {
      out.push(`<line x1="${left}" y1="${f(sy(h.y))}" x2="${left + plotW}" y2="${f(sy(h.y))}" stroke="${h.color}" stroke-width="1.5" stroke-dasharray="8 4"/>`);
      out.push(`<text x="${left + plotW - 4}" y="${f(sy(h.y) - 5)}" text-anchor="end" font-size="12" fill="${h.color}">${esc(h.label)}</text>`);
    }
    // Series.
    out.push(`<clipPath id="clip${k}"><rect x="${left}" y="${pt - 2}" width="${plotW}" height="${ph + 4}"/></clipPath>`);
    for (const s of p.series) {
      if (s.points.length === 0) continue;
      const d: string[] = [];
      s.points.forEach(([x, y], i) => {
        if (i === 0) d.push(`M${f(sx(x))},${f(sy(y))}`);
        else {
          if (s.step) d.push(`H${f(sx(x))}`);
          d.push(`${s.step ? 'V' : 'L'}${s.step ? f(sy(y)) : `${f(sx(x))},${f(sy(y))}`}`);
        }
      });
      out.push(`<path d="${d.join('')}" fill="none" stroke="${s.color}" stroke-width="${s.width ?? 2.5}" stroke-linejoin="round"${s.dash ? ` stroke-dasharray="${s.dash}"` : ''} clip-path="url(#clip${k})"/>`);
    }
    // x tick labels under every panel, the axis title under the last.
    for (const t of xTicks) out.push(`<text x="${f(sx(t))}" y="${f(pt + ph + 14)}" text-anchor="middle" font-size="11" fill="#555">${t}</text>`);
  });
  out.push(`<text x="${left + plotW / 2}" y="${H - 14}" text-anchor="middle" font-size="13" fill="#333">${esc(c.xLabel)}</text>`);
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}
