/** The artifact walk (what may be deployed) and the copy (capped, checked file by file, one directory per registration). */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { appendFileSync, existsSync, mkdirSync, readFileSync, readlinkSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { dirname, join } from 'node:path';
import { describe, it } from 'node:test';
import { inspectArtifact, type ArtifactPlan } from '../../src/registry/artifact-source.ts';
import { removeArtifact, storeArtifact, sweepPartialArtifacts } from '../../src/registry/artifacts.ts';
import { tempDir } from '../helpers/server.ts';

const MB = 1024 * 1024;

function tree(): string {
  const root = tempDir('clipper-art-');
  mkdirSync(join(root, 'model', 'sub'), { recursive: true });
  writeFileSync(join(root, 'model', 'index.mjs'), 'export const predict = (xs) => xs;\n');
  writeFileSync(join(root, 'model', 'sub', 'weights.bin'), Buffer.alloc(1000, 7));
  return root;
}

const refusal = (code: string, mention: RegExp) => (e: any) => e.code === code && mention.test(e.message);

describe('inspectArtifact', () => {
  it('plans a tree depth-first with sorted names, counting bytes; links inside the tree are kept as links', async () => {
    const root = tree();
    symlinkSync('sub/weights.bin', join(root, 'model', 'alias.bin'));
    const plan = await inspectArtifact(join(root, 'model'), { root, maxBytes: MB });
    assert.deepEqual(plan.entries.map((e) => `${e.kind}:${e.rel}`), ['link:alias.bin', 'file:index.mjs', 'dir:sub', 'file:sub/weights.bin']);
    assert.equal(plan.bytes, 1000 + 35);
    assert.equal(plan.name, 'model');
    const link = plan.entries[0]!;
    assert.equal(link.kind === 'link' && link.target, 'sub/weights.bin');
  });

  it('takes relative paths from the root and keeps the given name of a linked file', async () => {
    const root = tree();
    symlinkSync('model/sub/weights.bin', join(root, 'model.onnx'));
    const plan = await inspectArtifact('model.onnx', { root, maxBytes: MB });
    assert.equal(plan.name, 'model.onnx');
    assert.equal(plan.source, join(root, 'model', 'sub', 'weights.bin'));
    assert.equal(plan.isDir, false);
  });

  it('refuses what is outside the root, with .., through a link, or not a file or directory', async () => {
    const root = tree();
    const policy = { root: join(root, 'model'), maxBytes: MB };
    await assert.rejects(inspectArtifact(root, policy), refusal('FORBIDDEN', /outside the artifact root/));
    await assert.rejects(inspectArtifact(`${root}/model/../model`, policy), refusal('FORBIDDEN', /'\.\.'/));
    symlinkSync(root, join(root, 'model', 'up'));
    await assert.rejects(inspectArtifact(join(root, 'model', 'up'), policy), refusal('FORBIDDEN', /through a symbolic link/));
    await assert.rejects(inspectArtifact(join(root, 'model'), policy), refusal('ARTIFACT_INVALID', /up is a symbolic link that points outside/));
    rmSync(join(root, 'model', 'up'));
    symlinkSync(join(root, 'nowhere'), join(root, 'model', 'dangling'));
    await assert.rejects(inspectArtifact(join(root, 'model'), policy), refusal('ARTIFACT_INVALID', /dangling is a symbolic link that leads nowhere/));
    rmSync(join(root, 'model', 'dangling'));
    const server = createServer();
    await new Promise<void>((r) => server.listen(join(root, 'model', 'sock'), r));
    try {
      await assert.rejects(inspectArtifact(join(root, 'model'), policy), refusal('ARTIFACT_INVALID', /sock is a socket/));
    } finally {
      server.close();
    }
    await assert.rejects(inspectArtifact('/dev/null', { root: '/', maxBytes: MB }), refusal('ARTIFACT_INVALID', /character device/));
    await assert.rejects(inspectArtifact('/proc/self/status', { root: '/', maxBytes: MB }), refusal('ARTIFACT_INVALID', /\/proc, a kernel pseudo-filesystem/));
    await assert.rejects(inspectArtifact('/sys/kernel', { root: '/', maxBytes: MB }), refusal('ARTIFACT_INVALID', /\/sys/));
    await assert.rejects(inspectArtifact('x\0y', policy), refusal('ARTIFACT_INVALID', /NUL/));
  });

  it('stops walking at the byte limit', async () => {
    const root = tree();
    await assert.rejects(inspectArtifact(join(root, 'model'), { root, maxBytes: 999 }), refusal('ARTIFACT_INVALID', /larger than 999 bytes/));
  });
});

describe('storeArtifact', () => {
  const plan = async (root: string, path = join(root, 'model')) => inspectArtifact(path, { root, maxBytes: MB });

  it('copies a tree with its links into a directory of its own; the same content hashes the same', async () => {
    const root = tree();
    symlinkSync('sub/weights.bin', join(root, 'model', 'alias.bin'));
    const store = tempDir('clipper-store-');
    const a = await storeArtifact(store, 'm', '1', await plan(root), MB);
    const b = await storeArtifact(store, 'm', '1', await plan(root), MB);
    assert.equal(a.hash, b.hash);
    assert.notEqual(a.path, b.path, 'each registration gets its own directory');
    assert.match(a.path, new RegExp(`/m/1-${a.hash.slice(0, 16)}-[0-9a-f]+/model$`));
    assert.deepEqual(readFileSync(join(a.path, 'sub', 'weights.bin')), Buffer.alloc(1000, 7));
    assert.equal(readlinkSync(join(a.path, 'alias.bin')), 'sub/weights.bin');
    await removeArtifact(store, a.path);
    assert.ok(!existsSync(dirname(a.path)));
    assert.ok(existsSync(b.path), "removing one registration's copy leaves the other's");
    assert.ok(!existsSync(join(store, '.partial')) || execFileSync('ls', [join(store, '.partial')]).length === 0, 'no partial copy left');
  });

  it('counts bytes as it reads: a file that grew after the walk cannot pass the limit, and nothing is left behind', async () => {
    const root = tree();
    const p = await inspectArtifact(join(root, 'model'), { root, maxBytes: 2000 });
    appendFileSync(join(root, 'model', 'sub', 'weights.bin'), Buffer.alloc(5000));
    const store = tempDir('clipper-store-');
    await assert.rejects(storeArtifact(store, 'm', '1', p, 2000), refusal('ARTIFACT_INVALID', /larger than 2000 bytes/));
    assert.ok(!existsSync(join(store, 'm')));
    assert.equal(execFileSync('ls', ['-A', join(store, '.partial')]).length, 0);
  });

  it('refuses, without waiting, a file swapped for a FIFO or a link after the walk', async () => {
    for (const swap of ['fifo', 'link']) {
      const root = tree();
      const p: ArtifactPlan = await plan(root);
      const file = join(root, 'model', 'index.mjs');
      renameSync(file, `${file}.old`);
      if (swap === 'fifo') execFileSync('mkfifo', [file]);
      else symlinkSync('/etc/passwd', file);
      const started = Date.now();
      await assert.rejects(storeArtifact(tempDir('clipper-store-'), 'm', '1', p, MB), refusal('ARTIFACT_INVALID', /changed while it was being copied/));
      assert.ok(Date.now() - started < 1000, swap);
    }
  });

  it('removes only directories it made, and sweeps unfinished copies', async () => {
    const store = tempDir('clipper-store-');
    const other = tempDir('clipper-other-');
    writeFileSync(join(other, 'keep'), 'x');
    await removeArtifact(store, join(other, 'keep'));
    await removeArtifact(store, join(store, 'keep'));
    assert.ok(existsSync(join(other, 'keep')));
    mkdirSync(join(store, '.partial', 'half'), { recursive: true });
    await sweepPartialArtifacts(store);
    assert.ok(!existsSync(join(store, '.partial')));
  });
});
