/**
 * The "per-request server" baseline, run as a child process: fastify answering
 * `POST /:app/predict {"input": [...]}` by one onnxruntime-node `session.run` on a [1, width]
 * tensor per request — no queue, no batching, no RPC. argv[2]: the .onnx file; argv[3]: intra-op
 * threads (default 1). Prints `{"url": ...}` once listening.
 */
import Fastify from 'fastify';
import { InferenceSession, Tensor } from 'onnxruntime-node';

const file = process.argv[2]!;
const threads = Number(process.argv[3] ?? 1);
const session = await InferenceSession.create(file, {
  intraOpNumThreads: threads, interOpNumThreads: 1, executionMode: 'sequential', graphOptimizationLevel: 'all',
});
const inputName = session.inputNames[0]!;
const outputName = session.outputNames[0]!;
const MODELS = ['per-request:1'];
let nextId = 0;

const app = Fastify({ logger: false, bodyLimit: 10 * 1024 * 1024 });
app.post<{ Params: { app: string }; Body: { input?: unknown } }>('/:app/predict', async (req, reply) => {
  const input = req.body?.input;
  if (!Array.isArray(input) || !input.every((v) => typeof v === 'number')) {
    return reply.code(400).send({ error: 'INVALID_INPUT', cause: 'input must be an array of numbers' });
  }
  const feed = new Tensor('float32', Float32Array.from(input as number[]), [1, input.length]);
  const result = await session.run({ [inputName]: feed });
  const out = result[outputName]!;
  return { query_id: nextId++, output: Array.from(out.data as Float32Array), default: false, models: MODELS };
});

await app.listen({ host: '127.0.0.1', port: 0 });
const addr = app.server.address();
console.log(JSON.stringify({ url: `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}` }));
process.once('SIGTERM', () => { void app.close().then(() => process.exit(0)); });
