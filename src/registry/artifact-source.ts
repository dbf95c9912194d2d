/**
 * Where a deploy's artifact may come from, decided before a byte of it is read.
 *
 * A `model_data_path` is accepted when, once symbolic links are resolved, it lies under the
 * artifact root; it may not contain `..`. It must be a regular file, or a directory whose tree
 * holds only regular files, directories and symbolic links that stay inside the tree. Devices,
 * FIFOs and sockets are refused (reading them never ends, or blocks), and so is anything on a
 * kernel pseudo-filesystem such as /proc or /sys (its files report one size and read another, or
 * never end). The walk adds up file sizes as it goes and stops at the byte limit.
 *
 * Everything here is fs/promises: a hostile path can make a deploy fail, never block the server.
 * The result is a plan that `artifacts.ts` copies; it re-checks each file as it opens it.
 */
import type { Stats } from 'node:fs';
import { lstat, readdir, realpath, statfs } from 'node:fs/promises';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { ServingError } from '../errors.ts';

export interface ArtifactPolicy {
  /** Absolute directory a `model_data_path` must lie under. */
  root: string;
  /** Largest total of file bytes a deploy may copy. */
  maxBytes: number;
}

/** One entry of a tree, `rel` being its path inside the tree ('' for a single-file artifact). */
export type PlanEntry =
  | { kind: 'dir'; rel: string }
  | { kind: 'file'; rel: string; size: number; mode: number; dev: number; ino: number }
  | { kind: 'link'; rel: string; target: string };

export interface ArtifactPlan {
  /** The path as the caller gave it (for messages). */
  given: string;
  /** The resolved (real) path to read from. */
  source: string;
  /** The name the copy gets: the last segment of the path as given (so `model.onnx -> blob` stays `model.onnx`). */
  name: string;
  isDir: boolean;
  /** Depth-first, names sorted, parents before children; for a file, one entry with rel ''. */
  entries: PlanEntry[];
  bytes: number;
}

const MAX_ENTRIES = 100_000;
const MAX_DEPTH = 64;
const PSEUDO_PREFIXES = ['/proc', '/sys'];
/** statfs(2) magic numbers of kernel pseudo-filesystems (linux/magic.h). */
const PSEUDO_FS = new Map<number, string>([
  [0x9fa0, 'procfs'], [0x62656572, 'sysfs'], [0x64626720, 'debugfs'], [0x74726163, 'tracefs'],
  [0x73636673, 'securityfs'], [0x27e0eb, 'cgroup'], [0x63677270, 'cgroup2'], [0xcafe4a11, 'bpf'],
  [0x62656570, 'configfs'], [0xde5e81e4, 'efivarfs'], [0x6165676c, 'pstore'], [0x1cd1, 'devpts'],
  [0x65735543, 'fusectl'], [0x19800202, 'mqueue'], [0x6e736673, 'nsfs'], [0xf97cff8c, 'selinuxfs'],
]);

const q = (s: string) => JSON.stringify(s);
const invalid = (msg: string) => new ServingError('ARTIFACT_INVALID', msg);

/** Resolves and vets `given` against the policy, and plans its copy; throws FORBIDDEN or ARTIFACT_INVALID saying why. */
export async function inspectArtifact(given: string, policy: ArtifactPolicy): Promise<ArtifactPlan> {
  if (given.length === 0 || given.includes('\0')) throw invalid('model_data_path must be a non-empty path without NUL bytes');
  if (given.split(/[\\/]+/).includes('..')) {
    throw new ServingError('FORBIDDEN', `model_data_path ${q(given)} contains '..'; give a path under the artifact root ${policy.root} without '..'`);
  }
  const lexical = resolve(policy.root, given);
  // Lexically outside: refused before the path is touched, so the answer says nothing about it.
  if (!isUnder(lexical, policy.root)) throw outsideRoot(given, '', policy.root);
  const rootReal = await realpath(policy.root).catch(() => {
    throw new ServingError('FORBIDDEN', `the artifact root ${policy.root} does not exist, so nothing can be deployed from it (start the server with --artifact-root)`);
  });
  const real = await realpath(lexical).catch((e: NodeJS.ErrnoException) => { throw unreadable(given, e); });
  if (!isUnder(real, rootReal)) throw outsideRoot(given, ' (through a symbolic link)', policy.root);
  const prefix = PSEUDO_PREFIXES.find((p) => isUnder(real, p));
  if (prefix) throw invalid(`model_data_path ${q(given)} is on ${prefix}, a kernel pseudo-filesystem; only regular files and directories can be deployed`);
  await refusePseudoFs(real, given);

  const name = lexical.split(sep).filter(Boolean).pop() ?? 'artifact';
  const top = await lstat(real).catch((e: NodeJS.ErrnoException) => { throw unreadable(given, e); });
  if (top.isFile()) {
    if (top.size > policy.maxBytes) throw tooBig(given, policy.maxBytes);
    return { given, source: real, name, isDir: false, entries: [fileEntry('', top)], bytes: top.size };
  }
  if (!top.isDirectory()) throw invalid(`model_data_path ${q(given)} is a ${kindOf(top)}; only regular files and directories can be deployed`);
  const plan: ArtifactPlan = { given, source: real, name, isDir: true, entries: [], bytes: 0 };
  await walk(plan, given, policy.maxBytes, real, '', top.dev, 0);
  return plan;
}

async function walk(plan: ArtifactPlan, given: string, maxBytes: number, dirAbs: string, rel: string, dirDev: number, depth: number): Promise<void> {
  if (depth > MAX_DEPTH) throw invalid(`model_data_path ${q(given)} is nested more than ${MAX_DEPTH} directories deep`);
  const names = (await readdir(dirAbs).catch((e: NodeJS.ErrnoException) => { throw unreadable(given, e, rel); })).sort();
  for (const n of names) {
    const abs = join(dirAbs, n);
    const r = rel ? `${rel}/${n}` : n;
    if (plan.entries.length >= MAX_ENTRIES) throw invalid(`model_data_path ${q(given)} holds more than ${MAX_ENTRIES} entries`);
    const st = await lstat(abs).catch((e: NodeJS.ErrnoException) => { throw unreadable(given, e, r); });
    if (st.dev !== dirDev) await refusePseudoFs(abs, `${given}: ${r}`);
    if (st.isSymbolicLink()) {
      const target = await realpath(abs).catch(() => { throw invalid(`model_data_path ${q(given)}: ${r} is a symbolic link that leads nowhere`); });
      if (!isUnder(target, plan.source)) throw invalid(`model_data_path ${q(given)}: ${r} is a symbolic link that points outside the artifact; only links inside it are copied`);
      plan.entries.push({ kind: 'link', rel: r, target: relative(dirname(abs), target) || '.' });
    } else if (st.isDirectory()) {
      plan.entries.push({ kind: 'dir', rel: r });
      await walk(plan, given, maxBytes, abs, r, st.dev, depth + 1);
    } else if (st.isFile()) {
      plan.bytes += st.size;
      if (plan.bytes > maxBytes) throw tooBig(given, maxBytes);
      plan.entries.push(fileEntry(r, st));
    } else {
      throw invalid(`model_data_path ${q(given)}: ${r} is a ${kindOf(st)}; only regular files, directories and links inside the artifact can be deployed`);
    }
  }
}

function outsideRoot(given: string, via: string, root: string): ServingError {
  return new ServingError('FORBIDDEN', `model_data_path ${q(given)}${via} is outside the artifact root ${root}; only paths under it can be deployed (start the server with --artifact-root to choose another directory)`);
}

function fileEntry(rel: string, st: Stats): PlanEntry {
  return { kind: 'file', rel, size: st.size, mode: st.mode & 0o777, dev: st.dev, ino: st.ino };
}

async function refusePseudoFs(path: string, what: string): Promise<void> {
  const fs = PSEUDO_FS.get((await statfs(path).catch(() => ({ type: 0 }))).type);
  if (fs) throw invalid(`model_data_path ${q(what)} is on ${fs}, a kernel pseudo-filesystem; only regular files and directories can be deployed`);
}

export function isUnder(path: string, dir: string): boolean {
  return path === dir || path.startsWith(dir.endsWith(sep) ? dir : dir + sep);
}

function kindOf(st: Stats): string {
  if (st.isFIFO()) return 'FIFO (named pipe)';
  if (st.isSocket()) return 'socket';
  if (st.isCharacterDevice()) return 'character device';
  if (st.isBlockDevice()) return 'block device';
  if (st.isSymbolicLink()) return 'symbolic link';
  return 'special file';
}

export function tooBig(given: string, maxBytes: number): ServingError {
  return invalid(`model_data_path ${q(given)} is larger than ${maxBytes} bytes, this server's limit for an artifact (maxArtifactBytes)`);
}

/** A path that cannot be read, said without anything read from it. */
export function unreadable(given: string, e: NodeJS.ErrnoException, rel = ''): ServingError {
  const where = rel ? `${q(given)}: ${rel}` : q(given);
  switch (e.code) {
    case 'ENOENT':
    case 'ENOTDIR': return invalid(`model_data_path ${where} does not exist`);
    case 'EACCES':
    case 'EPERM': return invalid(`model_data_path ${where} cannot be read by this server: permission denied`);
    case 'ELOOP': return invalid(`model_data_path ${where} is a loop of symbolic links`);
    default: return invalid(`model_data_path ${where} cannot be read (${e.code ?? 'error'})`);
  }
}
