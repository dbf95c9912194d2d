/**
 * One error type for the whole system. Codes carry no transport meaning;
 * each frontend maps them once (see src/http/status.ts).
 */
export type ErrorCode =
  | 'INVALID_INPUT'
  | 'INVALID_NAME'
  | 'MALFORMED_JSON'
  | 'BODY_TOO_LARGE'
  | 'APP_NOT_FOUND'
  | 'MODEL_NOT_FOUND'
  | 'VERSION_NOT_FOUND'
  | 'REPLICA_NOT_FOUND'
  | 'ROUTE_NOT_FOUND'
  | 'ALREADY_EXISTS'
  | 'TYPE_MISMATCH'
  | 'NO_LINKED_MODEL'
  | 'ARTIFACT_INVALID'
  | 'QUEUE_FULL'
  | 'OVERLOADED'
  | 'DEADLINE_EXCEEDED'
  | 'WORKER_FAILED'
  | 'MODEL_ERROR'
  | 'UNAVAILABLE'
  | 'UNAUTHORIZED'
  | 'FORBIDDEN'
  | 'REQUEST_TIMEOUT'
  | 'STORAGE_FULL'
  | 'STORAGE_UNAVAILABLE'
  | 'INTERNAL';

export class ServingError extends Error {
  readonly code: ErrorCode;
  readonly detail: string | undefined;

  constructor(code: ErrorCode, message: string, detail?: string) {
    super(message);
    this.name = 'ServingError';
    this.code = code;
    this.detail = detail;
  }
}

export function isServingError(e: unknown): e is ServingError {
  return e instanceof ServingError;
}

export function errorMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
