/**
 * The RPC server against raw ZeroMQ clients: refused registrations make nothing and get no more
 * answers, secrets decide who registers, large frames are dropped, CURVE keeps plain clients out.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { curveKeyPair } from 'zeromq';
import { replicaSecret } from '../../src/rpc/replica-auth.ts';
import type { Replica } from '../../src/rpc/replica.ts';
import { RpcServer, type RpcSecurity } from '../../src/rpc/router-server.ts';
import { waitFor } from '../helpers/server.ts';
import { RawContainer, sleep, type RawClaim } from './raw-container.ts';

const key = Buffer.alloc(32, 1);
const open: Array<{ close(): unknown }> = [];
after(async () => { for (const c of open.splice(0).reverse()) await c.close(); });

async function server(security: RpcSecurity = {}): Promise<RpcServer & { refusals: string[]; ready: Replica[] }> {
  const s = new RpcServer({
    host: '127.0.0.1', port: 0, heartbeatTimeoutMs: 3000, predictTimeoutMs: 10_000, security: { replicaKey: key, ...security },
    lookupVersion: (n, v) => (n === 'm' && v === '1' ? { inputTypeCode: 4 } : undefined),
  });
  await s.start();
  open.push(s);
  const out = Object.assign(s, { refusals: [] as string[], ready: [] as Replica[] });
  s.on('refused', (_c, reason: string) => out.refusals.push(reason));
  s.on('ready', (r: Replica) => out.ready.push(r));
  return out;
}

function container(port: number, claim: RawClaim | undefined, opts: ConstructorParameters<typeof RawContainer>[1] = {}): RawContainer {
  const c = new RawContainer(port, opts);
  if (claim) c.register(claim);
  open.push(c);
  return c;
}

const m = (c: Partial<RawClaim> = {}): RawClaim => ({ name: 'm', version: '1', typeText: '4', ...c });

describe('registration', () => {
  it('refuses bad input types, unknown models and a mismatched type; serves the good replica', async () => {
    const s = await server();
    const bad = [m({ typeText: '-1' }), m({ typeText: '1e300' }), m({ typeText: '' }), m({ name: 'nobody' }), m({ typeText: '3' })];
    const fakes = bad.map((c) => container(s.boundPort, c));
    await waitFor(() => s.refusals.length === bad.length, 5000, 'five refusals');
    const good = container(s.boundPort, m(), { answer: (xs) => xs.map((x) => `ok:${x}`) });
    await waitFor(() => s.ready.length === 1, 5000, 'the good replica');
    const [out] = await s.predict(s.ready[0]!, 4, [Buffer.from('x')]);
    assert.equal(out!.value.toString(), 'ok:x');
    assert.equal(s.readyReplicas().length, 1);
    assert.match(s.refusals.join('\n'), /input type -1 is not one of 0\.\.4/);
    assert.match(s.refusals.join('\n'), /not a decimal number/);
    assert.match(s.refusals.join('\n'), /no model "nobody"/);
    assert.match(s.refusals.join('\n'), /differs from the registered/);
    const before = fakes.map((f) => f.heartbeats.length);
    await sleep(1200);
    assert.deepEqual(fakes.map((f) => f.heartbeats.length), before, 'a refused connection gets no more answers');
    assert.ok(good.heartbeats.length > 0);
  });

  it('with plain registrations off: no secret and a wrong secret are refused, the right one accepted', async () => {
    const s = await server({ allowPlain: false });
    container(s.boundPort, m());
    container(s.boundPort, m({ ext: { extensions: [], replica_id: 'm:1#0', secret: 'f'.repeat(64) } }));
    container(s.boundPort, m({ ext: { replica_id: 'm:1#0' } }));
    await waitFor(() => s.refusals.length === 3, 5000, 'three refusals');
    container(s.boundPort, m({ ext: { replica_id: 'm:1#0', secret: replicaSecret(key, 'm:1#0', 'm', '1') } }));
    await waitFor(() => s.ready.length === 1, 5000, 'the managed replica');
    assert.equal(s.ready[0]!.replicaId, 'm:1#0');
    assert.equal(s.ready[0]!.authenticated, true);
  });

  it('with plain registrations on: a wrong secret is still refused, none at all is plain', async () => {
    const s = await server({ allowPlain: true });
    container(s.boundPort, m({ ext: { replica_id: 'm:1#0', secret: 'wrong' } }));
    await waitFor(() => s.refusals.length === 1, 5000, 'the refusal');
    assert.match(s.refusals[0]!, /secret for replica "m:1#0" is wrong/);
    container(s.boundPort, m({ ext: { replica_id: 'm:1#0' } }));
    await waitFor(() => s.ready.length === 1, 5000, 'the plain replica');
    assert.equal(s.ready[0]!.replicaId, undefined, 'a replica id without its secret is not trusted');
    assert.equal(s.ready[0]!.authenticated, false);
  });
});

it('drops a peer that sends a frame over the limit, and keeps serving the others', async () => {
  const s = await server({ maxMessageBytes: 64 * 1024 });
  const good = container(s.boundPort, m(), { answer: (xs) => xs.map(() => 'ok') });
  await waitFor(() => s.ready.length === 1, 5000, 'the good replica');
  const big = container(s.boundPort, undefined, { beatMs: 3_600_000 });
  await sleep(300);
  const got = big.heartbeats.length; // the reply to its first, small heartbeat
  const frame = Buffer.alloc(1024 * 1024);
  frame.writeUInt32LE(2); // a "heartbeat" of 1 MiB
  big.send([Buffer.alloc(0), frame]);
  await sleep(1000);
  assert.equal(big.heartbeats.length, got, 'the oversized message was never handled');
  const [out] = await s.predict(s.ready[0]!, 4, [Buffer.from('y')]);
  assert.equal(out!.value.toString(), 'ok');
  assert.ok(good.predicts >= 1);
});

it('over CURVE: a client with the server key registers, a plain client never reaches the server', async () => {
  const curve = curveKeyPair();
  const s = await server({ curve });
  const plain = container(s.boundPort, m(), { beatMs: 200 });
  const wrongKey = container(s.boundPort, m(), { beatMs: 200, serverKey: curveKeyPair().publicKey });
  const client = container(s.boundPort, m(), { serverKey: curve.publicKey, answer: (xs) => xs.map(() => 'curve') });
  await waitFor(() => s.ready.length === 1, 5000, 'the curve client');
  const [out] = await s.predict(s.ready[0]!, 4, [Buffer.from('z')]);
  assert.equal(out!.value.toString(), 'curve');
  await sleep(800);
  assert.deepEqual([plain.heartbeats.length, wrongKey.heartbeats.length], [0, 0]);
  assert.equal(s.ready.length, 1);
  assert.ok(client.heartbeats.length > 0);
});

it("gives plain v3 replicas Clipper's heartbeat allowance; ours still go after the heartbeat timeout", async () => {
  const s = new RpcServer({ host: '127.0.0.1', port: 0, heartbeatTimeoutMs: 400, predictTimeoutMs: 10_000, plainSilenceMs: 2000 });
  await s.start();
  open.push(s);
  const lost: string[] = [];
  s.on('lost', (r: Replica) => lost.push(r.modelName));
  const plain = container(s.boundPort, m({ name: 'plain' }), { beatMs: 100 });
  const ours = container(s.boundPort, m({ name: 'ours', ext: { extensions: ['status'] } }), { beatMs: 100 });
  await waitFor(() => s.readyReplicas().length === 2, 5000, 'both registered');
  plain.close();
  ours.close();
  await sleep(1200);
  assert.deepEqual(lost, ['ours'], 'silent 1.2 s: only the one that declared extensions is gone');
  await waitFor(() => lost.length === 2, 3000, 'the plain one after its allowance');
});
