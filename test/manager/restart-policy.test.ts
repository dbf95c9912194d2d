/** Restart backoff: a table of exits (how long each run lasted) and the delays they get. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DEFAULT_RESTART_POLICY, INITIAL_BACKOFF, nextRestart, type RestartPolicyConfig } from '../../src/manager/restart-policy.ts';

function delays(upFor: number[], cfg?: RestartPolicyConfig): number[] {
  let state = INITIAL_BACKOFF;
  return upFor.map((ms) => {
    const r = nextRestart(state, ms, cfg);
    state = r.state;
    return r.delayMs;
  });
}

describe('restart policy', () => {
  const cases: Array<{ what: string; upFor: number[]; want: number[]; cfg?: RestartPolicyConfig }> = [
    {
      what: 'crash loop doubles from 250 ms up to 10 s and stays there',
      upFor: Array(9).fill(100),
      want: [250, 500, 1000, 2000, 4000, 8000, 10_000, 10_000, 10_000],
    },
    {
      what: 'a healthy run (≥ 30 s) resets to 250 ms, then doubles again',
      upFor: [100, 100, 100, 100, 30_000, 100, 100],
      want: [250, 500, 1000, 2000, 250, 500, 1000],
    },
    {
      what: 'a run just short of healthy does not reset',
      upFor: [100, 100, 29_999],
      want: [250, 500, 1000],
    },
    {
      what: 'custom config: 1 s doubling to 3 s, healthy after 5 s',
      upFor: [0, 0, 0, 0, 5000, 0],
      want: [1000, 2000, 3000, 3000, 1000, 2000],
      cfg: { minMs: 1000, maxMs: 3000, healthyAfterMs: 5000 },
    },
  ];
  for (const c of cases) {
    it(c.what, () => assert.deepEqual(delays(c.upFor, c.cfg), c.want));
  }

  it('starts from 250 ms with the documented defaults, and does not mutate its input', () => {
    assert.deepEqual(INITIAL_BACKOFF, { nextDelayMs: 250 });
    assert.deepEqual(DEFAULT_RESTART_POLICY, { minMs: 250, maxMs: 10_000, healthyAfterMs: 30_000 });
    const state = { nextDelayMs: 500 };
    assert.deepEqual(nextRestart(state, 0), { delayMs: 500, state: { nextDelayMs: 1000 } });
    assert.deepEqual(state, { nextDelayMs: 500 });
  });
});
