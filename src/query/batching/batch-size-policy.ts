/**
 * How many inputs the next batch for one replica may hold. Additive increase while batches finish
 * inside the latency budget, multiplicative decrease when one does not (see docs/batching.md).
 * No I/O: fed observations, asked for a size.
 */
export interface BatchSizeConfig {
  /** Fixed size (Clipper's batch_size); 0 = adaptive. */
  fixed: number;
  max: number;
  /** Additive step. */
  increase: number;
  /** Multiplicative factor on a miss (0..1). */
  backoff: number;
}

export const DEFAULT_BATCH_CONFIG: BatchSizeConfig = { fixed: 0, max: 256, increase: 2, backoff: 0.75 };

export class BatchSizePolicy {
  private size: number;

  constructor(private readonly cfg: BatchSizeConfig) {
    this.size = cfg.fixed > 0 ? cfg.fixed : 1;
  }

  current(): number {
    return Math.floor(this.size);
  }

  /**
   * A batch of `n` inputs took `latencyMs`; `budgetMs` is the share of the SLO the model may use.
   * Only a batch that was full can tell us the size is too small.
   */
  observe(n: number, latencyMs: number, budgetMs: number): void {
    if (this.cfg.fixed > 0) return;
    if (latencyMs > budgetMs) {
      this.size = Math.max(1, this.size * this.cfg.backoff);
    } else if (n >= this.current()) {
      this.size = Math.min(this.cfg.max, this.size + this.cfg.increase);
    }
  }
}
