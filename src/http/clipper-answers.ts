/**
 * Clipper's answer shape, written as JSON text: a model's output that is already JSON goes into
 * the answer as it came, never parsed and serialised again.
 *   {"query_id": 3, "output": ..., "default": false, "models": ["m:1"]}
 *   {"query_id": 4, "output": ..., "default": true, "default_explanation": "...", "models": []}
 *   {"error": "INVALID_INPUT", "cause": "..."} (an entry of a batch)
 */
import { ServingError } from '../errors.ts';
import type { Answer, EntryError, InferTarget, InferTrace } from '../query/query-processor.ts';
import { checkObject, checkUid, checkVersion } from '../registry/validation.ts';

export const MAX_BATCH_INPUTS = 10_000;

/** A predict body, checked: `{"input": x}` or `{"input_batch": [...]}`, with optional `version` and `uid`. */
export function predictRequest(app: string, raw: unknown): { target: InferTarget; values: unknown[]; batch: boolean } {
  const body = checkObject(raw);
  const version = body.version === undefined ? undefined : checkVersion(body.version, 'version');
  const target = { app, version, uid: checkUid(body.uid) };
  if ('input_batch' in body) {
    const batch = body.input_batch;
    if (!Array.isArray(batch)) throw new ServingError('INVALID_INPUT', 'input_batch must be an array of inputs');
    if (batch.length === 0) throw new ServingError('INVALID_INPUT', 'input_batch is empty');
    // One request may not hold the event loop for seconds: bigger batches are split by the client.
    if (batch.length > MAX_BATCH_INPUTS) throw new ServingError('INVALID_INPUT', `input_batch holds ${batch.length} inputs; at most ${MAX_BATCH_INPUTS} per request`);
    return { target, values: batch, batch: true };
  }
  if (!('input' in body)) throw new ServingError('INVALID_INPUT', 'request body needs "input" (or "input_batch")');
  return { target, values: [body.input], batch: false };
}

/** The answer text of a predict: one answer, or `batch_predictions`. */
export function writePredictAnswer(answers: Array<Answer | EntryError>, batch: boolean): string {
  return batch ? batchAnswerJson(answers) : answerJson(answers[0]!);
}

/** `models` arrays are shared by the answers of one version: their JSON is written once. */
const modelsJson = new WeakMap<string[], string>();

export function answerJson(a: Answer | EntryError): string {
  if ('error' in a) return a.cause === undefined ? `{"error":${JSON.stringify(a.error)}}` : `{"error":${JSON.stringify(a.error)},"cause":${JSON.stringify(a.cause)}}`;
  let models = modelsJson.get(a.models);
  if (models === undefined) modelsJson.set(a.models, (models = JSON.stringify(a.models)));
  let s = `{"query_id":${a.queryId},"output":${a.output.json()},"default":${a.isDefault}`;
  if (a.explanation !== undefined) s += `,"default_explanation":${JSON.stringify(a.explanation)}`;
  s += `,"models":${models}`;
  if (a.confidence !== undefined) s += `,"confidence":${a.confidence}`;
  return `${s}}`;
}

export function batchAnswerJson(answers: Array<Answer | EntryError>): string {
  return `{"batch_predictions":[${answers.map(answerJson).join(',')}]}`;
}

/** The request's trace, when tracing is on (set by the HTTP server's hooks, ../observability/tracing.ts). */
export function traceOf(req: object): InferTrace | undefined {
  return (req as { trace?: InferTrace }).trace;
}
