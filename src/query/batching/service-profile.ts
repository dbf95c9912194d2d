/**
 * How long a batch of n inputs takes on one replica of a model version, learned online.
 * Each observed size keeps an exponentially weighted mean; sizes never seen are estimated from a
 * least-squares line latency ≈ a + b·n through the seen sizes (a, b ≥ 0). With one size seen,
 * a larger batch is assumed to cost proportionally more and a smaller one the same — the
 * pessimistic reading of both, since admission would rather shed than miss.
 */
const ALPHA = 0.2;
const MAX_SIZES = 64;

export class ServiceProfile {
  private readonly bySize = new Map<number, { ms: number; seenAt: number }>();
  private fit: { a: number; b: number } | undefined;
  private dirty = false;
  private tick = 0;

  get known(): boolean { return this.bySize.size > 0; }

  observe(n: number, ms: number): void {
    const e = this.bySize.get(n);
    this.tick++;
    if (e) {
      e.ms += ALPHA * (ms - e.ms);
      e.seenAt = this.tick;
    } else {
      this.bySize.set(n, { ms, seenAt: this.tick });
      if (this.bySize.size > MAX_SIZES) this.evictOldest();
    }
    this.dirty = true;
  }

  /** Estimated ms for a batch of n; 0 when nothing has been observed. */
  estimate(n: number): number {
    const e = this.bySize.get(n);
    if (e) return e.ms;
    if (this.bySize.size === 0) return 0;
    if (this.bySize.size === 1) {
      const [[n0, only]] = [...this.bySize];
      return n > n0! ? (only!.ms * n) / n0! : only!.ms;
    }
    const f = this.line();
    return f.a + f.b * n;
  }

  /** The sizes seen and their mean latency, for status. */
  table(): Array<{ batchSize: number; ms: number }> {
    return [...this.bySize].sort((x, y) => x[0] - y[0]).map(([batchSize, e]) => ({ batchSize, ms: e.ms }));
  }

  private line(): { a: number; b: number } {
    if (this.fit && !this.dirty) return this.fit;
    let sx = 0, sy = 0, sxx = 0, sxy = 0;
    const pts = [...this.bySize];
    for (const [x, { ms: y }] of pts) {
      sx += x; sy += y; sxx += x * x; sxy += x * y;
    }
    const k = pts.length;
    const den = k * sxx - sx * sx;
    let b = den === 0 ? 0 : (k * sxy - sx * sy) / den;
    if (b < 0) b = 0;
    let a = (sy - b * sx) / k;
    if (a < 0) {
      a = 0;
      b = sxy / sxx;
    }
    this.fit = { a, b };
    this.dirty = false;
    return this.fit;
  }

  private evictOldest(): void {
    let oldest: number | undefined;
    let at = Infinity;
    for (const [n, e] of this.bySize) if (e.seenAt < at) { at = e.seenAt; oldest = n; }
    if (oldest !== undefined) this.bySize.delete(oldest);
  }
}
