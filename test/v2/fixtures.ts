/** The shared KServe reference files (../shared/fixtures/kserve, see its README). */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export const KSERVE_DIR = fileURLToPath(new URL('../../../shared/fixtures/kserve/', import.meta.url));
export const KSERVE_PRESENT = existsSync(`${KSERVE_DIR}README.md`) && existsSync(`${KSERVE_DIR}grpc_predict_v2.proto`);
export const KSERVE_SKIP: string | false = KSERVE_PRESENT ? false : `KServe reference files not found at ${KSERVE_DIR}; fixture checks skipped`;

export const PY = '/usr/bin/python3';
const YAML_OK = KSERVE_PRESENT && existsSync(PY) && spawnSync(PY, ['-c', 'import yaml, json'], { stdio: 'ignore' }).status === 0;
export const YAML_SKIP: string | false = KSERVE_SKIP || (YAML_OK ? false : `needs Debian python3-yaml under ${PY} to read rest_predict_v2.yaml`);

export function fixtureText(name: string): string {
  return readFileSync(`${KSERVE_DIR}${name}`, 'utf8');
}

export function fixtureJson(name: string): unknown {
  return JSON.parse(fixtureText(name));
}

/** rest_predict_v2.yaml as a JSON value, converted by Debian's python3-yaml. */
export function loadOpenApi(): Record<string, unknown> {
  const r = spawnSync(PY, ['-c', 'import sys, json, yaml; json.dump(yaml.safe_load(open(sys.argv[1], encoding="utf-8")), sys.stdout)', `${KSERVE_DIR}rest_predict_v2.yaml`], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`python3-yaml could not read rest_predict_v2.yaml: ${r.stderr}`);
  return JSON.parse(r.stdout) as Record<string, unknown>;
}
