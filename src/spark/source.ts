/** Access to the files of a saved Spark model: a directory on disk or a zip of it. */
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { unzipSync } from 'fflate';
import { parquetReadObjects } from 'hyparquet';
import { NotASparkModelError } from './errors.ts';

export class ModelFiles {
  /** relative path ('/'-separated, no leading slash) -> loader */
  private constructor(
    private readonly files: Map<string, () => Uint8Array>,
    readonly origin: string,
  ) {}

  static open(path: string): ModelFiles {
    let st;
    try {
      st = statSync(path);
    } catch {
      throw new NotASparkModelError(`${path}: no such file or directory`);
    }
    if (st.isDirectory()) return ModelFiles.fromDirectory(path);
    return ModelFiles.fromZip(path, readFileSync(path));
  }

  private static fromDirectory(root: string): ModelFiles {
    const files = new Map<string, () => Uint8Array>();
    const walk = (dir: string, rel: string): void => {
      for (const e of readdirSync(dir, { withFileTypes: true })) {
        const abs = join(dir, e.name);
        const r = rel ? `${rel}/${e.name}` : e.name;
        if (e.isDirectory()) walk(abs, r);
        else if (e.isFile()) files.set(r, () => readFileSync(abs));
      }
    };
    walk(root, '');
    if (![...files.keys()].some((k) => /^metadata\/part-/.test(k))) {
      throw new NotASparkModelError(
        `${root} is not a saved Spark ML model: it has no metadata/part-* file ` +
          '(model.save(path) writes metadata/ with a JSON part file, plus data/ or stages/)',
      );
    }
    return new ModelFiles(files, root);
  }

  private static fromZip(path: string, bytes: Uint8Array): ModelFiles {
    if (bytes.length < 4 || bytes[0] !== 0x50 || bytes[1] !== 0x4b) {
      throw new NotASparkModelError(`${path} is neither a directory nor a zip archive of a saved Spark ML model`);
    }
    let entries: Record<string, Uint8Array>;
    try {
      entries = unzipSync(bytes);
    } catch (e) {
      throw new NotASparkModelError(`${path} is not a readable zip archive: ${(e as Error).message}`);
    }
    // the model root is the shallowest folder holding metadata/part-*
    let root: string | undefined;
    for (const name of Object.keys(entries)) {
      const m = /^(.*?)metadata\/part-[^/]*$/.exec(name);
      if (m && (root === undefined || m[1].length < root.length)) root = m[1];
    }
    if (root === undefined) {
      throw new NotASparkModelError(
        `${path} is a zip archive but not of a saved Spark ML model: it has no metadata/part-* file`,
      );
    }
    const files = new Map<string, () => Uint8Array>();
    for (const [name, data] of Object.entries(entries)) {
      if (name.startsWith(root) && !name.endsWith('/')) files.set(name.slice(root.length), () => data);
    }
    return new ModelFiles(files, path);
  }

  /** Names of the immediate children (files or folders) of dir. */
  children(dir: string): string[] {
    const prefix = dir ? `${dir}/` : '';
    const out = new Set<string>();
    for (const k of this.files.keys()) {
      if (k.startsWith(prefix)) out.add(k.slice(prefix.length).split('/')[0]);
    }
    return [...out].sort();
  }

  has(dir: string): boolean {
    const prefix = `${dir}/`;
    for (const k of this.files.keys()) if (k.startsWith(prefix)) return true;
    return false;
  }

  /** part-* files of a folder (no .crc, no _SUCCESS), sorted by name. */
  partFiles(dir: string): string[] {
    return this.children(dir)
      .filter((n) => n.startsWith('part-') && !n.endsWith('.crc') && this.files.has(`${dir}/${n}`))
      .map((n) => `${dir}/${n}`);
  }

  read(path: string): Uint8Array {
    const f = this.files.get(path);
    if (!f) throw new NotASparkModelError(`${this.origin}: missing file ${path}`);
    return f();
  }

  /** The JSON of <dir>/metadata/part-* (first part file, first line). */
  readMetadata(dir: string): Record<string, unknown> {
    const where = dir ? `${dir}/metadata` : 'metadata';
    const parts = this.partFiles(where);
    if (parts.length === 0) {
      throw new NotASparkModelError(`${this.origin}: ${where}/ has no part-* file; not a saved Spark ML model`);
    }
    const text = new TextDecoder().decode(this.read(parts[0]));
    const line = text.split('\n').find((l) => l.trim().length > 0) ?? '';
    let json: unknown;
    try {
      json = JSON.parse(line);
    } catch {
      throw new NotASparkModelError(`${this.origin}: ${parts[0]} is not Spark model metadata (not JSON)`);
    }
    if (!json || typeof json !== 'object' || typeof (json as { class?: unknown }).class !== 'string') {
      throw new NotASparkModelError(`${this.origin}: ${parts[0]} is not Spark model metadata (no "class" field)`);
    }
    return json as Record<string, unknown>;
  }

  /** All rows of every parquet part file in dir, in part-file order. */
  async readParquet(dir: string): Promise<Array<Record<string, any>>> {
    const parts = this.partFiles(dir).filter((p) => p.endsWith('.parquet'));
    if (parts.length === 0) throw new NotASparkModelError(`${this.origin}: ${dir}/ has no parquet part file`);
    const rows: Array<Record<string, any>> = [];
    for (const p of parts) {
      const b = this.read(p);
      const ab = b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer;
      const part = await parquetReadObjects({ file: ab });
      for (const r of part) rows.push(r);
    }
    return rows;
  }
}
