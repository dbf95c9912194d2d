import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import { describe, it } from 'node:test';
import { MAX_REQUEST_ID_CHARS, requestIdOf, saneRequestId } from '../../src/http/request-id.ts';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

describe('saneRequestId', () => {
  const kept: Array<[string, string]> = [
    ['a UUID', '5f0c6a3e-8d2b-4c1a-9e7f-0b1d2c3e4f5a'],
    ['a ULID', '01ARZ3NDEKTSV4RRFFQ69G5FAV'],
    ['base64 with padding', 'q83vEjRWeJA+/w=='],
    ['a W3C trace id and span', '4bf92f3577b34da6a3ce929d0e0e4736:00f067aa0ba902b7'],
    ['dots, underscores, at', 'client_1.req@host'],
    ['one character', 'x'],
    ['the longest allowed', 'a'.repeat(MAX_REQUEST_ID_CHARS)],
  ];
  for (const [what, id] of kept) it(`keeps ${what}`, () => assert.equal(saneRequestId(id), id));

  const refused: Array<[string, string | string[] | undefined]> = [
    ['no header', undefined],
    ['an empty one', ''],
    ['one character too long', 'a'.repeat(MAX_REQUEST_ID_CHARS + 1)],
    ['a space', 'two words'],
    ['a newline (a forged log line)', 'id\n{"level":60}'],
    ['a quote', 'id"'],
    ['a backslash', 'id\\n'],
    ['a comma (two headers joined)', 'a, b'],
    ['a semicolon', 'Root=1-5759e988;Sampled=1'],
    ['non-ASCII', 'idé'],
    ['a control character', 'id\u0007'],
    ['a repeated header', ['a', 'b']],
  ];
  for (const [what, id] of refused) it(`refuses ${what}`, () => assert.equal(saneRequestId(id), undefined));
});

describe('requestIdOf', () => {
  const req = (headers: Record<string, string | string[]>) => ({ headers }) as unknown as IncomingMessage;

  it("takes the client's sane x-request-id", () => {
    assert.equal(requestIdOf(req({ 'x-request-id': 'abc-123' })), 'abc-123');
  });

  it('generates a fresh UUID for none, or an insane one', () => {
    const ids = [requestIdOf(req({})), requestIdOf(req({ 'x-request-id': 'bad id' })), requestIdOf(req({ 'x-request-id': 'x'.repeat(500) }))];
    for (const id of ids) assert.match(id, UUID);
    assert.equal(new Set(ids).size, 3);
  });
});
