import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { readProcess } from '../../src/measure/proc.ts';
import { createCgroupLimiter, locateHierarchies, type CgroupLimiter, type ReplicaCgroup } from '../../src/manager/cgroups.ts';

const mount = (id: number, root: string, point: string, fstype: string, superOptions: string) =>
  `${id} 23 0:${id} ${root} ${point} rw,relatime - ${fstype} ${fstype} ${superOptions}`;

describe('locateHierarchies', () => {
  it('hybrid v1 (this kind of machine): own cgroup first, then the hierarchy root', () => {
    const found = locateHierarchies({
      selfCgroup: '9:name=systemd:/\n4:memory:/process_api/abc\n2:cpuacct:/\n1:cpu:/\n0::/\n',
      mountinfo: [
        mount(32, '/', '/sys/fs/cgroup/cpu', 'cgroup', 'rw,cpu'),
        mount(33, '/', '/sys/fs/cgroup/cpuacct', 'cgroup', 'rw,cpuacct'),
        mount(35, '/', '/sys/fs/cgroup/memory', 'cgroup', 'rw,memory'),
        mount(41, '/', '/sys/fs/cgroup/unified', 'cgroup2', 'rw'),
      ].join('\n'),
    });
    assert.deepEqual(found, {
      cpu: { version: 1, candidates: ['/sys/fs/cgroup/cpu'] },
      memory: { version: 1, candidates: ['/sys/fs/cgroup/memory/process_api/abc', '/sys/fs/cgroup/memory'] },
    });
  });

  it('unified v2', () => {
    const found = locateHierarchies({
      selfCgroup: '0::/system.slice/clipper.service\n',
      mountinfo: mount(30, '/', '/sys/fs/cgroup', 'cgroup2', 'rw,nsdelegate'),
    });
    const v2 = { version: 2, candidates: ['/sys/fs/cgroup/system.slice/clipper.service', '/sys/fs/cgroup'] };
    assert.deepEqual(found, { cpu: v2, memory: v2 });
  });

  it('a nested container: mount roots below the hierarchy root, cpu co-mounted with cpuacct, escaped mount points', () => {
    const found = locateHierarchies({
      selfCgroup: '5:cpu,cpuacct:/docker/c1/app\n3:memory:/docker/c1\n',
      mountinfo: [
        mount(40, '/docker/c1', '/sys/fs/cgroup/cpu,cpuacct', 'cgroup', 'ro,cpu,cpuacct'),
        mount(41, '/docker/c1', '/mnt/my\\040cgroups', 'cgroup', 'rw,memory'),
      ].join('\n'),
    });
    assert.deepEqual(found, {
      cpu: { version: 1, candidates: ['/sys/fs/cgroup/cpu,cpuacct/app', '/sys/fs/cgroup/cpu,cpuacct'] },
      memory: { version: 1, candidates: ['/mnt/my cgroups'] },
    });
  });

  it('says why when there is no hierarchy', () => {
    assert.deepEqual(locateHierarchies({ selfCgroup: '4:memory:/\n0::/\n', mountinfo: mount(1, '/', '/', 'ext4', 'rw') }), {
      cpu: 'cgroup2 is not mounted',
      memory: 'the cgroup v1 memory hierarchy is not mounted',
    });
    assert.deepEqual(locateHierarchies({ selfCgroup: '', mountinfo: '' }), {
      cpu: 'no cpu cgroup controller (neither cgroup v1 nor v2)',
      memory: 'no memory cgroup controller (neither cgroup v1 nor v2)',
    });
  });
});

describe('cgroup v2 files (on a directory standing in for a cgroup2 mount)', () => {
  const root = mkdtempSync(join(tmpdir(), 'fake-cgroup2-'));
  after(() => rmSync(root, { recursive: true, force: true }));
  const fakeV2 = (ownControllers: string) => {
    rmSync(root, { recursive: true, force: true });
    mkdirSync(join(root, 'app'), { recursive: true });
    writeFileSync(join(root, 'cgroup.controllers'), 'cpu memory io\n');
    writeFileSync(join(root, 'cgroup.subtree_control'), '');
    writeFileSync(join(root, 'app', 'cgroup.controllers'), ownControllers);
    writeFileSync(join(root, 'app', 'cgroup.subtree_control'), '');
    return { selfCgroup: '0::/app\n', mountinfo: mount(30, '/', root, 'cgroup2', 'rw') };
  };
  const read = (...p: string[]) => readFileSync(join(root, ...p), 'utf8');

  it('writes cpu.max and memory.max under the own cgroup, enabling the controllers on the way', async () => {
    const limiter = await createCgroupLimiter('ns', fakeV2('cpu memory\n'));
    assert.equal(limiter.cpuEnforcement, 'cgroup v2');
    assert.equal(limiter.memoryEnforcement, 'cgroup v2');
    const cg = await limiter.create('m:1#0', { cpus: 1.5, memoryMb: 64 });
    assert.ok(cg);
    assert.deepEqual(cg.paths, [join(root, 'app', 'ns', 'm_3a1_230')]);
    assert.equal(read('app', 'ns', 'm_3a1_230', 'cpu.max'), '150000 100000');
    assert.equal(read('app', 'ns', 'm_3a1_230', 'memory.max'), String(64 * 1024 * 1024));
    assert.match(read('app', 'cgroup.subtree_control'), /^\+(cpu|memory)$/); // a real cgroupfs accumulates the writes
    assert.match(read('app', 'ns', 'cgroup.subtree_control'), /^\+(cpu|memory)$/);
    assert.equal(await cg.oomKills(), 0);
    const wrapped = cg.wrap('python3', ['-m', 'it']);
    assert.deepEqual(wrapped, {
      command: '/bin/sh',
      args: ['-c', `echo $$ > '${join(root, 'app', 'ns', 'm_3a1_230', 'cgroup.procs')}' && exec "$0" "$@"`, 'python3', '-m', 'it'],
    });
    const unlimited = await limiter.create('other', { cpus: 0, memoryMb: 0 });
    assert.equal(read('app', 'ns', 'other', 'cpu.max'), 'max 100000');
    assert.equal(read('app', 'ns', 'other', 'memory.max'), 'max');
    assert.ok(unlimited);
  });

  it('falls back to the hierarchy root for a controller the own cgroup does not have', async () => {
    const limiter = await createCgroupLimiter('ns', fakeV2('cpu\n'));
    assert.equal(limiter.memoryEnforcement, 'cgroup v2');
    const cg = await limiter.create('r', { cpus: 0.5, memoryMb: 10 });
    assert.deepEqual(cg?.paths, [join(root, 'app', 'ns', 'r'), join(root, 'ns', 'r')]);
    assert.equal(read('ns', 'r', 'memory.max'), String(10 * 1024 * 1024));
  });

  it('reports a controller that is nowhere available, and creates nothing when none is', async () => {
    const probe = fakeV2('');
    writeFileSync(join(root, 'cgroup.controllers'), 'io\n');
    const limiter = await createCgroupLimiter('ns', probe);
    assert.match(limiter.cpuEnforcement, /^not enforced: the cpu controller is not available in /);
    assert.match(limiter.memoryEnforcement, /^not enforced: the memory controller is not available in /);
    assert.equal(await limiter.create('r', { cpus: 1, memoryMb: 64 }), undefined);
  });
});

/** Starts a wrapped `node -e code`; resolves once it printed a line (so it runs its own code by then). */
async function startNode(cg: ReplicaCgroup | undefined, code: string): Promise<ChildProcess> {
  const { command, args } = cg ? cg.wrap(process.execPath, ['-e', code]) : { command: process.execPath, args: ['-e', code] };
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'inherit'] });
  const early = once(child, 'exit').then(([code, signal]) => { throw new Error(`child exited early (${signal ?? code})`); });
  await Promise.race([once(child.stdout!, 'data'), early]);
  early.catch(() => {});
  return child;
}

async function kill(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill('SIGKILL');
  await exited;
}

/** Cores a process uses over `ms`, from its /proc counters. */
async function coresUsed(pid: number, ms: number): Promise<number> {
  const a = await readProcess(pid);
  const t0 = Date.now();
  await sleep(ms);
  const b = await readProcess(pid);
  assert.ok(a && b, 'the process should still run');
  return (b.cpuSeconds - a.cpuSeconds) / ((Date.now() - t0) / 1000);
}

const BUSY = 'console.log("up"); const end = Date.now() + 8000; while (Date.now() < end) {}';

describe('real cgroups on this machine', async () => {
  const limiter: CgroupLimiter = await createCgroupLimiter(`clipper-test-${process.pid}`);
  const created: ReplicaCgroup[] = [];
  const children: ChildProcess[] = [];
  after(async () => {
    for (const c of children) await kill(c);
    for (const cg of created) await cg.remove().catch((e) => console.error(e));
    await limiter.close();
    for (const cg of created) for (const p of cg.paths) assert.ok(!existsSync(dirname(p)), `namespace cgroup ${dirname(p)} left behind`);
  });
  const make = async (key: string, limits: { cpus: number; memoryMb: number }) => {
    const cg = await limiter.create(key, limits);
    assert.ok(cg);
    created.push(cg);
    return cg;
  };
  const skipUnless = (ctrl: 'cpu' | 'memory') => {
    const how = ctrl === 'cpu' ? limiter.cpuEnforcement : limiter.memoryEnforcement;
    if (how.startsWith('cgroup v')) return undefined;
    assert.match(how, /^not enforced: .+/);
    return `${ctrl} limits cannot be enforced here (${how}); skipping`;
  };

  it('a child allocating ~300 MB under a 64 MiB limit is OOM-killed and counted', { skip: skipUnless('memory') }, async () => {
    const cg = await make('oom', { cpus: 0, memoryMb: 64 });
    const { command, args } = cg.wrap(process.execPath, ['-e', 'const keep = []; for (let i = 0; i < 300; i++) keep.push(Buffer.alloc(1 << 20, 1)); console.log("survived")']);
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'inherit'] });
    children.push(child);
    let out = '';
    child.stdout!.on('data', (d) => { out += d; });
    const [code, signal] = await once(child, 'exit');
    assert.equal(signal, 'SIGKILL', `exit code ${code}, output ${JSON.stringify(out)}`);
    assert.doesNotMatch(out, /survived/);
    assert.ok((await cg.oomKills()) > 0, 'an OOM kill should be counted');
    await cg.remove();
    for (const p of cg.paths) assert.ok(!existsSync(p), `${p} left behind`);
  });

  it('a busy child limited to 0.2 cpus uses at most ~0.35 cores; an unlimited one uses more than 0.6', { skip: skipUnless('cpu') }, async () => {
    const cg = await make('cpu', { cpus: 0.2, memoryMb: 0 });
    const limited = await startNode(cg, BUSY);
    children.push(limited);
    for (const p of cg.paths) assert.match(readFileSync(`/proc/${limited.pid}/cgroup`, 'utf8'), new RegExp(`${p.split('/').slice(-2).join('/')}$`, 'm'));
    const slow = await coresUsed(limited.pid!, 2000);
    await kill(limited);
    assert.ok(slow <= 0.35, `limited child used ${slow.toFixed(2)} cores`);

    const free = await startNode(undefined, BUSY);
    children.push(free);
    const fast = await coresUsed(free.pid!, 2000);
    await kill(free);
    assert.ok(fast > 0.6, `unlimited child used ${fast.toFixed(2)} cores`);
    await cg.remove();
    for (const p of cg.paths) assert.ok(!existsSync(p), `${p} left behind`);
  });

  it('a wrapped command does not run at all once its cgroup is gone', { skip: skipUnless('cpu') && skipUnless('memory') }, async () => {
    const cg = await make('gone', { cpus: 1, memoryMb: 128 });
    await cg.remove();
    const { command, args } = cg.wrap(process.execPath, ['-e', 'console.log("ran")']);
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'ignore'] });
    children.push(child);
    let out = '';
    child.stdout!.on('data', (d) => { out += d; });
    const [code] = await once(child, 'exit');
    assert.notEqual(code, 0);
    assert.equal(out, '');
  });
});
