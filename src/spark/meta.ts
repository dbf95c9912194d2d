/** Typed access to a stage's saved params (paramMap overrides defaultParamMap; both may be absent in old Spark). */

export class StageMeta {
  readonly className: string;
  readonly uid: string;
  readonly sparkVersion: string;
  readonly raw: Record<string, unknown>;
  private readonly params: Record<string, unknown>;
  private readonly defaults: Record<string, unknown>;

  constructor(raw: Record<string, unknown>) {
    this.raw = raw;
    this.className = String(raw.class);
    this.uid = String(raw.uid ?? '');
    this.sparkVersion = String(raw.sparkVersion ?? '0.0.0');
    this.params = (raw.paramMap as Record<string, unknown>) ?? {};
    this.defaults = (raw.defaultParamMap as Record<string, unknown>) ?? {};
  }

  get shortName(): string {
    return this.className.slice(this.className.lastIndexOf('.') + 1);
  }

  get majorVersion(): number {
    return parseInt(this.sparkVersion, 10) || 0;
  }

  /** Whether the param was explicitly set (paramMap) */
  isSet(name: string): boolean {
    return name in this.params;
  }

  has(name: string): boolean {
    return name in this.params || name in this.defaults;
  }

  any(name: string): unknown {
    if (name in this.params) return this.params[name];
    return this.defaults[name];
  }

  str(name: string, dflt?: string): string {
    const v = this.any(name);
    if (v === undefined || v === null) {
      if (dflt === undefined) throw new Error(`${this.shortName} ${this.uid}: param ${name} is missing`);
      return dflt;
    }
    return String(v);
  }

  optStr(name: string): string | undefined {
    const v = this.any(name);
    return v === undefined || v === null ? undefined : String(v);
  }

  num(name: string, dflt?: number): number {
    const v = this.any(name);
    if (v === undefined || v === null) {
      if (dflt === undefined) throw new Error(`${this.shortName} ${this.uid}: param ${name} is missing`);
      return dflt;
    }
    return toDouble(v);
  }

  bool(name: string, dflt: boolean): boolean {
    const v = this.any(name);
    if (v === undefined || v === null) return dflt;
    return v === true || v === 'true';
  }

  strArr(name: string): string[] | undefined {
    const v = this.any(name);
    return Array.isArray(v) ? v.map(String) : undefined;
  }

  numArr(name: string): number[] | undefined {
    const v = this.any(name);
    return Array.isArray(v) ? v.map(toDouble) : undefined;
  }

  /** inputCol/outputCol or inputCols/outputCols, as parallel arrays. */
  ioCols(): { inputs: string[]; outputs: string[] } {
    if (this.isSet('inputCols') || (!this.isSet('inputCol') && this.has('inputCols'))) {
      const inputs = this.strArr('inputCols') ?? [];
      const outputs = this.strArr('outputCols') ?? inputs.map((c) => `${this.uid}__${c}`);
      return { inputs, outputs };
    }
    return { inputs: [this.str('inputCol')], outputs: [this.str('outputCol', `${this.uid}__output`)] };
  }
}

/** JSON doubles: Spark writes non-finite values as "Inf", "-Inf", "NaN". */
export function toDouble(v: unknown): number {
  if (typeof v === 'number') return v;
  if (typeof v === 'bigint') return Number(v);
  if (typeof v === 'string') {
    if (v === 'Inf' || v === 'Infinity' || v === '+Inf') return Infinity;
    if (v === '-Inf' || v === '-Infinity') return -Infinity;
    if (v === 'NaN') return NaN;
    return Number(v);
  }
  if (typeof v === 'boolean') return v ? 1 : 0;
  return NaN;
}
