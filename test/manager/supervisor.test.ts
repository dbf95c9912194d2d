/** The supervisor's state machine against a fake backend on a fake clock: no processes, no sleeping. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Discovered, ExitInfo, ReplicaBackend, ReplicaHandle, ReplicaSpec } from '../../src/manager/backend.ts';
import { fingerprint } from '../../src/manager/backend.ts';
import { Supervisor } from '../../src/manager/supervisor.ts';
import type { ModelVersion } from '../../src/registry/types.ts';
import { FakeClock } from '../helpers/fake-clock.ts';

const flush = () => new Promise<void>((r) => setImmediate(r));

const version = (v: string, extra: Partial<ModelVersion> = {}): ModelVersion => ({
  name: 'm', version: v, inputType: 'strings', labels: [], runtime: 'js', containerName: '', artifactPath: '/a', artifactHash: `h${v}`,
  batchSize: 0, replicas: 1, cpus: 0, memoryMb: 0, createdAt: 0, ...extra,
});

class FakeHandle implements ReplicaHandle {
  readonly exited: Promise<ExitInfo>;
  exit!: (e: ExitInfo) => void;
  signals: string[] = [];
  rss = 10 * 1024 * 1024;
  readonly enforcement = { cpu: 'none set', memory: 'watchdog (test)' };
  readonly machine = 'test-host';
  constructor(readonly replicaId: string, private readonly ignoresTerm = false) {
    this.exited = new Promise((r) => { this.exit = r; });
  }
  async stop(): Promise<void> {
    this.signals.push('TERM');
    if (!this.ignoresTerm) this.exit({ reason: 'killed by SIGTERM', oom: false, cause: 'killed' });
    await this.exited;
  }
  kill(): void {
    this.signals.push('KILL');
    this.exit({ reason: 'killed by SIGKILL', oom: false, cause: 'killed' });
  }
  async stats() { return { cpuSeconds: 0, rssBytes: this.rss }; }
  async logs() { return [`log of ${this.replicaId}`]; }
}

class FakeBackend implements ReplicaBackend {
  readonly kind = 'fake';
  started: Array<{ spec: ReplicaSpec; handle: FakeHandle }> = [];
  leftovers: Discovered[] = [];
  removed: string[] = [];
  async start(spec: ReplicaSpec) {
    const handle = new FakeHandle(spec.replicaId);
    this.started.push({ spec, handle });
    return handle;
  }
  async discover() { return this.leftovers; }
  async pastLogs() { return undefined; }
  async machines() { return []; }
  async close() {}
  last(id: string) { return [...this.started].reverse().find((s) => s.spec.replicaId === id)!.handle; }
}

function setup() {
  const clock = new FakeClock();
  const backend = new FakeBackend();
  const sup = new Supervisor(backend, { rpc: { host: '127.0.0.1', port: 1 }, stopGraceMs: 100, startTimeoutMs: 5000, clock });
  const events: string[] = [];
  sup.on('replica-exit', (id, reason, cause) => events.push(`exit ${id}: ${reason} [${cause}]`));
  sup.on('replica-stopping', (id) => events.push(`stopping ${id}`));
  const state = (id: string) => sup.replicas().find((r) => r.replicaId === id)?.state;
  return { clock, backend, sup, events, state };
}

describe('supervisor', () => {
  it('starts the count it is told, scales down from the top, and stops versions no longer listed', async () => {
    const { backend, sup, state } = setup();
    await sup.start(new Map([['m', [{ version: version('1'), replicas: 3 }]]]));
    await flush();
    assert.deepEqual(sup.replicas().map((r) => r.replicaId), ['m:1#0', 'm:1#1', 'm:1#2']);
    for (const id of ['m:1#0', 'm:1#1', 'm:1#2']) sup.markReady(id, 'm', '1');
    assert.equal(state('m:1#2'), 'READY');
    await sup.apply('m', [{ version: version('1'), replicas: 1 }]);
    assert.deepEqual(sup.replicas().map((r) => r.replicaId), ['m:1#0']);
    await sup.apply('m', [{ version: version('2'), replicas: 1 }]);
    await flush();
    assert.deepEqual(sup.replicas().map((r) => `${r.replicaId} ${r.state}`), ['m:2#0 STARTING']);
    assert.equal(backend.started.length, 4);
  });

  it('an unresponsive replica is killed (TERM, then KILL after grace), then restarted after the backoff', async () => {
    const { clock, backend, sup, state, events } = setup();
    backend.start = async (spec) => {
      const handle = new FakeHandle(spec.replicaId, true); // ignores SIGTERM, like a busy loop with a handler
      backend.started.push({ spec, handle });
      handle.stop = async () => {
        handle.signals.push('TERM');
        clock.setTimeout(() => handle.kill(), 100);
        await handle.exited;
      };
      return handle;
    };
    await sup.start(new Map([['m', [{ version: version('1'), replicas: 1 }]]]));
    await flush();
    sup.markReady('m:1#0', 'm', '1');
    sup.markUnresponsive('m:1#0', 'no heartbeat for 5000 ms');
    assert.equal(state('m:1#0'), 'UNRESPONSIVE');
    clock.advance(100);
    await flush();
    assert.deepEqual(backend.last('m:1#0').signals, ['TERM', 'KILL']);
    assert.equal(state('m:1#0'), 'BACKOFF');
    const info = sup.replicas()[0]!;
    assert.equal(info.restarts, 1);
    assert.match(info.lastExit!.reason, /^unresponsive: no heartbeat for 5000 ms/);
    assert.ok(events.includes('stopping m:1#0'), 'taken out of rotation before it was killed');
    assert.ok(events.some((e) => e.startsWith('exit m:1#0: unresponsive') && e.endsWith('[stopped]')), 'the manager ended it: its inputs are not suspects');
    clock.advance(250);
    await flush();
    assert.equal(state('m:1#0'), 'STARTING');
    assert.equal(backend.started.length, 2);
  });

  it('close() waits for a start still in the backend and stops what it created', async () => {
    const { backend, sup } = setup();
    let finishStart!: () => void;
    const created = new Promise<void>((r) => { finishStart = r; });
    backend.start = async (spec) => {
      await created;
      const handle = new FakeHandle(spec.replicaId);
      backend.started.push({ spec, handle });
      return handle;
    };
    await sup.start(new Map([['m', [{ version: version('1'), replicas: 1 }]]]));
    let closed = false;
    const closing = sup.close().then(() => { closed = true; });
    await flush();
    assert.equal(closed, false, 'close() returned while the container was still being created');
    finishStart();
    await closing;
    assert.deepEqual(backend.last('m:1#0').signals, ['TERM'], 'the replica created after close() began was stopped');
  });

  it('a replica that never registers is killed at the start timeout and tried again', async () => {
    const { clock, backend, sup, state } = setup();
    await sup.start(new Map([['m', [{ version: version('1'), replicas: 1 }]]]));
    await flush();
    clock.advance(4999);
    assert.equal(state('m:1#0'), 'STARTING');
    clock.advance(1);
    await flush();
    assert.equal(state('m:1#0'), 'BACKOFF');
    assert.match(sup.replicas()[0]!.lastExit!.reason, /did not register within 5000 ms/);
    clock.advance(250);
    await flush();
    assert.equal(backend.started.length, 2);
  });

  it('crash loop backs off 250, 500, 1000 ms', async () => {
    const { clock, backend, sup } = setup();
    await sup.start(new Map([['m', [{ version: version('1'), replicas: 1 }]]]));
    await flush();
    for (const delay of [250, 500, 1000]) {
      const n = backend.started.length;
      backend.last('m:1#0').exit({ reason: 'exited with code 1', oom: false, cause: 'crashed' });
      await flush();
      clock.advance(delay - 1);
      await flush();
      assert.equal(backend.started.length, n, `not restarted before ${delay} ms`);
      clock.advance(1);
      await flush();
      assert.equal(backend.started.length, n + 1, `restarted at ${delay} ms`);
    }
    assert.equal(sup.replicas()[0]!.restarts, 3);
  });

  it('the memory watchdog kills a replica over its limit, with the reason, and it is restarted', async () => {
    const { clock, backend, sup, state, events } = setup();
    await sup.start(new Map([['m', [{ version: version('1', { memoryMb: 64 }), replicas: 1 }]]]));
    await flush();
    sup.markReady('m:1#0', 'm', '1');
    backend.last('m:1#0').rss = 100 * 1024 * 1024;
    await sup.usage();
    await flush();
    assert.deepEqual(backend.last('m:1#0').signals, ['KILL']);
    assert.equal(state('m:1#0'), 'BACKOFF');
    assert.match(sup.replicas()[0]!.lastExit!.reason, /out of memory: resident 100 MiB over the limit of 64 MiB/);
    assert.ok(events.some((e) => e.startsWith('exit m:1#0: out of memory') && e.endsWith('[killed]')), 'a watchdog kill is from outside');
    clock.advance(250);
    await flush();
    assert.equal(state('m:1#0'), 'STARTING');
  });

  it('kernel OOM kills are reported as such', async () => {
    const { backend, sup, events } = setup();
    await sup.start(new Map([['m', [{ version: version('1', { memoryMb: 64 }), replicas: 1 }]]]));
    await flush();
    backend.last('m:1#0').exit({ reason: 'out of memory (limit 64 MiB; killed by the kernel)', oom: true, cause: 'killed' });
    await flush();
    assert.equal(sup.replicas()[0]!.lastExit!.reason, 'out of memory (limit 64 MiB; killed by the kernel)');
    assert.ok(events.some((e) => e.endsWith('[killed]')), 'the backend\'s cause is passed on');
  });

  it('a change of limits replaces the running replica', async () => {
    const { backend, sup } = setup();
    await sup.start(new Map([['m', [{ version: version('1'), replicas: 1 }]]]));
    await flush();
    await sup.apply('m', [{ version: version('1', { cpus: 0.5 }), replicas: 1 }]);
    await flush();
    assert.equal(backend.started.length, 2);
    assert.equal(backend.started[1]!.spec.limits.cpus, 0.5);
    assert.deepEqual(backend.started[0]!.handle.signals, ['TERM']);
  });

  it('adopts leftovers that match what is wanted and removes the rest', async () => {
    const { backend, sup, state } = setup();
    const v = version('1');
    const leftover = (replicaId: string, print: string): Discovered => ({
      replicaId, modelName: 'm', modelVersion: '1', fingerprint: print,
      adopt: () => new FakeHandle(replicaId),
      remove: async () => { backend.removed.push(replicaId); },
    });
    const good = fingerprint({ version: v, limits: { cpus: 0, memoryMb: 0 } });
    backend.leftovers = [leftover('m:1#0', good), leftover('m:1#1', 'stale'), leftover('m:1#5', good)];
    await sup.start(new Map([['m', [{ version: v, replicas: 2 }]]]));
    await flush();
    assert.deepEqual(backend.removed.sort(), ['m:1#1', 'm:1#5']);
    assert.equal(state('m:1#0'), 'STARTING', 'adopted, waiting for it to register again');
    assert.deepEqual(backend.started.map((s) => s.spec.replicaId), ['m:1#1'], 'only the missing one is started');
    assert.equal(sup.markReady('m:1#0', 'm', '1'), 'm:1#0');
  });

  it('isStarting tells whether queued work has a prospect', async () => {
    const { sup } = setup();
    assert.equal(sup.isStarting('m', '1'), false);
    await sup.start(new Map([['m', [{ version: version('1'), replicas: 1 }]]]));
    assert.equal(sup.isStarting('m', '1'), true);
    await flush();
    sup.markReady('m:1#0', 'm', '1');
    assert.equal(sup.isStarting('m', '1'), false);
  });
});
