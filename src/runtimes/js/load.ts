import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { PredictFn } from '../sdk.ts';

const ENTRY_NAMES = ['index.ts', 'index.mjs', 'index.js', 'model.ts', 'model.mjs', 'model.js', 'predict.ts', 'predict.mjs', 'predict.js'];

export function resolveJsEntry(path: string): string {
  if (!path || !existsSync(path)) throw new Error(`model path ${JSON.stringify(path)} does not exist`);
  if (!statSync(path).isDirectory()) return path;
  const entry = ENTRY_NAMES.map((n) => join(path, n)).find((p) => existsSync(p));
  if (!entry) throw new Error(`directory ${path} has no ${ENTRY_NAMES.join(' / ')}`);
  return entry;
}

/** Imports the module and returns its predict function; throws a message that says what is wrong. */
export async function loadJsModel(path: string): Promise<PredictFn> {
  const entry = resolveJsEntry(path);
  const mod = (await import(pathToFileURL(entry).href)) as { predict?: unknown; default?: { predict?: unknown } | unknown };
  const predict = mod.predict ?? (typeof mod.default === 'function' ? mod.default : (mod.default as { predict?: unknown } | undefined)?.predict);
  if (typeof predict !== 'function') throw new Error(`${entry} does not export a predict(inputs) function`);
  return predict as PredictFn;
}
