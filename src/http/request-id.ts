/**
 * Request ids: every HTTP request gets one, echoed in the `x-request-id` answer header and carried
 * by every log record about the request. A client's own `x-request-id` is kept when it is sane —
 * 1 to MAX_REQUEST_ID_CHARS characters of letters, digits and `-_.:+/=@` (UUIDs, ULIDs, base64,
 * trace ids) — so it cannot forge log lines or carry anything into them; otherwise one is generated.
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';

export const REQUEST_ID_HEADER = 'x-request-id';
export const MAX_REQUEST_ID_CHARS = 128;

const SANE = /^[A-Za-z0-9\-_.:+/=@]+$/;

/** The client's request id when it is sane, else undefined (a repeated header counts as not sane). */
export function saneRequestId(value: string | string[] | undefined): string | undefined {
  return typeof value === 'string' && value.length <= MAX_REQUEST_ID_CHARS && SANE.test(value) ? value : undefined;
}

/** fastify's `genReqId`: the client's id when sane, else a fresh UUID. */
export function requestIdOf(req: IncomingMessage): string {
  return saneRequestId(req.headers[REQUEST_ID_HEADER]) ?? randomUUID();
}
