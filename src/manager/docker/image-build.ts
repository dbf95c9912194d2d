/**
 * Builds the runtime image `clipper-runtime:<version>` offline: no registry, no `docker build`.
 * A root filesystem is assembled as a tar stream straight from this machine — the Node binary
 * and the shared libraries `ldd` says it needs, /bin/sh, the project's src/, python/ and its
 * production node_modules, optionally Debian's python3 with numpy and pyzmq — and
 * handed to the engine's import endpoint (`docker import`). The Dockerfile at the repository
 * root builds an equivalent image where a registry is reachable.
 */
import { execFile } from 'node:child_process';
import { existsSync, lstatSync, readFileSync, readdirSync, readlinkSync, realpathSync, statSync } from 'node:fs';
import { basename, dirname, join, posix, relative, resolve } from 'node:path';
import { Readable } from 'node:stream';
import { REPO_ROOT } from '../launch.ts';
import { DockerEngine } from './engine-client.ts';
import { tarStream, type TarEntry } from './tar.ts';

/** Where the project lives inside the image. */
export const IMAGE_APP_DIR = '/app';
export const IMAGE_PYTHON_LABEL = 'clipper.python';
/** The TypeScript loader (src/loader) at its place inside the image. */
export const TS_LOADER_IN_IMAGE = `${IMAGE_APP_DIR}/src/loader/register.mjs`;

export function runtimeImageTag(): string {
  const pkg = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string };
  return `clipper-runtime:${pkg.version}`;
}

export interface BuildImageOptions {
  dockerHost: string;
  /** Default `clipper-runtime:<package.json version>`. */
  tag?: string;
  /** Include Debian's python3 + numpy + pyzmq (default: when they are installed here). */
  python?: boolean;
  log?: (msg: string) => void;
}

export interface BuiltImage { tag: string; files: number; bytes: number; seconds: number; python: boolean }

export async function buildRuntimeImage(opts: BuildImageOptions): Promise<BuiltImage> {
  const started = Date.now();
  const log = opts.log ?? (() => {});
  const tag = opts.tag ?? runtimeImageTag();
  const python = opts.python ?? pythonAvailable();
  const fs = new RootFs();
  const missing = await collect(fs, python);
  if (missing.length) log(`warning: ldd found no ${[...new Set(missing)].join(', ')}: whatever loads it will fail in the image`);
  const { files, bytes } = fs.totals();
  log(`runtime image ${tag}: ${files} files, ${mib(bytes)} MiB${python ? ' (with python3, numpy, pyzmq)' : ' (no python)'}; importing`);

  const engine = new DockerEngine(opts.dockerHost);
  try {
    const colon = tag.lastIndexOf(':');
    const [repo, version] = colon > tag.lastIndexOf('/') ? [tag.slice(0, colon), tag.slice(colon + 1)] : [tag, 'latest'];
    const changes = [
      'ENV PATH=/usr/local/bin:/usr/bin:/bin',
      `WORKDIR ${IMAGE_APP_DIR}`,
      // Run as is, the image is a js model container for the model at $CLIPPER_MODEL_PATH.
      `CMD ${JSON.stringify(['node', '--import', TS_LOADER_IN_IMAGE, `${IMAGE_APP_DIR}/src/runtimes/js/main.ts`])}`,
      `LABEL clipper.runtime=${version}`,
      ...(python ? [`LABEL ${IMAGE_PYTHON_LABEL}=1`] : []),
    ];
    await engine.importImage(Readable.from(fs.tar(), { objectMode: false }), repo, version, changes);
  } finally {
    engine.close();
  }
  const seconds = (Date.now() - started) / 1000;
  log(`runtime image ${tag}: built in ${seconds.toFixed(1)} s (${mib(bytes)} MiB)`);
  return { tag, files, bytes, seconds, python };
}

function pythonAvailable(): boolean {
  return existsSync('/usr/bin/python3') && ['numpy', 'zmq'].every((m) => existsSync(`/usr/lib/python3/dist-packages/${m}`));
}

const mib = (n: number) => (n / 1048576).toFixed(0);

// ---- what goes into the image ----

const SKIP_ALWAYS = /(^|\/)(__pycache__\/.*\.opt-\d\.pyc|.*\.d\.[mc]?ts|.*\.map)$/;

/** Returns ldd's complaints about libraries missing on this machine. */
async function collect(fs: RootFs, python: boolean): Promise<string[]> {
  const elves: string[] = [];
  fs.addDir('/tmp', 0o1777);
  fs.addDir('/root', 0o700);
  fs.addData('/etc/passwd', 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n');
  fs.addData('/etc/group', 'root:x:0:\nnogroup:x:65534:\n');
  // Stale entries are harmless (the loader falls back to its default directories) and it
  // finds libraries in non-default directories, e.g. Debian's BLAS alternatives.
  if (existsSync('/etc/ld.so.cache')) fs.addHostPath('/etc/ld.so.cache');

  elves.push(fs.addHostPath(process.execPath));
  fs.addSymlink('/usr/local/bin/node', realpathSync(process.execPath));
  elves.push(fs.addHostPath('/bin/sh'));

  fs.addTree(join(REPO_ROOT, 'package.json'), `${IMAGE_APP_DIR}/package.json`);
  fs.addTree(join(REPO_ROOT, 'src'), `${IMAGE_APP_DIR}/src`);
  fs.addTree(join(REPO_ROOT, 'python', 'clipper_container'), `${IMAGE_APP_DIR}/python/clipper_container`);
  for (const dir of productionPackages(REPO_ROOT)) {
    const rel = relative(REPO_ROOT, dir);
    const name = packageName(rel);
    fs.addTree(dir, `${IMAGE_APP_DIR}/${rel}`, (r) => r.startsWith('node_modules/') || SKIP_ALWAYS.test(r) || skipInPackage(name, r), elves);
  }

  if (python) {
    const exe = realpathSync('/usr/bin/python3');
    elves.push(fs.addHostPath('/usr/bin/python3'));
    const stdlib = `/usr/lib/${basename(exe)}`;
    fs.addHostPath(stdlib);
    fs.addTree(stdlib, stdlib, (r) => SKIP_ALWAYS.test(r) || /^(test|idlelib|tkinter|turtledemo|ensurepip|lib2to3|config-[^/]*|site-packages)(\/|$)|_tkinter/.test(r), elves);
    for (const m of ['numpy', 'zmq']) {
      const dir = `/usr/lib/python3/dist-packages/${m}`;
      fs.addHostPath(dir);
      fs.addTree(dir, dir, (r) => SKIP_ALWAYS.test(r) || /(^|\/)tests?(\/|$)/.test(r), elves);
    }
  }

  const { libs, missing } = await sharedLibraries(elves);
  for (const lib of libs) if (!lib.startsWith(REPO_ROOT + '/')) fs.addHostPath(lib);
  return missing;
}

/** Native pieces the image does not need: other platforms' binaries, C++ sources, build objects. */
function skipInPackage(name: string, rel: string): boolean {
  const platform = `${process.platform}/${process.arch}`;
  switch (name) {
    case 'onnxruntime-node': {
      const m = /^bin\/napi-v\d+\/([^/]+\/[^/]+)\//.exec(rel);
      return !!m && m[1] !== platform;
    }
    case 'zeromq': {
      const m = /^build\/([^/]+)\/([^/]+)\//.exec(rel);
      // glibc builds only: the musl ones would want a loader this image does not have.
      return (!!m && `${m[1]}/${m[2]}` !== platform) || /^(src|script)\/|\/musl-/.test(rel);
    }
    case 'better-sqlite3':
      return /^(deps|src)\/|^build\/(deps|Release\/(obj|obj\.target|\.deps)|Release\/test_extension)/.test(rel);
    default:
      return false;
  }
}

function packageName(rel: string): string {
  const parts = rel.split('/');
  const i = parts.lastIndexOf('node_modules');
  const first = parts[i + 1] ?? '';
  return first.startsWith('@') ? `${first}/${parts[i + 2]}` : first;
}

/** Directories of the packages reachable from package.json's dependencies (not devDependencies), plus `extra`. */
export function productionPackages(root: string, extra: string[] = []): string[] {
  const pkgJson = (dir: string) => JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as Record<string, Record<string, string> | undefined>;
  const found = new Set<string>();
  const visit = (name: string, from: string, required: boolean) => {
    const dir = resolvePackage(name, from, root);
    if (!dir) {
      if (required) throw new Error(`package ${name} (needed by ${relative(root, from) || 'the project'}) is not installed: run npm install`);
      return;
    }
    if (found.has(dir)) return;
    found.add(dir);
    const p = pkgJson(dir);
    for (const dep of Object.keys(p.dependencies ?? {})) visit(dep, dir, !(dep in (p.optionalDependencies ?? {})));
    for (const dep of Object.keys({ ...p.optionalDependencies, ...p.peerDependencies })) visit(dep, dir, false);
  };
  const top = pkgJson(root);
  for (const dep of [...Object.keys(top.dependencies ?? {}), ...extra]) visit(dep, root, true);
  return [...found].sort();
}

/** Node's lookup: <dir>/node_modules/<name>, walking up from the requiring package to the root. */
function resolvePackage(name: string, from: string, root: string): string | undefined {
  for (let dir = from; ; dir = dirname(dir)) {
    const candidate = join(dir, 'node_modules', name);
    if (existsSync(join(candidate, 'package.json'))) return candidate;
    if (dir === root || dir === dirname(dir)) return undefined;
  }
}

/** Every shared library (and the dynamic loader) the given ELF files load, as absolute host paths. */
function sharedLibraries(files: string[]): Promise<{ libs: string[]; missing: string[] }> {
  return new Promise((resolveLibs, reject) => {
    // ldd exits 1 when one of the files is not dynamic (a script, a static binary); its output still counts.
    execFile('ldd', files, { maxBuffer: 64 << 20 }, (err, stdout) => {
      if (err && !stdout) return reject(new Error(`ldd failed: ${err.message}`));
      const libs = new Set<string>();
      const missing: string[] = [];
      for (const line of stdout.split('\n')) {
        // musl builds of an addon (zeromq ships some) are never loaded by a glibc Node.
        if (/=>\s*not found/.test(line) && !line.includes('musl')) missing.push(line.trim());
        const m = /=>\s*(\/\S+)/.exec(line) ?? /^\s*(\/\S+)\s+\(0x/.exec(line);
        if (m) libs.add(m[1]!);
      }
      resolveLibs({ libs: [...libs].sort(), missing });
    });
  });
}

// ---- the root filesystem and its tar stream ----

type Entry =
  | { kind: 'dir'; mode: number }
  | { kind: 'file'; mode: number; size: number; src: string }
  | { kind: 'data'; mode: number; data: Buffer }
  | { kind: 'symlink'; target: string };

const ELF = /\.(node|so)(\.\d+)*$/;

class RootFs {
  private readonly entries = new Map<string, Entry>();

  totals(): { files: number; bytes: number } {
    let files = 0;
    let bytes = 0;
    for (const e of this.entries.values()) {
      if (e.kind === 'file' || e.kind === 'data') {
        files++;
        bytes += e.kind === 'file' ? e.size : e.data.length;
      }
    }
    return { files, bytes };
  }

  addDir(path: string, mode = 0o755): void {
    this.parents(path);
    this.entries.set(path, { kind: 'dir', mode });
  }

  addData(path: string, text: string, mode = 0o644): void {
    this.parents(path);
    this.entries.set(path, { kind: 'data', mode, data: Buffer.from(text) });
  }

  addSymlink(path: string, target: string): void {
    this.parents(path);
    this.entries.set(path, { kind: 'symlink', target });
  }

  /**
   * Adds a host path at the same path in the image, keeping every symlink on the way
   * (/lib → usr/lib, /etc/alternatives/...) so links resolve inside the image as they do here.
   * Returns the real file's path.
   */
  addHostPath(path: string, depth = 0): string {
    if (depth > 40) throw new Error(`too many symlinks resolving ${path}`);
    const parts = path.split('/').filter(Boolean);
    let cur = '/';
    for (let i = 0; i < parts.length; i++) {
      const next = posix.join(cur, parts[i]!);
      const st = lstatSync(next);
      if (st.isSymbolicLink()) {
        const target = readlinkSync(next);
        this.addSymlink(next, target);
        return this.addHostPath(posix.join(resolve(cur, target), ...parts.slice(i + 1)), depth + 1);
      }
      cur = next;
    }
    const st = statSync(cur);
    if (st.isDirectory()) this.addDir(cur, st.mode & 0o7777);
    else this.addFile(cur, cur, st.mode & 0o7777, st.size);
    return cur;
  }

  /** A host file or directory tree copied to `to`; `skip` sees paths relative to `from`. ELF objects are pushed to `elves`. */
  addTree(from: string, to: string, skip: (rel: string) => boolean = () => false, elves: string[] = []): void {
    const st = statSync(from);
    if (!st.isDirectory()) {
      this.addFile(to, from, st.mode & 0o7777, st.size);
      return;
    }
    this.addDir(to, st.mode & 0o7777);
    const walk = (dir: string, rel: string) => {
      for (const d of readdirSync(dir, { withFileTypes: true })) {
        const r = rel ? `${rel}/${d.name}` : d.name;
        const src = join(dir, d.name);
        if (skip(d.isDirectory() ? `${r}/` : r)) continue;
        if (d.isSymbolicLink()) this.addSymlink(`${to}/${r}`, readlinkSync(src));
        else if (d.isDirectory()) {
          this.addDir(`${to}/${r}`, statSync(src).mode & 0o7777);
          walk(src, r);
        } else if (d.isFile()) {
          const fst = statSync(src);
          this.addFile(`${to}/${r}`, src, fst.mode & 0o7777, fst.size);
          if (ELF.test(d.name)) elves.push(src);
        }
      }
    };
    walk(from, '');
  }

  private addFile(path: string, src: string, mode: number, size: number): void {
    this.parents(path);
    this.entries.set(path, { kind: 'file', mode, size, src });
  }

  private parents(path: string): void {
    for (let dir = posix.dirname(path); dir !== '/' && !this.entries.has(dir); dir = posix.dirname(dir)) {
      this.parents(dir);
      this.entries.set(dir, { kind: 'dir', mode: 0o755 });
    }
  }

  /** A POSIX ustar stream (PAX records for long names), owned by root, ending with two zero blocks. */
  tar(): AsyncGenerator<Buffer> {
    return tarStream([...this.entries].map(([path, e]): TarEntry => ({ ...e, path })));
  }
}

