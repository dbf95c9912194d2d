/** Query API (:1337): Clipper's `POST /{app}/predict`, KServe V2 under `/v2` (v2-api.ts), and Prometheus `GET /metrics`. */
import type { FastifyInstance } from 'fastify';
import { ServingError } from '../errors.ts';
import type { QueryMetrics } from '../query/metrics.ts';
import type { QueryProcessor } from '../query/query-processor.ts';
import type { RegistryService } from '../registry/registry-service.ts';
import { checkName, checkObject, checkUid, checkVersion } from '../registry/validation.ts';
import type { AppKeys } from '../security/app-keys.ts';
import { guardQueryApi } from './auth.ts';
import { answerJson, batchAnswerJson, traceOf } from './clipper-answers.ts';
import { createHttpServer, type HttpOptions } from './server-common.ts';
import { registerV2 } from './v2-api.ts';

export const MAX_BATCH_INPUTS = 10_000;
const JSON_TYPE = 'application/json; charset=utf-8';

export function createQueryApi(processor: QueryProcessor, metrics: QueryMetrics, opts: HttpOptions, appKeys: AppKeys, registry: RegistryService): FastifyInstance {
  const app = createHttpServer(opts);
  guardQueryApi(app, appKeys, registry);
  registerV2(app, processor, registry, { bodyLimitBytes: opts.bodyLimitBytes, maxInputs: MAX_BATCH_INPUTS, log: opts.log });

  app.post<{ Params: { app: string } }>('/:app/predict', async (req, reply) => {
    const name = checkName(req.params.app, 'application name');
    const body = checkObject(req.body);
    const version = body.version === undefined ? undefined : checkVersion(body.version, 'version');
    const uid = checkUid(body.uid);
    if ('input_batch' in body) {
      const batch = body.input_batch;
      if (!Array.isArray(batch)) throw new ServingError('INVALID_INPUT', 'input_batch must be an array of inputs');
      if (batch.length === 0) throw new ServingError('INVALID_INPUT', 'input_batch is empty');
      // One request may not hold the event loop for seconds: bigger batches are split by the client.
      if (batch.length > MAX_BATCH_INPUTS) throw new ServingError('INVALID_INPUT', `input_batch holds ${batch.length} inputs; at most ${MAX_BATCH_INPUTS} per request`);
      const answers = await processor.infer({ app: name, version, uid }, { values: batch }, { trace: traceOf(req) });
      return reply.type(JSON_TYPE).send(batchAnswerJson(answers));
    }
    if (!('input' in body)) throw new ServingError('INVALID_INPUT', 'request body needs "input" (or "input_batch")');
    const [answer] = await processor.infer({ app: name, version, uid }, { values: [body.input] }, { trace: traceOf(req) });
    return reply.type(JSON_TYPE).send(answerJson(answer!));
  });

  app.post<{ Params: { app: string } }>('/:app/update', async (req) => {
    const name = checkName(req.params.app, 'application name');
    const body = checkObject(req.body);
    if (!('input' in body)) throw new ServingError('INVALID_INPUT', 'feedback needs "input"');
    if (!('label' in body) || body.label === null) throw new ServingError('INVALID_INPUT', 'feedback needs "label"');
    const { feedback } = await processor.feedback(name, body.input, body.label, checkUid(body.uid));
    return { success: true, feedback };
  });

  app.get('/metrics', async (_req, reply) => {
    reply.type(metrics.registry.contentType);
    return metrics.registry.metrics();
  });

  return app;
}

