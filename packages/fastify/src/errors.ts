import createError from '@fastify/error';
import { isKeywardError } from '@keyward/core';
import type { BodyFailure, DeniedHook, HttpProblem, HttpResponse } from '@keyward/core/http';
import { invalidBody, problemResponse, toHttpProblem } from '@keyward/core/http';
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';

const FastifyKeywardError = createError<[message: string, options: { cause: unknown }]>(
  'KEYWARD_ERROR',
  '%s',
  401,
);

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
  const problem = toHttpProblem(err);
  if (problem.status === 401 || problem.status === 403) onDenied?.(problem.error, problem.status);
  return new KeywardFastifyError(problem, err);
}

const BODY_FAILURES: Record<string, BodyFailure> = {
  FST_ERR_CTP_BODY_TOO_LARGE: 'too_large',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'unsupported_type',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'malformed',
  FST_ERR_CTP_INVALID_JSON_BODY: 'malformed',
};

/** Why Fastify's body parsing refused the request, or `undefined` when `err` is not a parser error. */
function bodyFailureOf(err: FastifyError): BodyFailure | undefined {
  const code = typeof err.code === 'string' ? err.code : '';
  const status = err.statusCode ?? 0;
  // Any other 4xx of the parser (content-length mismatch…) is a request we could not read.
  return (
    BODY_FAILURES[code] ??
    (code.startsWith('FST_ERR_CTP_') && status >= 400 && status < 500 ? 'unreadable' : undefined)
  );
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
  if (error instanceof KeywardFastifyError) return sendResponse(reply, problemResponse(error.cause));
  if (isKeywardError(error)) return sendResponse(reply, problemResponse(error));
  const failure = bodyFailureOf(error);
  if (failure) return sendResponse(reply, problemResponse(invalidBody(failure)));
  throw error;
}
