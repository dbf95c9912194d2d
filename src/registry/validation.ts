/** Field checks shared by the admin API and the registry service. Each throws a ServingError naming the field. */
import { ServingError } from '../errors.ts';
import { RUNTIMES, type Runtime } from './types.ts';

const NAME = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const VERSION = /^[A-Za-z0-9]([-A-Za-z0-9._]*[A-Za-z0-9])?$/;

export function checkName(value: unknown, field: string): string {
  if (typeof value !== 'string') throw new ServingError('INVALID_INPUT', `${field} must be a string`);
  if (value.length > 63 || !NAME.test(value)) {
    throw new ServingError('INVALID_NAME', `${field} ${JSON.stringify(value.slice(0, 80))} is not a valid name: use lower-case letters, digits and '-', starting and ending with a letter or digit, at most 63 characters`);
  }
  return value;
}

export function checkVersion(value: unknown, field = 'model_version'): string {
  if (typeof value === 'number' && Number.isInteger(value) && value >= 0) value = String(value);
  if (typeof value !== 'string') throw new ServingError('INVALID_INPUT', `${field} must be a string`);
  if (value.length > 63 || !VERSION.test(value)) {
    throw new ServingError('INVALID_NAME', `${field} ${JSON.stringify(value.slice(0, 80))} is not a valid version: letters, digits, '-', '.', '_', at most 63 characters`);
  }
  return value;
}

export function checkString(value: unknown, field: string, fallback?: string): string {
  if (value === undefined && fallback !== undefined) return fallback;
  if (typeof value !== 'string') throw new ServingError('INVALID_INPUT', `${field} must be a string`);
  return value;
}

export function checkInt(value: unknown, field: string, opts: { min: number; max?: number; fallback?: number }): number {
  if (value === undefined && opts.fallback !== undefined) return opts.fallback;
  if (typeof value === 'string' && /^-?\d+$/.test(value)) value = Number(value);
  if (typeof value !== 'number' || !Number.isInteger(value)) throw new ServingError('INVALID_INPUT', `${field} must be an integer`);
  if (value < opts.min) throw new ServingError('INVALID_INPUT', `${field} must be at least ${opts.min} (got ${value})`);
  if (opts.max !== undefined && value > opts.max) throw new ServingError('INVALID_INPUT', `${field} must be at most ${opts.max} (got ${value})`);
  return value;
}

export function checkNumber(value: unknown, field: string, opts: { min: number; max?: number; fallback?: number }): number {
  if (value === undefined && opts.fallback !== undefined) return opts.fallback;
  if (typeof value === 'string' && value.trim() !== '' && Number.isFinite(Number(value))) value = Number(value);
  if (typeof value !== 'number' || !Number.isFinite(value)) throw new ServingError('INVALID_INPUT', `${field} must be a number`);
  if (value < opts.min) throw new ServingError('INVALID_INPUT', `${field} must be at least ${opts.min} (got ${value})`);
  if (opts.max !== undefined && value > opts.max) throw new ServingError('INVALID_INPUT', `${field} must be at most ${opts.max} (got ${value})`);
  return value;
}

export function checkBool(value: unknown, field: string, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  if (typeof value !== 'boolean') throw new ServingError('INVALID_INPUT', `${field} must be true or false`);
  return value;
}

export function checkStringList(value: unknown, field: string, fallback?: string[]): string[] {
  if (value === undefined && fallback) return fallback;
  if (!Array.isArray(value) || !value.every((v) => typeof v === 'string')) throw new ServingError('INVALID_INPUT', `${field} must be a list of strings`);
  return value as string[];
}

export function checkRuntime(value: unknown): Runtime {
  if (value === undefined) return 'js';
  if (typeof value === 'string' && (RUNTIMES as readonly string[]).includes(value)) return value as Runtime;
  throw new ServingError('INVALID_INPUT', `runtime must be one of ${RUNTIMES.join(', ')} (got ${describeValue(value)})`);
}

/** A value for an error message: a string quoted and cut short, anything else by its type (never serialized: it may be nested 100,000 deep). */
export function describeValue(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value.length > 80 ? `${value.slice(0, 80)}…` : value);
  if (typeof value === 'number' || typeof value === 'boolean' || value === null) return String(value);
  return Array.isArray(value) ? 'a list' : `a value of type ${typeof value}`;
}

/** The request body must be a JSON object. */
export function checkObject(body: unknown): Record<string, unknown> {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) throw new ServingError('INVALID_INPUT', 'request body must be a JSON object');
  return body as Record<string, unknown>;
}

/** A query's or feedback's user id (contextual selection): a non-empty string or a number. */
export function checkUid(v: unknown): string | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v === 'number' && Number.isFinite(v)) return String(v);
  if (typeof v !== 'string' || v.length === 0 || v.length > 256) throw new ServingError('INVALID_INPUT', 'uid must be a non-empty string (at most 256 characters) or a number');
  return v;
}
