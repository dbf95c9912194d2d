/**
 * The machines replicas may run on, as configured: one Docker engine each, reached as a Docker
 * context reaches it. Read from a machines file (JSON) or from repeated `--docker-host` values.
 *
 *   [
 *     { "name": "m1", "host": "unix:///var/run/docker.sock" },
 *     { "name": "m2", "host": "tcp://10.0.0.2:2376", "tls": { "certPath": "/etc/clipper/m2" } },
 *     { "name": "m3", "host": "tcp://10.0.0.3:2376", "tls": { "ca": "ca.pem", "cert": "cert.pem", "key": "key.pem" } },
 *     { "name": "m4", "host": "ssh://clipper@10.0.0.4" }
 *   ]
 *
 * Relative TLS paths are taken from the file's directory.
 */
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import type { EngineTls } from './docker/engine-client.ts';

export interface MachineConfig {
  /** Unique; what status, placement and log lines call the machine. */
  name: string;
  /** unix:///path/docker.sock, tcp://host:port or ssh://[user@]host[:port] */
  host: string;
  /** TLS for tcp:// (as docker --tlsverify --tlscacert --tlscert --tlskey, or DOCKER_CERT_PATH). */
  tls?: EngineTls;
  /** Copy artifacts into containers instead of bind-mounting; default: when the engine is not a unix socket. */
  copyArtifacts?: boolean;
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/;
const HOST = /^(unix:\/\/\/|\/|tcp:\/\/|https?:\/\/|ssh:\/\/)/;

/** Validates a parsed machines file; `baseDir` resolves relative TLS paths. */
export function parseMachines(input: unknown, baseDir = process.cwd()): MachineConfig[] {
  if (!Array.isArray(input) || input.length === 0) throw new Error('machines: expected a non-empty JSON array of {name, host, tls?}');
  const seen = new Set<string>();
  return input.map((raw, i) => {
    const at = `machines[${i}]`;
    if (typeof raw !== 'object' || raw === null) throw new Error(`${at}: expected an object`);
    const m = raw as Record<string, unknown>;
    const unknown = Object.keys(m).filter((k) => !['name', 'host', 'tls', 'copyArtifacts'].includes(k));
    if (unknown.length) throw new Error(`${at}: unknown field ${unknown.join(', ')}`);
    if (typeof m.name !== 'string' || !NAME.test(m.name)) throw new Error(`${at}: name must match ${NAME}`);
    if (seen.has(m.name)) throw new Error(`${at}: machine ${m.name} is named twice`);
    seen.add(m.name);
    if (typeof m.host !== 'string' || !HOST.test(m.host)) throw new Error(`${at} (${m.name}): host must be unix:///path, tcp://host:port or ssh://[user@]host`);
    const out: MachineConfig = { name: m.name, host: m.host };
    if (m.copyArtifacts !== undefined) {
      if (typeof m.copyArtifacts !== 'boolean') throw new Error(`${at} (${m.name}): copyArtifacts must be true or false`);
      out.copyArtifacts = m.copyArtifacts;
    }
    if (m.tls !== undefined) {
      if (typeof m.tls !== 'object' || m.tls === null) throw new Error(`${at} (${m.name}): tls must be an object`);
      const t = m.tls as Record<string, unknown>;
      const tls: EngineTls = {};
      for (const k of ['certPath', 'ca', 'cert', 'key'] as const) {
        if (t[k] === undefined) continue;
        if (typeof t[k] !== 'string') throw new Error(`${at} (${m.name}): tls.${k} must be a path`);
        tls[k] = resolve(baseDir, t[k]);
      }
      if (t.verify !== undefined) {
        if (typeof t.verify !== 'boolean') throw new Error(`${at} (${m.name}): tls.verify must be true or false`);
        tls.verify = t.verify;
      }
      if (!tls.certPath && !(tls.cert && tls.key)) throw new Error(`${at} (${m.name}): tls needs certPath, or cert and key`);
      out.tls = tls;
    }
    return out;
  });
}

export function loadMachinesFile(path: string): MachineConfig[] {
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new Error(`machines file ${path}: ${e instanceof Error ? e.message : String(e)}`);
  }
  return parseMachines(json, dirname(resolve(path)));
}

/**
 * Repeated `--docker-host` values: `host` or `name=host`; unnamed ones are m1, m2, ... by position.
 * `tls` (from DOCKER_TLS_VERIFY / DOCKER_CERT_PATH) applies to the tcp:// ones.
 */
export function machinesFromHosts(hosts: string[], tls?: EngineTls): MachineConfig[] {
  return parseMachines(hosts.map((h, i) => {
    const eq = h.indexOf('=');
    const named = eq > 0 && !h.slice(0, eq).includes('/');
    const host = named ? h.slice(eq + 1) : h;
    return { name: named ? h.slice(0, eq) : `m${i + 1}`, host, ...(tls && host.startsWith('tcp://') ? { tls } : {}) };
  }));
}
