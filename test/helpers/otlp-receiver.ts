/**
 * A stand-in OpenTelemetry collector: a real HTTP server on loopback taking OTLP/HTTP JSON trace
 * exports (`POST /v1/traces`, gzip or plain, as @opentelemetry/exporter-trace-otlp-http sends them)
 * and keeping the spans, flattened. Protobuf bodies are refused with 415 (the exporter we use sends
 * JSON), so a switch of exporter shows up as a failed test, not as missing spans.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gunzipSync } from 'node:zlib';

export type AttrValue = string | number | boolean | null | AttrValue[];

export interface ReceivedSpan {
  name: string;
  traceId: string;
  spanId: string;
  /** '' for a root span. */
  parentSpanId: string;
  traceState: string;
  kind: number;
  /** Epoch time in nanoseconds (exact, for ordering). */
  startNs: bigint;
  endNs: bigint;
  attributes: Record<string, AttrValue>;
  events: Array<{ name: string; timeNs: bigint; attributes: Record<string, AttrValue> }>;
  status: { code: number; message?: string };
  /** The resource's service.name. */
  service: string;
}

export interface OtlpReceiver {
  /** Base URL (as OTEL_EXPORTER_OTLP_ENDPOINT): http://127.0.0.1:port */
  url: string;
  /** Where traces are posted: `${url}/v1/traces`. */
  tracesUrl: string;
  spans: ReceivedSpan[];
  /** Export requests received (including refused ones). */
  requests: number;
  /** Waits until `probe(spans)` holds (polling), or fails naming `what`. */
  waitFor(probe: (spans: ReceivedSpan[]) => boolean, what: string, timeoutMs?: number): Promise<ReceivedSpan[]>;
  close(): Promise<void>;
}

export async function startOtlpReceiver(): Promise<OtlpReceiver> {
  const spans: ReceivedSpan[] = [];
  const receiver = { spans, requests: 0 } as OtlpReceiver;
  const server = createServer((req, res) => {
    receiver.requests++;
    handle(req, res, spans).catch((e) => answer(res, 400, { error: String(e) }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return Object.assign(receiver, {
    url,
    tracesUrl: `${url}/v1/traces`,
    async waitFor(probe: (s: ReceivedSpan[]) => boolean, what: string, timeoutMs = 10_000) {
      const end = Date.now() + timeoutMs;
      while (!probe(spans)) {
        if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; received: ${describe(spans)}`);
        await new Promise((r) => setTimeout(r, 25));
      }
      return spans;
    },
    close: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  });
}

/** One line per span (name, ids, parent) for failure messages. */
export function describe(spans: ReceivedSpan[]): string {
  if (spans.length === 0) return '(no spans)';
  return spans.map((s) => `${s.name} trace=${s.traceId.slice(0, 8)} span=${s.spanId.slice(0, 8)} parent=${s.parentSpanId.slice(0, 8) || '-'}`).join('; ');
}

async function handle(req: IncomingMessage, res: ServerResponse, spans: ReceivedSpan[]): Promise<void> {
  if (req.method !== 'POST' || !req.url?.startsWith('/v1/traces')) return answer(res, 404, { error: `no route for ${req.method} ${req.url}` });
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  let body = Buffer.concat(chunks);
  if (req.headers['content-encoding'] === 'gzip') body = gunzipSync(body);
  const type = String(req.headers['content-type'] ?? '');
  if (!type.startsWith('application/json')) return answer(res, 415, { error: `this receiver takes OTLP JSON, not ${type}` });
  spans.push(...flatten(JSON.parse(body.toString('utf8'))));
  answer(res, 200, {});
}

function answer(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
}

// ----- OTLP JSON (ExportTraceServiceRequest) -----

interface JsonKeyValue { key: string; value?: JsonAnyValue }
interface JsonAnyValue {
  stringValue?: string; boolValue?: boolean; intValue?: string | number; doubleValue?: number;
  arrayValue?: { values?: JsonAnyValue[] }; kvlistValue?: { values?: JsonKeyValue[] }; bytesValue?: string;
}
interface JsonSpan {
  traceId: string; spanId: string; parentSpanId?: string; traceState?: string; name: string; kind?: number;
  startTimeUnixNano: string | number; endTimeUnixNano: string | number;
  attributes?: JsonKeyValue[]; events?: Array<{ name: string; timeUnixNano: string | number; attributes?: JsonKeyValue[] }>;
  status?: { code?: number; message?: string };
}
interface JsonRequest {
  resourceSpans?: Array<{ resource?: { attributes?: JsonKeyValue[] }; scopeSpans?: Array<{ spans?: JsonSpan[] }> }>;
}

export function flatten(req: JsonRequest): ReceivedSpan[] {
  const out: ReceivedSpan[] = [];
  for (const rs of req.resourceSpans ?? []) {
    const service = String(attributes(rs.resource?.attributes)['service.name'] ?? '');
    for (const ss of rs.scopeSpans ?? []) {
      for (const s of ss.spans ?? []) {
        out.push({
          name: s.name, traceId: id(s.traceId), spanId: id(s.spanId), parentSpanId: id(s.parentSpanId ?? ''), traceState: s.traceState ?? '', kind: s.kind ?? 0,
          startNs: BigInt(s.startTimeUnixNano), endNs: BigInt(s.endTimeUnixNano),
          attributes: attributes(s.attributes),
          events: (s.events ?? []).map((e) => ({ name: e.name, timeNs: BigInt(e.timeUnixNano), attributes: attributes(e.attributes) })),
          status: { code: s.status?.code ?? 0, ...(s.status?.message ? { message: s.status.message } : {}) },
          service,
        });
      }
    }
  }
  return out;
}

/** OTLP JSON ids are hex; a base64 id (protobuf-JSON style) is turned into hex too. */
function id(v: string): string {
  return /^[0-9a-f]*$/.test(v) ? v : Buffer.from(v, 'base64').toString('hex');
}

function attributes(list: JsonKeyValue[] | undefined): Record<string, AttrValue> {
  const out: Record<string, AttrValue> = {};
  for (const kv of list ?? []) out[kv.key] = value(kv.value);
  return out;
}

function value(v: JsonAnyValue | undefined): AttrValue {
  if (v === undefined) return null;
  if (v.stringValue !== undefined) return v.stringValue;
  if (v.boolValue !== undefined) return v.boolValue;
  if (v.intValue !== undefined) return Number(v.intValue);
  if (v.doubleValue !== undefined) return v.doubleValue;
  if (v.arrayValue) return (v.arrayValue.values ?? []).map(value);
  if (v.bytesValue !== undefined) return v.bytesValue;
  if (v.kvlistValue) return JSON.stringify(attributes(v.kvlistValue.values));
  return null;
}
