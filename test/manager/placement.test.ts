import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { headroomOf, place, type MachineView, type PlacedContainer } from '../../src/manager/placement.ts';

const GiB = 1024 ** 3;
const MiB = 1024 ** 2;

const machine = (name: string, over: Partial<MachineView> = {}): MachineView => ({
  name, up: true, cores: 4, memoryTotalBytes: 8 * GiB, containers: [], ...over,
});
const replica = (versionKey: string, cpus: number, memoryMb: number, used: Partial<PlacedContainer> = {}): PlacedContainer => ({
  cpus, memoryBytes: memoryMb * MiB, usedCores: 0, usedBytes: 0, versionKey, ...used,
});
const req = (cpus: number, memoryMb: number, versionKey = 'm:1') => ({ versionKey, cpus, memoryMb });
const chosen = (p: ReturnType<typeof place>) => (p.ok ? p.machine : `refused: ${p.reason}`);

describe('placement', () => {
  it('a container counts the larger of its limit and its use', () => {
    assert.deepEqual(headroomOf(machine('a', { containers: [
      replica('m:1', 1, 512), // idle: its limits are reserved
      { cpus: 0, memoryBytes: 0, usedCores: 1.5, usedBytes: 1 * GiB }, // no limits: what it uses
      { cpus: 0.5, memoryBytes: 256 * MiB, usedCores: 0.75, usedBytes: 100 * MiB }, // over its cpu limit by measurement noise
    ] })), { freeCores: 4 - 1 - 1.5 - 0.75, freeBytes: 8 * GiB - 512 * MiB - 1 * GiB - 256 * MiB });
  });

  const cases: Array<{ what: string; request: ReturnType<typeof req>; machines: MachineView[]; expect: string }> = [
    {
      what: 'the machine with the most headroom',
      request: req(1, 256),
      machines: [machine('a', { containers: [{ cpus: 0, memoryBytes: 0, usedCores: 3, usedBytes: 0 }] }), machine('b')],
      expect: 'b',
    },
    {
      what: 'memory can be what decides',
      request: req(0.5, 256),
      machines: [machine('a', { containers: [{ cpus: 0, memoryBytes: 0, usedCores: 0, usedBytes: 7 * GiB }] }), machine('b', { containers: [replica('x:1', 1, 0)] })],
      expect: 'b',
    },
    {
      what: 'a foreign container reserving every core leaves no room for a cpu request',
      request: req(0.5, 0),
      machines: [machine('a', { containers: [{ cpus: 4, memoryBytes: 0, usedCores: 0, usedBytes: 0 }] }), machine('b', { containers: [replica('x:1', 3, 0)] })],
      expect: 'b',
    },
    {
      what: 'even headroom: replicas of one version spread',
      request: req(0.25, 128),
      machines: [machine('a', { containers: [replica('m:1', 0.25, 128)] }), machine('b', { containers: [replica('other:1', 0.25, 128)] }), machine('c', { containers: [replica('m:1', 0.25, 128)] })],
      expect: 'b',
    },
    {
      what: 'even beats spread only within the tolerance: a much freer machine wins even with a replica of the version',
      request: req(0.25, 128),
      machines: [machine('a', { containers: [replica('m:1', 0.25, 128)] }), machine('b', { containers: [{ cpus: 2, memoryBytes: 0, usedCores: 0, usedBytes: 0 }] })],
      expect: 'a',
    },
    {
      what: 'a request without limits goes anywhere that is up, even a saturated machine',
      request: req(0, 0),
      machines: [machine('a', { up: false, downReason: 'engine did not answer for 10 s' }), machine('b', { containers: [{ cpus: 4, memoryBytes: 8 * GiB, usedCores: 4, usedBytes: 0 }] })],
      expect: 'b',
    },
    {
      what: 'down machines are skipped however free',
      request: req(1, 128),
      machines: [machine('a', { up: false, cores: 64 }), machine('b', { containers: [replica('m:1', 2, 0)] })],
      expect: 'b',
    },
    {
      what: 'a penalised machine is avoided while another fits',
      request: req(1, 128),
      machines: [machine('a', { penalised: true }), machine('b', { containers: [replica('m:1', 2, 0)] })],
      expect: 'b',
    },
    {
      what: 'a penalised machine is used when it is the only one that fits',
      request: req(3, 128),
      machines: [machine('a', { penalised: true }), machine('b', { containers: [replica('m:1', 2, 0)] })],
      expect: 'a',
    },
    {
      what: 'ties end on the name',
      request: req(1, 128),
      machines: [machine('b'), machine('a')],
      expect: 'a',
    },
    {
      what: 'a request exactly as large as what is free fits',
      request: req(2, 1024),
      machines: [machine('a', { cores: 2, memoryTotalBytes: 1 * GiB })],
      expect: 'a',
    },
  ];
  for (const c of cases) {
    it(c.what, () => assert.equal(chosen(place(c.request, c.machines)), c.expect));
  }

  it('when nothing fits, the reason names every machine', () => {
    const p = place(req(2, 512), [
      machine('m1', { cores: 2, containers: [replica('x:1', 0.5, 0, { usedCores: 0.2 })] }),
      machine('m2', { up: false, downReason: 'engine did not answer for 10 s' }),
      machine('m3', { cores: 8, memoryTotalBytes: 1 * GiB, containers: [{ cpus: 0, memoryBytes: 0, usedCores: 0, usedBytes: 768 * MiB }] }),
    ]);
    assert.deepEqual(p, {
      ok: false,
      reason: 'no machine has room for 2 cpus / 512 MiB: m1 has 1.5 cpus / 8192 MiB free, m2 is down (engine did not answer for 10 s), m3 has 8 cpus / 256 MiB free',
    });
    assert.deepEqual(place(req(1, 0), []), { ok: false, reason: 'no machine has room for 1 cpus / 0 MiB: no machine is configured' });
  });

  it('replicas placed one after another fill the machines evenly', () => {
    const ms = [machine('a'), machine('b'), machine('c')];
    const where: string[] = [];
    for (let i = 0; i < 6; i++) {
      const p = place(req(1, 512), ms);
      assert.ok(p.ok);
      where.push(p.machine);
      ms.find((m) => m.name === p.machine)!.containers.push(replica('m:1', 1, 512));
    }
    assert.deepEqual(where, ['a', 'b', 'c', 'a', 'b', 'c']);
    // Each machine now has 2 of 4 cores left; a 3-core replica fits nowhere.
    assert.equal(place(req(3, 0), ms).ok, false);
  });
});
