/** Query API (:1337): Clipper's `POST /{app}/predict`, KServe V2 under `/v2` (v2-api.ts), and Prometheus `GET /metrics`. */
import type { FastifyInstance } from 'fastify';
import { ServingError } from '../errors.ts';
import type { QueryMetrics } from '../query/metrics.ts';
import type { QueryProcessor } from '../query/query-processor.ts';
import type { RegistryService } from '../registry/registry-service.ts';
import { checkName, checkObject, checkUid } from '../registry/validation.ts';
import type { AppKeys } from '../security/app-keys.ts';
import { guardQueryApi } from './auth.ts';
import { MAX_BATCH_INPUTS, predictRequest, traceOf, writePredictAnswer } from './clipper-answers.ts';
import { fastPredict } from './fast-predict.ts';
import { createHttpServer, preRoute, type HttpOptions } from './server-common.ts';
import { registerV2 } from './v2-api.ts';

export { MAX_BATCH_INPUTS };
const JSON_TYPE = 'application/json; charset=utf-8';

export function createQueryApi(processor: QueryProcessor, metrics: QueryMetrics, opts: HttpOptions, appKeys: AppKeys, registry: RegistryService): FastifyInstance {
  const app = createHttpServer(opts);
  guardQueryApi(app, appKeys, registry);
  registerV2(app, processor, registry, { bodyLimitBytes: opts.bodyLimitBytes, maxInputs: MAX_BATCH_INPUTS, log: opts.log });

  app.post<{ Params: { app: string } }>('/:app/predict', async (req, reply) => {
    const { target, values, batch } = predictRequest(checkName(req.params.app, 'application name'), req.body);
    const answers = await processor.infer(target, { values }, { trace: traceOf(req) });
    return reply.type(JSON_TYPE).send(writePredictAnswer(answers, batch));
  });
  // The same route, answered without fastify when the request is plain (fast-predict.ts).
  const fast = fastPredict({ processor, inputTypeOf: (name) => registry.getApp(name)?.inputType, keys: appKeys, bodyLimitBytes: opts.bodyLimitBytes, traced: opts.tracing?.enabled === true, logsAnswers: opts.logger?.isLevelEnabled('trace') === true, logger: opts.logger });
  if (fast) preRoute(app, fast);

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

