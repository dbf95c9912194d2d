/** The switch between leading (the supervisor) and following (the replicas this frontend's RPC sees). */
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { describe, it } from 'node:test';
import type { ContainerManagerEvents, ReplicaInfo, VersionTarget } from '../../src/manager/container-manager.ts';
import { LeaderGatedManager, type ConnectedReplica, type LeadingManager } from '../../src/manager/leader-gate.ts';
import type { RegistryService } from '../../src/registry/registry-service.ts';

class FakeSupervisor extends EventEmitter<ContainerManagerEvents> implements LeadingManager {
  readonly backend = 'fake';
  calls: string[] = [];
  constructor(readonly adoptable = true) {
    super();
  }
  async start(t: Map<string, VersionTarget[]>) { this.calls.push(`start ${[...t.keys()].join(',')}`); }
  async apply(model: string) { this.calls.push(`apply ${model}`); }
  markReady(id: string | undefined) { this.calls.push(`ready ${id}`); return id; }
  markUnresponsive(id: string) { this.calls.push(`unresponsive ${id}`); }
  isStarting() { return false; }
  async waitReady() { return true; }
  async waitStopped() { return true; }
  replicas(): ReplicaInfo[] { return []; }
  async logs() { return [{ replica_id: 'x', lines: ['hello'] }]; }
  async usage() { return []; }
  async machines() { return []; }
  async close() { this.calls.push('close'); }
  async release() { this.calls.push('release'); }
}

function setup(connected: ConnectedReplica[]) {
  const registry = { getVersion: (name: string, version: string) => (name === 'm' && version === '1' ? {} : undefined) } as unknown as RegistryService;
  const logs: string[] = [];
  const gate = new LeaderGatedManager({ backend: 'docker', registry, connected: () => connected, leaderAdmin: () => 'http://10.0.0.1:1338', log: (m) => logs.push(m), pollMs: 5 });
  return { gate, logs };
}

describe('leader-gated manager', () => {
  it('a follower reports the replicas connected to it, waits on them, kills nothing and sends log readers to the leader', async () => {
    const connected: ConnectedReplica[] = [];
    const { gate, logs } = setup(connected);
    assert.equal(gate.isStarting('m', '1'), true, 'the leader may be starting it: queries wait within their SLO');
    assert.equal(gate.isStarting('m', '9'), false);
    const ready = gate.waitReady('m', '1', 1, 5000);
    connected.push({ replicaId: 'm:1#0', modelName: 'm', modelVersion: '1' });
    assert.equal(await ready, true);
    assert.deepEqual(gate.replicas().map((r) => `${r.replicaId} ${r.state}`), ['m:1#0 READY']);
    assert.equal(await gate.waitReady('m', '1', 2, 30), false);
    gate.markUnresponsive('m:1#0', 'silent');
    assert.match(logs[0]!, /the leader decides/);
    await assert.rejects(gate.logs('m', '1', undefined, 10), /http:\/\/10\.0\.0\.1:1338/);
  });

  it('on taking the lead it starts the supervisor with every target, marks the replicas already here ready, and forwards its events; on losing it releases', async () => {
    const connected: ConnectedReplica[] = [{ replicaId: 'm:1#0', modelName: 'm', modelVersion: '1' }];
    const { gate } = setup(connected);
    const sup = new FakeSupervisor();
    const exits: string[] = [];
    gate.on('replica-exit', (id) => exits.push(id));
    await gate.lead(async () => sup, new Map([['m', []]]));
    assert.equal(gate.leading, true);
    assert.deepEqual(sup.calls, ['start m', 'ready m:1#0']);
    gate.markUnresponsive('m:1#0', 'silent');
    assert.equal(sup.calls.at(-1), 'unresponsive m:1#0');
    assert.deepEqual(await gate.logs('m', '1', undefined, 1), [{ replica_id: 'x', lines: ['hello'] }]);
    sup.emit('replica-exit', 'm:1#0', 'crashed', 'crashed');
    assert.deepEqual(exits, ['m:1#0']);
    await gate.follow();
    assert.equal(sup.calls.at(-1), 'release');
    sup.emit('replica-exit', 'm:1#0', 'crashed', 'crashed');
    assert.deepEqual(exits, ['m:1#0'], 'a released supervisor is no longer heard');
    await gate.apply('m', []);
    assert.equal(sup.calls.filter((c) => c.startsWith('apply')).length, 0);
  });

  it('local replicas, which nobody else can adopt, are parked on losing the lease: taken back on leading again, stopped once another frontend leads', async () => {
    const { gate } = setup([]);
    const local = new FakeSupervisor(false);
    let made = 0;
    const create = async () => { made++; return local; };
    await gate.lead(create, new Map([['m', []]]));
    await gate.follow({ park: true });
    assert.equal(gate.leading, false);
    assert.equal(gate.hasParked, true);
    assert.equal(local.calls.includes('release'), false, 'its replicas keep running');
    gate.markReady('m:1#0', 'm', '1');
    assert.equal(local.calls.at(-1), 'ready m:1#0', 'a parked supervisor still hears its replicas register');

    await gate.lead(create, new Map([['m', []]]));
    assert.equal(made, 1, 'the parked supervisor is taken back, not a new one made');
    assert.equal(local.calls.at(-1), 'apply m');

    await gate.follow({ park: true });
    await gate.otherLeads();
    assert.equal(local.calls.at(-1), 'release', 'another leader: its replicas stop');
    assert.equal(gate.hasParked, false);

    const docker = new FakeSupervisor(true);
    await gate.lead(async () => docker, new Map());
    await gate.follow({ park: true });
    assert.equal(docker.calls.at(-1), 'release', 'containers are released at once for the next leader to adopt');
  });
});
