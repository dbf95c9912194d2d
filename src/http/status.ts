/** The one place error codes get HTTP meaning; the compiler demands a status for every new code. */
import type { ErrorCode } from '../errors.ts';

export const HTTP_STATUS: Record<ErrorCode, number> = {
  INVALID_INPUT: 400,
  INVALID_NAME: 400,
  MALFORMED_JSON: 400,
  TYPE_MISMATCH: 400,
  ARTIFACT_INVALID: 400,
  BODY_TOO_LARGE: 413,
  APP_NOT_FOUND: 404,
  MODEL_NOT_FOUND: 404,
  VERSION_NOT_FOUND: 404,
  REPLICA_NOT_FOUND: 404,
  ROUTE_NOT_FOUND: 404,
  NO_LINKED_MODEL: 404,
  ALREADY_EXISTS: 409,
  QUEUE_FULL: 503,
  OVERLOADED: 503,
  UNAVAILABLE: 503,
  DEADLINE_EXCEEDED: 504,
  WORKER_FAILED: 502,
  MODEL_ERROR: 502,
  INTERNAL: 500,
};
