import { createError, type FastifyErrorConstructor } from '@fastify/error';
import { isKeywardError } from '@keyward/core';
import type { DeniedHook, HttpProblem, HttpResponse } from '@keyward/core/http';
import {
  asKeywardError,
  problemResponse,
  reportProblem,
  routeNotFound,
  routingFailureOf,
} from '@keyward/core/http';
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';

// Named imports (not the default one): the emitted types then resolve under every moduleResolution
// (`bundler` reads the default import of this CommonJS module as the function, not its namespace).
type KeywardErrorArgs = [message: string, options: { cause: unknown }];
const FastifyKeywardError: FastifyErrorConstructor<{ code: string }, KeywardErrorArgs> =
  createError<KeywardErrorArgs>('KEYWARD_ERROR', '%s', 401);

/**
 * An authentication or authorization failure, built with `@fastify/error`. `code` is keyward's
 * stable code (`missing_credentials`, `token_expired`, `insufficient_scope`…), `statusCode` the
 * HTTP status (400, 401, 403, or 503 when the store is down), `headers` the RFC 6750
 * `WWW-Authenticate` challenge, which Fastify's error handling sets on the reply. `cause` is the
 * original `KeywardError`.
 *
 * @example
 * ```ts
 * app.setErrorHandler((err, request, reply) => {
 *   if (err instanceof KeywardFastifyError && err.code === 'token_expired') request.log.info('expired token')
 *   return keywardErrorHandler(err, request, reply)
 * })
 * ```
 */
export class KeywardFastifyError extends FastifyKeywardError {
  override statusCode: number;
  /** Headers of the answer: the `WWW-Authenticate` challenge, `Cache-Control`. */
  readonly headers: Record<string, string>;

  constructor(problem: HttpProblem, cause: unknown) {
    super(problem.message, { cause });
    this.code = problem.error;
    this.statusCode = problem.status;
    this.headers = { ...problem.headers, 'cache-control': 'no-store' };
  }
}

/** The `KeywardFastifyError` for a `KeywardError`; any other error is returned as it is (a bug, not a 4xx). */
export function toFastifyError(err: unknown, onDenied?: DeniedHook): unknown {
  if (!isKeywardError(err)) return err;
  return new KeywardFastifyError(reportProblem(err, onDenied), err);
}

/** Writes a framework-neutral response from core onto a Fastify reply. */
export function sendResponse(reply: FastifyReply, answer: HttpResponse): FastifyReply {
  reply.code(answer.status).headers(answer.headers);
  return answer.body === undefined ? reply.send() : reply.send(answer.body);
}

/**
 * A Fastify error handler that renders keyward's errors and Fastify's body-parser 4xx errors as
 * the contract's JSON `{error, message}` with the RFC 6750 challenge. Any other error is thrown
 * on to the parent error handler (Fastify's default at the root). `keywardRoutes` uses it for its
 * own routes; set it yourself where your routes use `fastify.authenticate`.
 *
 * @example
 * ```ts
 * app.setErrorHandler(keywardErrorHandler)
 * app.get('/orders', { onRequest: app.authenticate }, async (request) => ({ owner: request.auth?.sub }))
 * ```
 */
export function keywardErrorHandler(error: FastifyError, _request: FastifyRequest, reply: FastifyReply) {
  const known = error instanceof KeywardFastifyError ? error.cause : asKeywardError(error);
  if (known) return sendResponse(reply, problemResponse(known));
  throw error;
}

/**
 * Fastify's `frameworkErrors` option: a `%`-malformed URL (`FST_ERR_BAD_URL`) or an over-long path
 * parameter (`FST_ERR_MAX_PARAM_LENGTH`, 414 by default, which echoes the URL) becomes the
 * contract's 400 `invalid_request` JSON; any other framework error a 500 `internal_error`. Fastify
 * takes it only at construction, so pass it yourself.
 *
 * @example
 * ```ts
 * const app = Fastify({ frameworkErrors: keywardFrameworkErrors, maxParamLength: MAX_PATH_PARAM_LENGTH })
 * ```
 */
export function keywardFrameworkErrors(error: FastifyError, _request: FastifyRequest, reply: FastifyReply) {
  return sendResponse(reply, problemResponse(routingFailureOf(error) ?? error));
}

/**
 * A not-found handler answering the contract's JSON 404 `{error: 'not_found', message}`, which
 * never quotes the path (Fastify's default does).
 *
 * @example
 * ```ts
 * app.setNotFoundHandler(keywardNotFoundHandler)
 * ```
 */
export function keywardNotFoundHandler(_request: FastifyRequest, reply: FastifyReply) {
  return sendResponse(reply, problemResponse(routeNotFound()));
}
