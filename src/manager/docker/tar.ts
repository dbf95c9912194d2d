/**
 * A small POSIX ustar writer (PAX records for names or link targets over 100 bytes), enough for
 * what the Engine API takes as tar: a root filesystem to import (image-build.ts) and a model
 * artifact copied into a container on an engine that does not share our filesystem
 * (`PUT /containers/{id}/archive`). Entries are owned by root; file contents are streamed.
 */
import { createReadStream, lstatSync, readdirSync, readlinkSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import { Readable } from 'node:stream';

export type TarEntry =
  | { path: string; kind: 'dir'; mode: number }
  | { path: string; kind: 'file'; mode: number; size: number; src: string }
  | { path: string; kind: 'data'; mode: number; data: Buffer }
  | { path: string; kind: 'symlink'; target: string };

/** `path` is relative to the archive's root (no leading slash needed; one is dropped). */
export async function* tarStream(entries: Iterable<TarEntry>, mtime = Math.floor(Date.now() / 1000)): AsyncGenerator<Buffer> {
  for (const e of entries) {
    const name = e.path.replace(/^\/+/, '') + (e.kind === 'dir' ? '/' : '');
    const linkname = e.kind === 'symlink' ? e.target : '';
    const size = e.kind === 'file' ? e.size : e.kind === 'data' ? e.data.length : 0;
    const type = { dir: '5', file: '0', data: '0', symlink: '2' }[e.kind];
    const mode = e.kind === 'symlink' ? 0o777 : e.mode;
    if (Buffer.byteLength(name) > 100 || Buffer.byteLength(linkname) > 100) {
      const pax = Buffer.from(paxRecord('path', name) + (linkname ? paxRecord('linkpath', linkname) : ''));
      yield header(`PaxHeaders/${basename(name)}`.slice(0, 99), 0o644, pax.length, 'x', '', mtime);
      yield pad(pax);
    }
    yield header(name.slice(0, 100), mode, size, type, linkname.slice(0, 100), mtime);
    if (e.kind === 'data') yield pad(e.data);
    if (e.kind === 'file') {
      let read = 0;
      for await (const chunk of createReadStream(e.src, { highWaterMark: 1 << 20 }) as AsyncIterable<Buffer>) {
        read += chunk.length;
        if (read > size) throw new Error(`${e.src} grew while it was being archived`);
        yield chunk;
      }
      if (read !== size) throw new Error(`${e.src} shrank while it was being archived`);
      if (size % 512) yield Buffer.alloc(512 - (size % 512));
    }
  }
  yield Buffer.alloc(1024);
}

/** A byte stream of `tarStream`, for an HTTP body. */
export function tarReadable(entries: Iterable<TarEntry>): Readable {
  return Readable.from(tarStream(entries), { objectMode: false });
}

/**
 * A host file or directory tree as entries under `to` (with its parent directories), symlinks kept
 * as links. The order is parents first, as an extractor needs.
 */
export function hostTreeEntries(from: string, to: string): TarEntry[] {
  const out: TarEntry[] = [];
  const parts = to.replace(/^\/+|\/+$/g, '').split('/');
  for (let i = 1; i < parts.length; i++) out.push({ path: parts.slice(0, i).join('/'), kind: 'dir', mode: 0o755 });
  const root = parts.join('/');
  const add = (src: string, dst: string) => {
    const st = lstatSync(src);
    if (st.isSymbolicLink()) out.push({ path: dst, kind: 'symlink', target: readlinkSync(src) });
    else if (st.isDirectory()) {
      out.push({ path: dst, kind: 'dir', mode: st.mode & 0o7777 });
      for (const name of readdirSync(src).sort()) add(join(src, name), `${dst}/${name}`);
    } else if (st.isFile()) out.push({ path: dst, kind: 'file', mode: st.mode & 0o7777, size: st.size, src });
    // sockets, fifos and devices have no place in a model artifact
  };
  // The artifact itself is followed if it is a link (the data directory may link to it).
  const st = statSync(from);
  if (st.isDirectory()) {
    out.push({ path: root, kind: 'dir', mode: st.mode & 0o7777 });
    for (const name of readdirSync(from).sort()) add(join(from, name), `${root}/${name}`);
  } else out.push({ path: root, kind: 'file', mode: st.mode & 0o7777, size: st.size, src: from });
  return out;
}

function paxRecord(key: string, value: string): string {
  const body = ` ${key}=${value}\n`;
  let len = Buffer.byteLength(body) + 1;
  while (String(len).length + Buffer.byteLength(body) !== len) len = String(len).length + Buffer.byteLength(body);
  return `${len}${body}`;
}

function pad(b: Buffer): Buffer {
  return b.length % 512 ? Buffer.concat([b, Buffer.alloc(512 - (b.length % 512))]) : b;
}

function header(name: string, mode: number, size: number, type: string, linkname: string, mtime: number): Buffer {
  const h = Buffer.alloc(512);
  const put = (s: string, off: number, len: number) => h.write(s, off, len, 'utf8');
  const octal = (n: number, off: number, len: number) => put(n.toString(8).padStart(len - 1, '0') + '\0', off, len);
  put(name, 0, 100);
  octal(mode, 100, 8);
  octal(0, 108, 8);
  octal(0, 116, 8);
  octal(size, 124, 12);
  octal(mtime, 136, 12);
  put('        ', 148, 8);
  put(type, 156, 1);
  put(linkname, 157, 100);
  put('ustar\u000000', 257, 8);
  put('root', 265, 32);
  put('root', 297, 32);
  let sum = 0;
  for (const b of h) sum += b;
  put(sum.toString(8).padStart(6, '0') + '\0 ', 148, 8);
  return h;
}
