/**
 * Who may use which API (docs/security.md).
 *
 * Admin API: bearer tokens with two roles. The admin token may do everything; the read token may
 * only read (GET /admin/status, GET /admin/ping and the POST endpoints that change nothing). With
 * no token configured the admin API is open, which start-up allows only on a loopback address
 * (checkExposure). A missing or wrong token gets 401 with `WWW-Authenticate: Bearer`; the read
 * token on a write endpoint gets 403.
 *
 * Query API: an application with keys (security/app-keys.ts) answers predict, update and its V2
 * routes (`/v2/models/{app}/...`) only to
 * `Authorization: Bearer <key>` or `X-Api-Key: <key>`; other applications stay open.
 *
 * Both checks run in `onRequest`, before the body is read or parsed.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { isLoopback } from '../config.ts';
import { ServingError, type ErrorCode } from '../errors.ts';
import type { AppKeys } from '../security/app-keys.ts';
import { keyRefusal } from '../security/key-check.ts';
import type { RegistryService } from '../registry/registry-service.ts';
import { sendError } from './server-common.ts';
import { V2_MODEL_ROUTES } from './v2-api.ts';

export interface AdminTokens {
  /** Every right; '' = none configured. */
  admin: string;
  /** Reads only; '' = none configured. */
  read: string;
}

export type Role = 'admin' | 'read';

/** The admin endpoints a read token may call: they report and change nothing. */
export const READ_ONLY_ENDPOINTS: ReadonlySet<string> = new Set([
  'GET /admin/status',
  'GET /admin/ping',
  ...['get_all_applications', 'get_application', 'get_linked_models', 'get_all_models', 'get_model',
    'get_all_containers', 'get_container', 'get_selection_state', 'get_replica_logs'].map((e) => `POST /admin/${e}`),
]);

const TOKEN_PATTERN = /^[\x21-\x7e]+$/;

/**
 * Refuses a configuration that would expose the admin API: a non-loopback address with no admin
 * token, a read token without an admin token, equal tokens, or a token that cannot travel in a
 * header. Called by startApp before anything is created or bound.
 */
export function checkExposure(config: { host: string; adminToken: string; readToken: string }): void {
  const tokens = adminTokens(config);
  for (const [flag, value] of [['--admin-token', tokens.admin], ['--read-token', tokens.read]] as const) {
    if (value !== '' && !TOKEN_PATTERN.test(value)) throw new ServingError('INVALID_INPUT', `${flag}: a token may hold only visible ASCII characters (no spaces or newlines)`);
  }
  if (tokens.read !== '' && tokens.admin === '') throw new ServingError('INVALID_INPUT', '--read-token needs an --admin-token as well (otherwise nobody could change anything)');
  if (tokens.read !== '' && tokens.read === tokens.admin) throw new ServingError('INVALID_INPUT', '--admin-token and --read-token must differ');
  if (tokens.admin === '' && !isLoopback(config.host)) {
    throw new ServingError('INVALID_INPUT', `refusing to listen on ${config.host} without an admin token: anyone who can reach it could deploy and run programs; `
      + 'pass --admin-token, --admin-token-file or CLIPPER_ADMIN_TOKEN, or bind 127.0.0.1');
  }
}

export function adminTokens(config: { adminToken: string; readToken: string }): AdminTokens {
  return { admin: config.adminToken, read: config.readToken };
}

/** The role an admin request needs: routes not in the table need admin; an unknown route needs any token (then 404). */
export function requiredRole(method: string, routeUrl: string | undefined): Role {
  if (routeUrl === undefined) return 'read';
  return READ_ONLY_ENDPOINTS.has(`${method === 'HEAD' ? 'GET' : method} ${routeUrl}`) ? 'read' : 'admin';
}

/** The token of `Authorization: Bearer <token>`, or undefined. */
export function bearerToken(req: FastifyRequest): string | undefined {
  const h = req.headers.authorization;
  if (typeof h !== 'string') return undefined;
  const m = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(h);
  return m?.[1];
}

/** Equal secrets, in time that depends on neither secret's content nor length. */
export function sameSecret(given: string, expected: string): boolean {
  if (expected === '') return false;
  const a = createHash('sha256').update(given).digest();
  const b = createHash('sha256').update(expected).digest();
  return timingSafeEqual(a, b);
}

/** The role a presented token grants, or undefined for none. */
export function roleOf(token: string | undefined, tokens: AdminTokens): Role | undefined {
  if (token === undefined) return undefined;
  const admin = sameSecret(token, tokens.admin);
  const read = sameSecret(token, tokens.read);
  return admin ? 'admin' : read ? 'read' : undefined;
}

/** Requires a token on every admin request, when an admin token is configured (else the API stays open). */
export function guardAdminApi(app: FastifyInstance, tokens: AdminTokens): void {
  if (tokens.admin === '') return;
  app.addHook('onRequest', async (req, reply) => {
    const token = bearerToken(req);
    const role = roleOf(token, tokens);
    if (role === undefined) {
      const cause = token === undefined
        ? 'the admin API needs a token: send "Authorization: Bearer <token>"'
        : 'the token is not valid for this server';
      return refuse(reply, 'UNAUTHORIZED', cause);
    }
    if (role === 'read' && requiredRole(req.method, req.routeOptions.url) === 'admin') {
      return refuse(reply, 'FORBIDDEN', `the read-only token may not call ${req.method} ${req.routeOptions.url}; it needs the admin token`);
    }
  });
}

/**
 * Requires one of an application's keys on its predict and update routes, and on the V2 routes
 * that name it (`/v2/models/{app}/...`, any method), when it has keys. A V2 route that names a
 * model (inference straight on a model) needs a key of one of the keyed applications the model
 * is linked to, so the model path is no way around an application's keys. V2 refusals are V2's
 * `{"error": "..."}`.
 */
export function guardQueryApi(app: FastifyInstance, keys: AppKeys, registry: Pick<RegistryService, 'getApp' | 'listApps' | 'linkedModels'>): void {
  const guarded = new Set(['/:app/predict', '/:app/update']);
  const v2 = new Set(V2_MODEL_ROUTES);
  app.addHook('onRequest', async (req, reply) => {
    const url = req.routeOptions.url ?? '';
    const isV2 = v2.has(url);
    if (!isV2 && (req.method !== 'POST' || !guarded.has(url))) return;
    const params = req.params as { app?: string; m?: string };
    const appName = (isV2 ? params.m : params.app) ?? '';
    const header = req.headers['x-api-key'];
    const presented = bearerToken(req) ?? (typeof header === 'string' ? header : undefined);
    const how = 'send "Authorization: Bearer <key>" or "X-Api-Key: <key>"';
    const cause = keyRefusal(keys, isV2 ? registry : undefined, appName, presented, how);
    if (cause === undefined) return;
    if (!isV2) return refuse(reply, 'UNAUTHORIZED', cause);
    return reply.code(401).header('www-authenticate', 'Bearer').type('application/json').send({ error: cause });
  });
}

/**
 * Answers a refused request. A body the client is still sending is read and dropped before the
 * answer goes out (server-common.ts, up to a bound), so the answer is not lost to a reset.
 */
function refuse(reply: FastifyReply, code: ErrorCode, cause: string): FastifyReply {
  if (code === 'UNAUTHORIZED') reply.header('www-authenticate', 'Bearer');
  return sendError(reply, code, cause);
}
