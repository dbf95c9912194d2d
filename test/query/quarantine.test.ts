import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Quarantine } from '../../src/query/quarantine.ts';
import { FakeClock } from '../helpers/fake-clock.ts';

const b = (s: string) => Buffer.from(s);

describe('quarantine', () => {
  it('remembers an input per version for its time to live', () => {
    const clock = new FakeClock();
    const q = new Quarantine(clock, { maxEntries: 10, ttlMs: 1000 });
    q.add('m:1', b('poison'), 'why');
    assert.equal(q.check('m:1', b('poison')), 'why');
    assert.equal(q.check('m:1', b('other')), undefined);
    assert.equal(q.check('m:2', b('poison')), undefined, 'another version is not quarantined');
    clock.advance(1000);
    assert.equal(q.check('m:1', b('poison')), undefined, 'expired');
    assert.equal(q.size, 0);
  });

  it('holds at most maxEntries, forgetting the oldest', () => {
    const q = new Quarantine(new FakeClock(), { maxEntries: 3, ttlMs: 60_000 });
    for (let i = 0; i < 10; i++) q.add('m:1', b(`p${i}`), `r${i}`);
    assert.equal(q.size, 3);
    assert.equal(q.check('m:1', b('p6')), undefined);
    assert.equal(q.check('m:1', b('p9')), 'r9');
  });

  it('forgets a version that is deleted or registered again', () => {
    const q = new Quarantine(new FakeClock());
    q.add('m:1', b('x'), 'r');
    q.add('m:2', b('x'), 'r');
    q.dropVersion('m:1');
    assert.equal(q.check('m:1', b('x')), undefined);
    assert.equal(q.check('m:2', b('x')), 'r');
  });
});
