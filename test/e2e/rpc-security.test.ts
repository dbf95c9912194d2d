/**
 * The RPC port against hostile containers, on a started server: refused registrations make no
 * queue and no metric series and never answer a query; secrets decide who may serve a real model;
 * oversized frames are dropped; a CURVE port serves managed replicas and keeps plain clients out.
 */
import assert from 'node:assert/strict';
import { tmpdir } from 'node:os';
import { after, before, describe, it } from 'node:test';
import type { UserConfig } from '../../src/config.ts';
import { ECHO_MODEL, send, startTestServer, waitFor, writeJsModel, type TestServer } from '../helpers/server.ts';
import { RawContainer, sleep, type RawClaim } from '../rpc/raw-container.ts';

const fakes: RawContainer[] = [];
after(() => { for (const f of fakes.splice(0)) f.close(); });

function fake(s: TestServer, claim: RawClaim | undefined, opts: ConstructorParameters<typeof RawContainer>[1] = {}): RawContainer {
  const c = new RawContainer(s.app.rpcPort, { answer: (xs) => xs.map(() => 'FAKE'), ...opts });
  if (claim) c.register(claim);
  fakes.push(c);
  return c;
}

/** A server with app `a` served by js model `real` (strings, echoes "real:<input>"). */
async function serving(cfg: UserConfig = {}): Promise<TestServer & { refusals: string[] }> {
  const s = await startTestServer({ artifactRoot: tmpdir(), ...cfg });
  const refusals: string[] = [];
  s.app.rpc.on('refused', (_c: unknown, reason: string) => refusals.push(reason));
  await s.admin('add_app', { name: 'a', input_type: 'strings', default_output: 'none', latency_slo_micros: 5_000_000 });
  const r = await s.admin('add_model', { model_name: 'real', model_version: '1', input_type: 'strings', runtime: 'js', model_data_path: writeJsModel(ECHO_MODEL('real')) });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  assert.equal(r.body.ready, true);
  await s.admin('add_model_links', { app_name: 'a', model_names: ['real'] });
  return Object.assign(s, { refusals });
}

/** Sends n queries (batches of 20); returns how many outputs came from anyone but the real model. */
async function foreignAnswers(s: TestServer, n: number): Promise<number> {
  let foreign = 0;
  for (let i = 0; i < n; i += 20) {
    const inputs = Array.from({ length: Math.min(20, n - i) }, (_, j) => `q${i + j}`);
    const r = await s.predict('a', { input_batch: inputs });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    r.body.batch_predictions.forEach((p: any, j: number) => { if (p.output !== `real:${inputs[j]}`) foreign++; });
  }
  return foreign;
}

const real = (c: Partial<RawClaim> = {}): RawClaim => ({ name: 'real', version: '1', typeText: '4', ...c });

describe('RPC port on loopback (plain v3 allowed)', () => {
  let s: TestServer & { refusals: string[] };
  before(async () => { s = await serving({ rpcMaxMessageBytes: 256 * 1024 }); });
  after(() => s.close());

  it('refuses input types -1 and 1e300; the real replica answers every query', async () => {
    const bad = [fake(s, real({ typeText: '-1' })), fake(s, real({ typeText: '1e300' }))];
    await waitFor(() => s.refusals.length >= 2, 5000, 'two refusals');
    assert.equal(await foreignAnswers(s, 100), 0);
    assert.deepEqual(bad.map((f) => f.predicts), [0, 0]);
    assert.equal(s.app.rpc.readyReplicas().length, 1);
  });

  it('300 registrations of unknown models leave no queue and no metric series', async () => {
    const before = s.refusals.length;
    const names = Array.from({ length: 300 }, (_, i) => `ghost-${i}`);
    const ghosts = names.map((name) => fake(s, { name, version: '1', typeText: '4' }, { beatMs: 60_000 }));
    await waitFor(() => s.refusals.length >= before + 300, 20_000, '300 refusals');
    assert.deepEqual(s.app.processor.queueStats().map((q) => q.model), ['real:1']);
    const metrics = await (await fetch(`${s.app.queryUrl}/metrics`)).text();
    assert.equal(metrics.includes('ghost-'), false, 'no series for a model nobody deployed');
    assert.ok(metrics.includes('real'), 'the real model has its series');
    for (const g of ghosts) g.close();
  });

  it('refuses a wrong secret even though plain registrations are allowed', async () => {
    const before = s.refusals.length;
    const f = fake(s, real({ ext: { extensions: [], replica_id: 'real:1#0', secret: '0'.repeat(64) } }));
    await waitFor(() => s.refusals.length > before, 5000, 'the refusal');
    assert.match(s.refusals.at(-1)!, /secret for replica "real:1#0" is wrong/);
    assert.equal(await foreignAnswers(s, 100), 0);
    assert.equal(f.predicts, 0);
  });

  it('drops a peer that sends a frame over rpcMaxMessageBytes and keeps serving', async () => {
    const big = fake(s, undefined, { beatMs: 3_600_000 });
    await sleep(200);
    const heard = big.heartbeats.length;
    const frame = Buffer.alloc(4 * 1024 * 1024);
    frame.writeUInt32LE(2);
    big.send([Buffer.alloc(0), frame]);
    await sleep(800);
    assert.equal(big.heartbeats.length, heard, 'the 4 MiB message was never handled');
    assert.equal(await foreignAnswers(s, 60), 0);
  });
});

describe('RPC port with plain registrations off', () => {
  let s: TestServer & { refusals: string[] };
  before(async () => { s = await serving({ rpcAllowPlain: false }); });
  after(() => s.close());

  it('a fake without the secret cannot serve a real model: 0 of 200 queries reach it', async () => {
    const f = fake(s, real());
    await waitFor(() => s.refusals.length >= 1, 5000, 'the refusal');
    assert.match(s.refusals[0]!, /no replica secret/);
    assert.equal(await foreignAnswers(s, 200), 0);
    assert.equal(f.predicts, 0);
    assert.equal(s.app.rpc.readyReplicas().length, 1, 'only the managed replica');
    assert.equal(s.app.rpc.readyReplicas()[0]!.authenticated, true);
  });
});

describe('RPC port over CURVE', () => {
  let s: TestServer & { refusals: string[] };
  before(async () => { s = await serving({ rpcCurve: 'on' }); });
  after(() => s.close());

  it('a managed js replica registers and serves through the SDK over CURVE', async () => {
    assert.equal(await foreignAnswers(s, 40), 0);
    assert.deepEqual(s.app.rpc.readyReplicas().map((r) => [r.replicaId, r.authenticated]), [['real:1#0', true]]);
    const r = await send(`${s.app.adminUrl}/admin/get_model`, { model_name: 'real', model_version: '1' });
    assert.equal(r.status, 200);
  });

  it('a plain client cannot reach the port, so cannot register', async () => {
    const plain = fake(s, real(), { beatMs: 200 });
    await sleep(1000);
    assert.equal(plain.heartbeats.length, 0, 'no ZMTP session without CURVE');
    assert.equal(s.refusals.length, 0, 'nothing even arrived to be refused');
    assert.equal(plain.predicts, 0);
    assert.equal(await foreignAnswers(s, 40), 0);
  });
});
