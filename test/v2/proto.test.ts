/**
 * src/v2/grpc_service.proto against KServe's own grpc_predict_v2.proto: every service rpc, message,
 * field name, number, type, label and oneof of the reference must be the same in ours.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { fixtureText, KSERVE_SKIP } from './fixtures.ts';
import { parseProto, type ProtoField } from './proto-parser.ts';

const OURS = fileURLToPath(new URL('../../src/v2/grpc_service.proto', import.meta.url));

describe('V2 gRPC service definition', () => {
  const ours = parseProto(readFileSync(OURS, 'utf8'));

  it('parses and holds the six rpcs of inference.GRPCInferenceService', () => {
    assert.equal(ours.package, 'inference');
    const rpcs = ours.services.get('GRPCInferenceService');
    assert.ok(rpcs);
    assert.deepEqual(rpcs.map((r) => r.name).sort(), ['ModelInfer', 'ModelMetadata', 'ModelReady', 'ServerLive', 'ServerMetadata', 'ServerReady']);
    for (const r of rpcs) {
      assert.ok(ours.messages.has(r.request), r.request);
      assert.ok(ours.messages.has(r.response), r.response);
    }
    for (const [name, fields] of ours.messages) {
      const numbers = fields.map((f) => f.number);
      assert.equal(new Set(numbers).size, numbers.length, `${name} reuses a field number`);
      assert.equal(new Set(fields.map((f) => f.name)).size, fields.length, `${name} reuses a field name`);
    }
  });

  it('the parser reads what it needs from a sample', () => {
    const p = parseProto(`syntax = "proto3"; package a.b; /* c */ message M { // x
      message N { optional int32 k = 1 [deprecated = true]; } enum E { Z = 0; }
      reserved 9; map<string, N> m = 2; oneof o { bool b = 3; string s = 4; } repeated bytes r = 5; }
      service S { rpc Go(stream M) returns (M.N); }`);
    assert.equal(p.package, 'a.b');
    assert.deepEqual(p.messages.get('M.N'), [{ name: 'k', number: 1, type: 'int32', label: 'optional' }]);
    assert.deepEqual(p.messages.get('M'), [
      { name: 'm', number: 2, type: 'map<string,N>', label: '' },
      { name: 'b', number: 3, type: 'bool', label: '', oneof: 'o' },
      { name: 's', number: 4, type: 'string', label: '', oneof: 'o' },
      { name: 'r', number: 5, type: 'bytes', label: 'repeated' },
    ]);
    assert.deepEqual(p.services.get('S'), [{ name: 'Go', request: 'M', response: 'M.N', clientStreaming: true, serverStreaming: false }]);
  });

  it("matches KServe's grpc_predict_v2.proto field for field", { skip: KSERVE_SKIP }, () => {
    const ref = parseProto(fixtureText('grpc_predict_v2.proto'));
    assert.equal(ours.package, ref.package);
    const refRpcs = ref.services.get('GRPCInferenceService');
    assert.ok(refRpcs, 'the reference has GRPCInferenceService');
    assert.deepEqual(ours.services.get('GRPCInferenceService'), refRpcs);

    // every message reachable from the service, with nested ones
    assert.ok(ref.messages.size >= 16, `reference parsed with ${ref.messages.size} messages`);
    let compared = 0;
    for (const [name, refFields] of ref.messages) {
      const ourFields = ours.messages.get(name);
      assert.ok(ourFields, `message ${name} is missing`);
      for (const f of refFields) {
        const o: ProtoField | undefined = ourFields.find((x) => x.name === f.name);
        assert.ok(o, `${name}.${f.name} is missing`);
        assert.deepEqual(o, f, `${name}.${f.name} differs`);
        compared++;
      }
      // anything we add must not take a number the reference uses
      for (const o of ourFields) {
        if (!refFields.some((f) => f.name === o.name)) {
          assert.ok(!refFields.some((f) => f.number === o.number), `${name}.${o.name} reuses number ${o.number}`);
        }
      }
    }
    assert.ok(compared >= 50, `compared ${compared} fields`);
  });
});
