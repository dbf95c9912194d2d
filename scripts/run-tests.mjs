#!/usr/bin/env node
// Runs every test: Node's test runner over the *.test.ts files (listed explicitly: Node 20 does not
// expand globs), then the Python container library's unittest suite.
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync, existsSync } from 'node:fs';
import { join, relative } from 'node:path';

const root = join(import.meta.dirname, '..');
const only = process.argv.slice(2);

function find(dir) {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    return statSync(p).isDirectory() ? find(p) : name.endsWith('.test.ts') ? [p] : [];
  });
}

const files = find(join(root, 'test')).map((f) => relative(root, f)).sort()
  .filter((f) => only.length === 0 || only.some((o) => f.includes(o)));
if (files.length === 0) {
  console.error('no test files found');
  process.exit(1);
}
console.log(`running ${files.length} test files`);
const node = spawnSync(process.execPath, ['--import', 'tsx', '--test', '--test-concurrency=1', ...files], { cwd: root, stdio: 'inherit' });
let failed = node.status !== 0;

if (only.length === 0 || only.includes('python')) {
  const python = process.env.CLIPPER_PYTHON ?? '/usr/bin/python3';
  if (existsSync(join(root, 'python/tests'))) {
    const py = spawnSync(python, ['-m', 'unittest', 'discover', '-s', 'python/tests'], {
      cwd: root, stdio: 'inherit', env: { ...process.env, PYTHONPATH: join(root, 'python') },
    });
    failed ||= py.status !== 0;
  }
}
process.exit(failed ? 1 : 0);
