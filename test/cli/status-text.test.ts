/** `clipper status` text: the cluster section, and a status from a server that has none. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { statusText } from '../../src/cli/status-text.ts';

describe('status text', () => {
  it('names this frontend, who leads, and every frontend of the cluster', () => {
    const follower = statusText({
      backend: 'docker',
      cluster: {
        frontend: 'fe2', leader: false, leader_frontend: 'fe1', leader_admin: 'http://10.0.0.11:1338',
        frontends: [{ id: 'fe1', rpc: '10.0.0.11:7000', query_url: 'http://10.0.0.11:1337', admin_url: 'http://10.0.0.11:1338' }, { id: 'fe2', rpc: '10.0.0.12:7000' }],
      },
    });
    assert.match(follower, /cluster: this is frontend fe2, following fe1 at http:\/\/10\.0\.0\.11:1338/);
    assert.match(follower, /fe1 +10\.0\.0\.11:7000/);
    assert.match(follower, /fe2 +10\.0\.0\.12:7000 +- +-/);
    assert.match(statusText({ cluster: { frontend: 'fe1', leader: true } }), /fe1, leading the resource manager/);
    assert.match(statusText({ cluster: { frontend: 'fe3', leader: false, leader_frontend: null } }), /following \(no leader right now\)/);
  });

  it('shows a machine that is down, and why', () => {
    const text = statusText({ machines: [{ name: 'm1', cores: 2, state: 'up' }, { name: 'm2', cores: 0, state: 'down', reason: 'engine did not answer for 10 s' }] });
    assert.match(text, /m2 +down: engine did not answer for 10 s/);
    assert.match(text, /m1 +up/);
  });

  it('a single server has no cluster section', () => {
    assert.doesNotMatch(statusText({ backend: 'local' }), /cluster:/);
  });
});
