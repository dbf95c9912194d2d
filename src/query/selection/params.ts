/**
 * Parameter validation shared by the policies, and tolerant readers used at query time (params
 * stored before a default changed, or never validated, still work: bad values fall back to the
 * default instead of failing queries).
 */
import type { Params } from './types.ts';

const show = (v: unknown): string => (v === undefined ? 'undefined' : JSON.stringify(v) ?? String(v));

export function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Validation context for one policy: errors read `<policy>: parameter "<name>" ...`. */
export class ParamChecker {
  readonly params: Params;

  constructor(readonly policy: string, raw: unknown, allowed: readonly string[]) {
    if (raw === undefined || raw === null) raw = {};
    if (!isPlainObject(raw)) throw new Error(`${policy}: params must be an object (got ${show(raw)})`);
    const unknown = Object.keys(raw).filter((k) => !allowed.includes(k));
    if (unknown.length > 0) {
      const accepted = allowed.length ? allowed.map((k) => `"${k}"`).join(', ') : 'none';
      throw new Error(`${policy}: unknown parameter "${unknown[0]}" (accepted: ${accepted})`);
    }
    this.params = raw;
  }

  fail(name: string, what: string): never {
    throw new Error(`${this.policy}: parameter "${name}" ${what} (got ${show(this.params[name])})`);
  }

  /** A finite number within [min, max] (`min` exclusive when `minExclusive`); `def` when absent. */
  number(name: string, def: number | undefined, range: { min?: number; max?: number; minExclusive?: boolean }): number | undefined {
    const v = this.params[name];
    if (v === undefined) return def;
    const { min = -Infinity, max = Infinity, minExclusive = false } = range;
    const bounds = `${minExclusive ? '>' : '>='} ${min}${max < Infinity ? ` and <= ${max}` : ''}`;
    if (typeof v !== 'number' || !Number.isFinite(v)) this.fail(name, `must be a number ${bounds}`);
    if ((minExclusive ? v <= min : v < min) || v > max) this.fail(name, `must be ${bounds}`);
    return v;
  }

  /** One of the linked models; `undefined` when absent. */
  model(name: string, models: readonly string[]): string | undefined {
    const v = this.params[name];
    if (v === undefined) return undefined;
    if (typeof v !== 'string') this.fail(name, 'must be a model name');
    if (!models.includes(v)) this.fail(name, `must be a linked model (linked: ${listModels(models)})`);
    return v;
  }
}

export function listModels(models: readonly string[]): string {
  return models.length ? models.join(', ') : 'none';
}

/** Query-time reader: the param when it is a finite number within [min, max], else `def`. */
export function numParam(params: Params | undefined, name: string, def: number, min = -Infinity, max = Infinity): number {
  const v = params?.[name];
  return typeof v === 'number' && Number.isFinite(v) && v >= min && v <= max ? v : def;
}

/** The optional numeric loss scale (see loss.ts), shared by the learning policies. */
export function lossScale(params: Params | undefined): number | undefined {
  const v = params?.lossScale;
  return typeof v === 'number' && Number.isFinite(v) && v > 0 ? v : undefined;
}

export function requireModels(policy: string, models: readonly string[]): void {
  if (models.length === 0) throw new Error(`${policy}: no models are linked to the application`);
}
