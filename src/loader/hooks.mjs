// Module hooks that run the TypeScript sources in production (the server, the CLI and the model
// containers): each .ts file is transformed by esbuild once, as it is loaded. Unlike tsx (which
// the tests use), names are not kept: tsx's keepNames wraps every closure the hot path creates in a
// call that sets its `name`, about a tenth of the time of a cached prediction.
//
// esbuild transforms in a helper process. It is stopped once loading goes quiet, so a running
// server or replica has no extra child process; a later .ts import starts it again.
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { stop, transform } from 'esbuild';

const TARGET = `node${process.versions.node}`;
const QUIET_MS = 100;
let pending = 0;
let idle;

export async function load(url, context, nextLoad) {
  if (!url.startsWith('file:') || !url.endsWith('.ts')) return nextLoad(url, context);
  const path = fileURLToPath(url);
  const source = await readFile(path, 'utf8');
  clearTimeout(idle);
  pending++;
  try {
    const out = await transform(source, { loader: 'ts', format: 'esm', target: TARGET, sourcemap: 'inline', sourcefile: path });
    return { format: 'module', source: out.code, shortCircuit: true };
  } finally {
    if (--pending === 0) {
      idle = setTimeout(() => void stop(), QUIET_MS);
      idle.unref();
    }
  }
}
