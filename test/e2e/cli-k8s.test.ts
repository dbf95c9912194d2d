/** `clipper k8s render`: the real CLI prints manifests kubectl can apply, and refuses bad options in one line. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { CLI } from '../helpers/cli-server.ts';

const render = (...args: string[]) => spawnSync(process.execPath, [CLI, 'k8s', 'render', ...args], { encoding: 'utf8' });

describe('clipper k8s render', () => {
  it('prints a JSON List with the frontends, Redis and their access rights, in the namespace asked for', () => {
    const r = render('--namespace', 'serving', '--frontends', '3');
    assert.equal(r.status, 0, r.stderr);
    const list = JSON.parse(r.stdout) as { kind: string; items: Array<{ kind: string; metadata: { name: string; namespace?: string }; spec?: { replicas?: number } }> };
    assert.equal(list.kind, 'List');
    const kinds = list.items.map((o) => o.kind);
    for (const k of ['Namespace', 'ServiceAccount', 'Role', 'RoleBinding', 'Deployment', 'Service', 'StatefulSet']) assert.ok(kinds.includes(k), `${k} in ${kinds.join(',')}`);
    assert.ok(list.items.filter((o) => o.kind !== 'Namespace').every((o) => o.metadata.namespace === 'serving'));
    assert.equal(list.items.find((o) => o.kind === 'Deployment')!.spec!.replicas, 3);
  });

  it('a value the schema refuses is one line on stderr and exit 1', () => {
    const r = render('--image-pull-policy', 'Sometimes');
    assert.equal(r.status, 1);
    assert.equal(r.stdout, '');
    assert.match(r.stderr.trim(), /^clipper: invalid Deployment clipper-frontend: .*imagePullPolicy/);
    assert.equal(r.stderr.trim().split('\n').length, 1);
  });
});
