/**
 * Errors of the V2 (Open Inference Protocol) transport. Each carries the HTTP status a V2 server
 * answers with; `grpcCode` gives the matching gRPC status for the gRPC transport. The body of a
 * REST error is `{"error": "<message>"}` (see `v2ErrorBody`).
 */
import { isServingError } from '../errors.ts';
import { HTTP_STATUS } from '../http/status.ts';

export class V2Error extends Error {
  readonly status: number;

  constructor(status: number, message: string) {
    super(message);
    this.name = 'V2Error';
    this.status = status;
  }
}

export const badRequest = (message: string): V2Error => new V2Error(400, message);
export const notFound = (message: string): V2Error => new V2Error(404, message);

export function isV2Error(e: unknown): e is V2Error {
  return e instanceof V2Error;
}

/** HTTP status for any error: V2Error's own, a ServingError's mapped code, else 500. */
export function v2Status(e: unknown): number {
  if (e instanceof V2Error) return e.status;
  if (isServingError(e)) return HTTP_STATUS[e.code] ?? 500;
  return 500;
}

/** The V2 REST error body. */
export function v2ErrorBody(e: unknown): { error: string } {
  return { error: e instanceof Error ? e.message : String(e) };
}

/** gRPC status codes the V2 gRPC service answers with (numeric values from the gRPC spec). */
export const GRPC_CODE = {
  OK: 0,
  CANCELLED: 1,
  UNKNOWN: 2,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  ALREADY_EXISTS: 6,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  UNAUTHENTICATED: 16,
} as const;

/**
 * The gRPC status for any error. An overloaded server (full queue, shed, store unreachable) is
 * UNAVAILABLE: retryable, as gRPC clients' retry policies expect. What exceeds a limit for good
 * (a message too large, a full disk) is RESOURCE_EXHAUSTED.
 */
export function grpcCodeOf(e: unknown): number {
  if (isServingError(e) && (e.code === 'QUEUE_FULL' || e.code === 'OVERLOADED' || e.code === 'STORAGE_UNAVAILABLE')) return GRPC_CODE.UNAVAILABLE;
  if (isServingError(e) && e.code === 'STORAGE_FULL') return GRPC_CODE.RESOURCE_EXHAUSTED;
  if (v2Status(e) === 413) return GRPC_CODE.RESOURCE_EXHAUSTED;
  return grpcCode(v2Status(e));
}

/** The gRPC status matching an HTTP status. */
export function grpcCode(httpStatus: number): number {
  switch (httpStatus) {
    case 400: case 413: return GRPC_CODE.INVALID_ARGUMENT;
    case 401: return GRPC_CODE.UNAUTHENTICATED;
    case 403: return GRPC_CODE.PERMISSION_DENIED;
    case 404: return GRPC_CODE.NOT_FOUND;
    case 409: return GRPC_CODE.ALREADY_EXISTS;
    case 408: case 504: return GRPC_CODE.DEADLINE_EXCEEDED;
    case 429: case 507: return GRPC_CODE.RESOURCE_EXHAUSTED;
    case 501: return GRPC_CODE.UNIMPLEMENTED;
    case 502: case 503: return GRPC_CODE.UNAVAILABLE;
    default: return httpStatus >= 200 && httpStatus < 300 ? GRPC_CODE.OK : httpStatus < 500 ? GRPC_CODE.INVALID_ARGUMENT : GRPC_CODE.INTERNAL;
  }
}
