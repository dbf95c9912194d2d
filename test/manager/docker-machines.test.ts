/** Engine addresses and the machines file: parsed and validated without any engine. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { engineEndpointFromEnv, isLocalEngine, parseDockerHost } from '../../src/manager/docker/engine-client.ts';
import { machinesFromHosts, parseMachines } from '../../src/manager/machines.ts';

describe('engine addresses', () => {
  it('parses unix, tcp, https and ssh hosts as a Docker context does', () => {
    assert.deepEqual(parseDockerHost('unix:///var/run/docker.sock'), { kind: 'unix', socketPath: '/var/run/docker.sock' });
    assert.deepEqual(parseDockerHost('tcp://10.0.0.2:2376'), { kind: 'tcp', host: '10.0.0.2', port: 2376, tls: false });
    assert.deepEqual(parseDockerHost('https://[fd00::2]:2376/'), { kind: 'tcp', host: 'fd00::2', port: 2376, tls: true });
    assert.deepEqual(parseDockerHost('ssh://clipper@m4:2222'), { kind: 'ssh', user: 'clipper', host: 'm4', port: 2222 });
    assert.deepEqual(parseDockerHost('ssh://m4'), { kind: 'ssh', user: undefined, host: 'm4', port: undefined });
    assert.throws(() => parseDockerHost('tcp://m4'), /unsupported Docker host "tcp:\/\/m4"/);
    assert.equal(isLocalEngine('unix:///x.sock'), true);
    assert.equal(isLocalEngine('tcp://127.0.0.1:2375'), false);
  });

  it('reads DOCKER_HOST, DOCKER_TLS_VERIFY and DOCKER_CERT_PATH as the CLI does', () => {
    assert.deepEqual(engineEndpointFromEnv({}), { host: 'unix:///var/run/docker.sock' });
    assert.deepEqual(engineEndpointFromEnv({ DOCKER_HOST: 'tcp://h:2375' }), { host: 'tcp://h:2375' });
    assert.deepEqual(engineEndpointFromEnv({ DOCKER_HOST: 'tcp://h:2376', DOCKER_TLS_VERIFY: '1', DOCKER_CERT_PATH: '/certs' }),
      { host: 'tcp://h:2376', tls: { certPath: '/certs', verify: true } });
    assert.deepEqual(engineEndpointFromEnv({ DOCKER_HOST: 'tcp://h:2376', DOCKER_CERT_PATH: '/certs' }),
      { host: 'tcp://h:2376', tls: { certPath: '/certs', verify: false } });
  });
});

describe('machines file', () => {
  it('accepts machines with TLS files, resolving relative paths from the file\'s directory', () => {
    assert.deepEqual(parseMachines([
      { name: 'm1', host: 'unix:///var/run/docker.sock' },
      { name: 'm2', host: 'tcp://10.0.0.2:2376', tls: { ca: 'm2/ca.pem', cert: 'm2/cert.pem', key: '/abs/key.pem' } },
      { name: 'm3', host: 'ssh://clipper@10.0.0.3', copyArtifacts: true },
    ], '/etc/clipper'), [
      { name: 'm1', host: 'unix:///var/run/docker.sock' },
      { name: 'm2', host: 'tcp://10.0.0.2:2376', tls: { ca: '/etc/clipper/m2/ca.pem', cert: '/etc/clipper/m2/cert.pem', key: '/abs/key.pem' } },
      { name: 'm3', host: 'ssh://clipper@10.0.0.3', copyArtifacts: true },
    ]);
  });

  const bad: Array<[unknown, RegExp]> = [
    [[], /non-empty JSON array/],
    [[{ name: 'm1', host: 'unix:///a' }, { name: 'm1', host: 'unix:///b' }], /machine m1 is named twice/],
    [[{ name: 'm 1', host: 'unix:///a' }], /name must match/],
    [[{ name: 'm1', host: 'ftp://x' }], /host must be/],
    [[{ name: 'm1', host: 'tcp://x:1', tls: { ca: 'ca.pem' } }], /tls needs certPath, or cert and key/],
    [[{ name: 'm1', host: 'unix:///a', port: 1 }], /unknown field port/],
  ];
  for (const [input, message] of bad) it(`refuses ${JSON.stringify(input)}`, () => assert.throws(() => parseMachines(input), message));

  it('repeated --docker-host values: named or numbered by position', () => {
    assert.deepEqual(machinesFromHosts(['unix:///var/run/docker.sock', 'gpu=tcp://10.0.0.9:2376'], { certPath: '/certs', verify: true }), [
      { name: 'm1', host: 'unix:///var/run/docker.sock' },
      { name: 'gpu', host: 'tcp://10.0.0.9:2376', tls: { certPath: '/certs', verify: true } },
    ]);
  });
});
