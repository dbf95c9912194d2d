import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { availableParallelism } from 'node:os';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { CpuRate, MachineSampler, readLoad1, readMachineCpu, readMemory, readProcess } from '../../src/measure/proc.ts';

/** Starts `node -e code` and resolves once it printed its first line (it is then up and running). */
async function startNode(code: string): Promise<ChildProcess> {
  const child = spawn(process.execPath, ['-e', code], { stdio: ['ignore', 'pipe', 'inherit'] });
  await once(child.stdout!, 'data');
  return child;
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill('SIGKILL');
  await exited;
}

describe('machine readers', () => {
  it('read counters in sane ranges', async () => {
    const cpu = await readMachineCpu();
    assert.ok(cpu.total > 0 && cpu.busy >= 0 && cpu.busy <= cpu.total, JSON.stringify(cpu));
    const mem = await readMemory();
    assert.ok(mem.totalBytes > 64 * 1024 * 1024, `MemTotal ${mem.totalBytes}`);
    assert.ok(mem.availableBytes > 0 && mem.availableBytes <= mem.totalBytes, JSON.stringify(mem));
    const load = await readLoad1();
    assert.ok(Number.isFinite(load) && load >= 0, `load1 ${load}`);
  });

  it('MachineSampler reports busy cores between 0 and the cores available', async () => {
    const sampler = new MachineSampler('here');
    await sampler.sample();
    await sleep(200);
    const usage = await sampler.sample();
    assert.equal(usage.name, 'here');
    assert.equal(usage.cores, availableParallelism());
    assert.ok(usage.cpuBusyCores >= 0 && usage.cpuBusyCores <= usage.cores, JSON.stringify(usage));
    assert.ok(usage.memoryAvailableBytes <= usage.memoryTotalBytes);
  });
});

describe('readProcess and CpuRate', () => {
  it('a busy-looping child uses more than half a core', async () => {
    const child = await startNode('console.log("up"); const end = Date.now() + 4000; while (Date.now() < end) {}');
    try {
      const rate = new CpuRate();
      const first = await readProcess(child.pid!);
      assert.ok(first, 'the child should be readable');
      assert.equal(rate.rate('busy', first.cpuSeconds, Date.now()), 0, 'the first call has nothing to compare with');
      await sleep(1500);
      const second = await readProcess(child.pid!);
      assert.ok(second);
      const cores = rate.rate('busy', second.cpuSeconds, Date.now());
      assert.ok(cores > 0.5 && cores < 1.5, `busy child used ${cores.toFixed(2)} cores`);
    } finally {
      await stop(child);
    }
  });

  it('a child holding ~100 MB has an RSS above 80 MB', async () => {
    // Buffer.alloc with a fill value writes every page, so all of it is resident.
    const child = await startNode('globalThis.keep = Buffer.alloc(100 * 1024 * 1024, 1); console.log("up"); setInterval(() => {}, 1000)');
    try {
      const p = await readProcess(child.pid!);
      assert.ok(p);
      assert.ok(p.rssBytes > 80 * 1024 * 1024, `rss ${(p.rssBytes / 1048576).toFixed(1)} MiB`);
      assert.ok(p.cpuSeconds >= 0);
    } finally {
      await stop(child);
    }
  });

  it('a process that is gone reads as undefined', async () => {
    const child = spawn(process.execPath, ['-e', ''], { stdio: 'ignore' });
    await once(child, 'exit');
    assert.equal(await readProcess(child.pid!), undefined);
  });

  it('CpuRate starts over when a counter goes back, and after forget', () => {
    const rate = new CpuRate();
    assert.equal(rate.rate('a', 10, 1000), 0);
    assert.equal(rate.rate('a', 11, 3000), 0.5);
    assert.equal(rate.rate('a', 2, 4000), 0, 'a restarted process');
    assert.equal(rate.rate('a', 3, 5000), 1);
    rate.forget('a');
    assert.equal(rate.rate('a', 4, 6000), 0);
  });
});
