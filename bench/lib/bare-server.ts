/**
 * The baseline frontend, run as a child process: a bare `node:http` server that reads a POST body,
 * parses the JSON, checks `input` is there and answers Clipper's answer shape in-process —
 * `{"query_id":n,"output":...,"default":false,"models":[...]}` — with no queue, RPC or model.
 *
 * argv[2], the output: `ok` answers "ok"; `head10` copies a numeric input into a Float32Array
 * (as the real frontend does) and answers its first 10 values (the size of an MLP's logits).
 * Prints `{"url": ...}` once listening.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';

const mode = process.argv[2] ?? 'ok';
const MODELS = ['bare:1'];
let nextId = 0;

function answer(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

function output(input: unknown): unknown {
  if (mode === 'head10') {
    if (!Array.isArray(input)) throw new Error('input must be an array of numbers');
    const x = new Float32Array(input.length);
    for (let k = 0; k < input.length; k++) {
      const v = input[k] as unknown;
      if (typeof v !== 'number') throw new Error(`input[${k}] is not a number`);
      x[k] = v;
    }
    return Array.from(x.subarray(0, 10));
  }
  return 'ok';
}

function handle(req: IncomingMessage, res: ServerResponse): void {
  if (req.method !== 'POST') return answer(res, 404, { error: 'ROUTE_NOT_FOUND', cause: `no route for ${req.method} ${req.url}` });
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    let body: { input?: unknown };
    try {
      body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { input?: unknown };
    } catch (e) {
      return answer(res, 400, { error: 'MALFORMED_JSON', cause: (e as Error).message });
    }
    if (body === null || typeof body !== 'object' || !('input' in body)) return answer(res, 400, { error: 'INVALID_INPUT', cause: 'request body needs "input"' });
    try {
      answer(res, 200, { query_id: nextId++, output: output(body.input), default: false, models: MODELS });
    } catch (e) {
      answer(res, 400, { error: 'INVALID_INPUT', cause: (e as Error).message });
    }
  });
}

const server = createServer({ keepAliveTimeout: 72_000 }, handle);
server.listen(0, '127.0.0.1', () => {
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : 0;
  console.log(JSON.stringify({ url: `http://127.0.0.1:${port}` }));
});
process.once('SIGTERM', () => { server.closeAllConnections(); server.close(() => process.exit(0)); });
