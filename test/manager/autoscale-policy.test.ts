/** The autoscaler's decision, driven by simulated per-second samples with the decision fed back. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  cpuPerBusyReplica,
  decideReplicas, resolveAutoscaleSettings, sampleDemand,
  type AutoscaleDecision, type AutoscaleSettings, type LoadSample, type MachineState,
} from '../../src/manager/autoscale-policy.ts';

const settings = (over: Partial<AutoscaleSettings> = {}) => resolveAutoscaleSettings({ minReplicas: 0, maxReplicas: 10, ...over });

interface Sim {
  settings: AutoscaleSettings;
  /** Load at second t (1-based), given the replicas running: inputs/s and ms per input. */
  load: (t: number, replicas: number) => { rate: number; ms: number };
  seconds: number;
  start: number;
  /** Cores one replica uses while busy (0 = sleeping model). */
  cpuPerBusy?: number;
  /** The machine, given the version's own replica CPU use. */
  machine?: (replicaCpu: number) => MachineState;
}

/**
 * One sample a second; the ready replicas are the count asked for last (replicas start at once),
 * and their busy share and CPU use follow from the load spread over them: the feedback loop.
 */
function simulate(sim: Sim): { desired: number[]; decisions: AutoscaleDecision[]; samples: LoadSample[] } {
  let current = sim.start;
  let lastChangeAt = -Infinity;
  const samples: LoadSample[] = [];
  const desired: number[] = [];
  const decisions: AutoscaleDecision[] = [];
  for (let t = 1; t <= sim.seconds; t++) {
    const now = t * 1000;
    const { rate, ms } = sim.load(t, current);
    const ready = current;
    const busyFraction = ready > 0 ? Math.min(1, (rate * ms) / 1000 / ready) : 0;
    const replicaCpuCores = (sim.cpuPerBusy ?? 0) * busyFraction * ready;
    samples.push({ at: now, arrivalRate: rate, serviceMsPerInput: ready > 0 && rate > 0 ? ms : undefined, readyReplicas: ready, replicaCpuCores, busyFraction });
    const d = decideReplicas({ settings: sim.settings, current, lastChangeAt, now, samples: samples.slice(-40), machine: sim.machine?.(replicaCpuCores) });
    if (d.desired !== current) {
      current = d.desired;
      lastChangeAt = now;
    }
    desired.push(d.desired);
    decisions.push(d);
  }
  return { desired, decisions, samples };
}

/** desired[t - 1] is the decision at second t. */
const at = (desired: number[], t: number) => desired[t - 1];
const changes = (xs: number[]) => xs.filter((x, i) => i > 0 && x !== xs[i - 1]).length;

describe('autoscale policy: demand', () => {
  const cases: Array<{ what: string; s: Partial<LoadSample>; current: number; want: number }> = [
    { what: 'rate × service time at the target utilization', s: { arrivalRate: 500, serviceMsPerInput: 5 }, current: 1, want: 4 },
    { what: 'exactly on a boundary does not round up on float noise', s: { arrivalRate: 420, serviceMsPerInput: 5 }, current: 1, want: 3 },
    { what: 'no arrivals asks for none', s: { arrivalRate: 0, serviceMsPerInput: 5 }, current: 3, want: 0 },
    { what: 'no service time yet keeps the current count', s: { arrivalRate: 500, serviceMsPerInput: undefined }, current: 3, want: 3 },
    { what: 'no service time at zero: one for the first arrival', s: { arrivalRate: 1, serviceMsPerInput: undefined }, current: 0, want: 1 },
  ];
  for (const c of cases) {
    it(c.what, () => {
      const s: LoadSample = { at: 0, arrivalRate: 0, serviceMsPerInput: undefined, readyReplicas: 1, replicaCpuCores: 0, busyFraction: 0, ...c.s };
      assert.equal(sampleDemand(s, c.current, 0.7), c.want);
    });
  }
});

describe('autoscale policy: decisions', () => {
  it('step up: from zero to a steady 500/s at 5 ms sized straight to 4', () => {
    const { desired, decisions } = simulate({ settings: settings(), load: () => ({ rate: 500, ms: 5 }), seconds: 20, start: 0 });
    assert.equal(at(desired, 1), 1, 'the first arrival scales from zero at once');
    assert.equal(decisions[0]!.reason, 'scale up: first arrival → 1');
    // Service time is first measured at t = 2; upscaleDelayS + 1 samples later the size is right.
    assert.equal(at(desired, 4), 4);
    assert.match(decisions[3]!.reason, /^scale up: 500\/s × 5\.0 ms at 70% → 4$/);
    assert.deepEqual(desired.slice(3), Array(17).fill(4), 'and stays there');
  });

  it('step up from a warm replica goes to the needed size in one change, not +1 steps', () => {
    const { desired } = simulate({ settings: settings({ minReplicas: 1, maxReplicas: 20 }), load: (t) => ({ rate: t < 10 ? 50 : 2000, ms: 5 }), seconds: 30, start: 1 });
    assert.equal(at(desired, 11), 1, 'not before the step lasted upscaleDelayS');
    assert.equal(at(desired, 12), Math.ceil((2000 * 0.005) / 0.7));
    assert.equal(changes(desired), 1);
  });

  it('a lone first sample is not enough: the demand must have lasted upscaleDelayS', () => {
    const { desired } = simulate({ settings: settings({ minReplicas: 1 }), load: (t) => ({ rate: t === 1 ? 1000 : 100, ms: 5 }), seconds: 10, start: 1 });
    assert.deepEqual(desired, Array(10).fill(1));
  });

  it('ramp: a rising rate grows the count monotonically', () => {
    const { desired } = simulate({ settings: settings({ minReplicas: 1, maxReplicas: 50 }), load: (t) => ({ rate: 50 * t, ms: 5 }), seconds: 60, start: 1 });
    for (let i = 1; i < desired.length; i++) assert.ok(desired[i]! >= desired[i - 1]!, `never decreases: ${desired}`);
    // Sized from the sample 2 s ago (the minimum over the last 3), within the 10% up tolerance.
    const demand = (50 * 58 * 0.005) / 0.7;
    assert.ok(at(desired, 60)! <= Math.ceil(demand) && at(desired, 60)! * 1.1 >= demand, `at 60 s: ${at(desired, 60)} for a demand of ${demand.toFixed(2)}`);
  });

  const spike = (t: number) => ({ rate: t === 20 ? 1000 : 100, ms: 5 });
  it('spike: one second of 10× with upscaleDelayS 2 changes nothing', () => {
    const { desired } = simulate({ settings: settings({ minReplicas: 1 }), load: spike, seconds: 60, start: 1 });
    assert.deepEqual(desired, Array(60).fill(1));
  });

  it('spike: with upscaleDelayS 0, sized to the spike (no overshoot), held for downscaleDelayS of slack', () => {
    const { desired, decisions } = simulate({ settings: settings({ minReplicas: 1, upscaleDelayS: 0 }), load: spike, seconds: 80, start: 1 });
    const sizedToSpike = Math.ceil((1000 * 0.005) / 0.7); // 8
    assert.equal(at(desired, 20), sizedToSpike);
    assert.equal(Math.max(...desired), sizedToSpike, 'never more than the spike measured');
    for (let t = 20; t <= 50; t++) assert.equal(at(desired, t), sizedToSpike, `no scale down at ${t} s`);
    assert.equal(at(desired, 51), 1, 'down once 30 s of slack are in the window');
    assert.equal(decisions[50]!.reason, 'scale down: slack for 30 s → 1');
    assert.equal(changes(desired), 2);
  });

  it('sustained slack: no change before downscaleDelayS, then down to the window maximum', () => {
    // 500/s (4 replicas) until t = 40, then 100/s (1) with 200/s (2) every fifth second.
    const load = (t: number) => ({ rate: t <= 40 ? 500 : t % 5 === 0 ? 200 : 100, ms: 5 });
    const { desired } = simulate({ settings: settings(), load, seconds: 120, start: 4 });
    for (let t = 1; t <= 70; t++) assert.equal(at(desired, t), 4, `holds at ${t} s`);
    assert.equal(at(desired, 71), 2, 'the window maximum, not the latest sample (1)');
    assert.deepEqual(desired.slice(70), Array(50).fill(2), 'and no further flapping');
  });

  it('saturated CPU: a CPU-bound model on a busy 2-core machine holds', () => {
    const machine = (cpu: number) => ({ cores: 2, cpuBusyCores: 0.9 + cpu });
    const { decisions } = simulate({ settings: settings({ minReplicas: 1 }), load: () => ({ rate: 500, ms: 5 }), seconds: 10, start: 1, cpuPerBusy: 1, machine });
    const last = decisions.at(-1)!;
    assert.deepEqual(last, { desired: 1, reason: 'hold: cpu saturated', limitedBy: 'cpu saturated', demand: 4 });
  });

  it('saturated CPU: with one idle core, a capped scale up by one', () => {
    const machine = (cpu: number) => ({ cores: 4, cpuBusyCores: 2 + cpu });
    const { desired, decisions } = simulate({ settings: settings({ minReplicas: 1 }), load: () => ({ rate: 500, ms: 5 }), seconds: 4, start: 1, cpuPerBusy: 1, machine });
    assert.equal(at(desired, 3), 2);
    assert.equal(decisions[2]!.limitedBy, 'cpu saturated');
    assert.match(decisions[2]!.reason, /→ 2 \(capped: cpu saturated\)$/);
  });

  it('saturated CPU does not stop scaling from zero to one', () => {
    const machine = () => ({ cores: 2, cpuBusyCores: 2 });
    const { desired } = simulate({ settings: settings(), load: () => ({ rate: 500, ms: 5 }), seconds: 5, start: 0, cpuPerBusy: 1, machine });
    assert.deepEqual(desired, [1, 1, 1, 1, 1]);
  });

  it('a sleeping model on a busy machine is not CPU-bound: it scales', () => {
    const machine = () => ({ cores: 2, cpuBusyCores: 2 });
    const { desired } = simulate({ settings: settings({ minReplicas: 1 }), load: () => ({ rate: 500, ms: 5 }), seconds: 5, start: 1, cpuPerBusy: 0.01, machine });
    assert.equal(at(desired, 3), 4);
  });

  it('at max_replicas: capped scale up, then hold', () => {
    const { desired, decisions } = simulate({ settings: settings({ maxReplicas: 3 }), load: () => ({ rate: 2000, ms: 5 }), seconds: 6, start: 1 });
    assert.equal(at(desired, 3), 3);
    assert.match(decisions[2]!.reason, /^scale up: 2000\/s × 5\.0 ms at 70% → 3 \(capped at max_replicas\)$/);
    assert.deepEqual(decisions[5], { desired: 3, reason: 'hold: at max_replicas', limitedBy: 'max_replicas', demand: 15 });
  });

  it('min_replicas respected: min 2 at zero load stays 2, and a count below it is raised', () => {
    const { desired, decisions } = simulate({ settings: settings({ minReplicas: 2 }), load: () => ({ rate: 0, ms: 5 }), seconds: 100, start: 2 });
    assert.deepEqual(desired, Array(100).fill(2));
    assert.equal(decisions.at(-1)!.reason, 'steady');
    const raised = simulate({ settings: settings({ minReplicas: 2 }), load: () => ({ rate: 0, ms: 5 }), seconds: 1, start: 0 });
    assert.deepEqual(raised.decisions[0], { desired: 2, reason: 'scale up: min_replicas → 2', demand: 0 });
  });

  it('scale to zero after slack; the first arrival at zero brings one back at once', () => {
    const load = (t: number) => ({ rate: t === 61 ? 1 : t > 61 ? 50 : 0, ms: 5 });
    const { desired } = simulate({ settings: settings(), load, seconds: 62, start: 1 });
    assert.equal(at(desired, 30), 1, 'not before 30 s of slack are covered');
    assert.equal(at(desired, 31), 0);
    assert.equal(at(desired, 60), 0);
    assert.equal(at(desired, 61), 1, 'one arrival is enough, regardless of upscaleDelayS');
  });

  it('missing service time: neither up nor down while the replicas answer nothing', () => {
    const s = settings();
    const samples: LoadSample[] = Array.from({ length: 40 }, (_, i) => ({ at: i * 1000, arrivalRate: 500, serviceMsPerInput: undefined, readyReplicas: 3, replicaCpuCores: 0, busyFraction: 1 }));
    const d = decideReplicas({ settings: s, current: 3, lastChangeAt: -Infinity, now: 39_000, samples, machine: undefined });
    assert.deepEqual(d, { desired: 3, reason: 'steady', demand: 3 });
    assert.deepEqual(decideReplicas({ settings: s, current: 3, lastChangeAt: -Infinity, now: 0, samples: [], machine: undefined }), { desired: 3, reason: 'hold: no samples', demand: 3 });
  });

  it('Ray Serve 18925: steady load with the decision fed back changes the count at most once', () => {
    // 400/s ± 4 % of a 5 ms/input model; busy share and CPU per replica fall as replicas are added.
    const load = (t: number) => ({ rate: 400 * (1 + 0.04 * Math.sin(t)), ms: 5 });
    const machine = (cpu: number) => ({ cores: 16, cpuBusyCores: 1 + cpu });
    const { desired, samples } = simulate({ settings: settings({ minReplicas: 1 }), load, seconds: 300, start: 1, cpuPerBusy: 0.5, machine });
    assert.ok(changes(desired) <= 1, `no reversal: ${changes(desired)} changes`);
    assert.equal(desired.at(-1), 3);
    assert.ok(samples.at(-1)!.busyFraction < samples[0]!.busyFraction, 'the loop is real: busy share fell as replicas were added');
  });

  it('never outside [min, max], never a fraction, on arbitrary samples', () => {
    let seed = 42;
    const rnd = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    for (let round = 0; round < 500; round++) {
      const minReplicas = Math.floor(rnd() * 3);
      const s = settings({ minReplicas, maxReplicas: minReplicas + 1 + Math.floor(rnd() * 5), upscaleDelayS: Math.floor(rnd() * 3), downscaleDelayS: Math.floor(rnd() * 5) });
      const samples: LoadSample[] = Array.from({ length: 8 }, (_, i) => ({
        at: i * 1000, arrivalRate: rnd() < 0.3 ? 0 : rnd() * 3000, serviceMsPerInput: rnd() < 0.2 ? undefined : rnd() * 20,
        readyReplicas: Math.floor(rnd() * 4), replicaCpuCores: rnd() * 3, busyFraction: rnd(),
      }));
      const current = Math.floor(rnd() * 9);
      const machine = rnd() < 0.5 ? undefined : { cores: 4, cpuBusyCores: rnd() * 5 };
      const d = decideReplicas({ settings: s, current, lastChangeAt: rnd() < 0.5 ? -Infinity : 5000, now: 7000, samples, machine });
      assert.ok(Number.isInteger(d.desired) && d.desired >= s.minReplicas && d.desired <= s.maxReplicas, JSON.stringify({ s, current, d }));
    }
  });
});

describe('autoscale settings', () => {
  it('fills the defaults', () => {
    assert.deepEqual(resolveAutoscaleSettings({ minReplicas: 0, maxReplicas: 4 }), { minReplicas: 0, maxReplicas: 4, upscaleDelayS: 2, downscaleDelayS: 30, targetUtilization: 0.7 });
    assert.equal(resolveAutoscaleSettings({ minReplicas: 1, maxReplicas: 1, targetUtilization: 1, upscaleDelayS: 0 }).targetUtilization, 1);
  });
  const bad: Array<{ what: string; input: Record<string, unknown>; field: RegExp }> = [
    { what: 'min > max', input: { minReplicas: 3, maxReplicas: 2 }, field: /max_replicas must be ≥ min_replicas/ },
    { what: 'negative min', input: { minReplicas: -1, maxReplicas: 2 }, field: /^min_replicas/ },
    { what: 'max of zero', input: { minReplicas: 0, maxReplicas: 0 }, field: /^max_replicas/ },
    { what: 'fractional replicas', input: { minReplicas: 0.5, maxReplicas: 2 }, field: /^min_replicas/ },
    { what: 'negative delay', input: { minReplicas: 0, maxReplicas: 2, downscaleDelayS: -1 }, field: /^downscale_delay_s/ },
    { what: 'utilization of zero', input: { minReplicas: 0, maxReplicas: 2, targetUtilization: 0 }, field: /^target_utilization/ },
    { what: 'utilization above one', input: { minReplicas: 0, maxReplicas: 2, targetUtilization: 1.5 }, field: /^target_utilization/ },
    { what: 'a string for a number', input: { minReplicas: 0, maxReplicas: '4' }, field: /^max_replicas/ },
    { what: 'NaN delay', input: { minReplicas: 0, maxReplicas: 2, upscaleDelayS: NaN }, field: /^upscale_delay_s/ },
    { what: 'missing max', input: { minReplicas: 0 }, field: /^max_replicas/ },
  ];
  for (const c of bad) {
    it(`rejects ${c.what}`, () => {
      assert.throws(() => resolveAutoscaleSettings(c.input as never), (e: unknown) => e instanceof Error && c.field.test(e.message));
    });
  }
});

describe('autoscale policy: measured in the bench', () => {
  it('smaller batches after a scale-up (5.1 → 5.65 ms per input) do not buy a fifth replica', () => {
    // 500/s: one replica's big batches cost 5.1 ms per input; at 4 replicas batches of one cost 5.65.
    const load = (_t: number, replicas: number) => ({ rate: 500, ms: replicas >= 4 ? 5.65 : 5.1 });
    const { desired } = simulate({ settings: settings(), load, seconds: 60, start: 1 });
    assert.equal(Math.max(...desired), 4);
    assert.equal(at(desired, 60), 4);
  });

  it('after the load stops, one step down to the floor, not two', () => {
    // 500/s until t = 30; the sample at t = 31 catches the tail (400/s); then nothing.
    const load = (t: number) => ({ rate: t <= 30 ? 500 : t === 31 ? 400 : 0, ms: 5 });
    const { desired } = simulate({ settings: settings({ minReplicas: 1, downscaleDelayS: 20 }), load, seconds: 90, start: 4 });
    const changes = desired.filter((d, i) => i > 0 && d !== desired[i - 1]);
    assert.deepEqual(changes, [1]);
  });
});

describe('autoscale policy: CPU cost is read only from busy samples', () => {
  it('an idle replica’s background CPU does not make a sleeping model look CPU-bound', () => {
    const idle: LoadSample = { at: 1000, arrivalRate: 1, serviceMsPerInput: 5, readyReplicas: 1, replicaCpuCores: 0.02, busyFraction: 0.005 };
    assert.equal(cpuPerBusyReplica([idle], 1000), 0);
    const busy: LoadSample = { at: 2000, arrivalRate: 180, serviceMsPerInput: 5, readyReplicas: 1, replicaCpuCores: 0.9, busyFraction: 0.9 };
    assert.equal(cpuPerBusyReplica([idle, busy], 2000), 1);
  });
});
