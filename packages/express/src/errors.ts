import type { HttpProblem, HttpResponse } from '@keyward/core/http';
import { asKeywardError, problemResponse } from '@keyward/core/http';
import type { ErrorRequestHandler, Response } from 'express';

/**
 * An authentication or authorization failure, shaped like express-jwt's `UnauthorizedError`
 * (`name`, `status`, `code`, `inner`), so error handlers written for express-jwt keep working.
 * `code` is keyward's stable code (`missing_credentials`, `token_expired`, `insufficient_scope`…);
 * `status` is 400, 401 or 403. The `WWW-Authenticate` challenge is already set on the response.
 *
 * @example
 * ```ts
 * app.use((err, req, res, next) => {
 *   if (err.name === 'UnauthorizedError') return res.status(err.status).json({ error: err.code })
 *   next(err)
 * })
 * ```
 */
export class UnauthorizedError extends Error {
  override readonly name = 'UnauthorizedError';
  /** HTTP status: 400 `invalid_request`, 401, or 403 `insufficient_scope`. */
  readonly status: number;
  /** Same as `status`, for handlers that read `statusCode` (http-errors). */
  readonly statusCode: number;
  /** keyward's stable code, the `error` field of the contract's JSON body. */
  readonly code: string;
  /** The original error (a `KeywardError`). */
  readonly inner: Error;
  /** Headers of the answer (`WWW-Authenticate`…); Express's final handler applies them too. */
  readonly headers: Record<string, string>;
  /** The message is safe to show to the client. */
  readonly expose = true;

  constructor(problem: HttpProblem, inner: unknown) {
    super(problem.message, { cause: inner });
    this.status = problem.status;
    this.statusCode = problem.status;
    this.code = problem.error;
    this.headers = problem.headers;
    this.inner = inner instanceof Error ? inner : new Error(String(inner));
  }
}

/** Writes a framework-neutral response from core onto an Express response. */
export function send(res: Response, answer: HttpResponse): void {
  res.status(answer.status).set(answer.headers);
  if (answer.body === undefined) res.end();
  else if (typeof answer.body === 'string') res.send(answer.body);
  else res.json(answer.body);
}

/** The keyward error behind `err`, or `undefined` when it is none of ours (nor a body-parser 4xx). */
export function keywardErrorOf(err: unknown): unknown {
  return err instanceof UnauthorizedError ? err.inner : asKeywardError(err);
}

/**
 * An Express error handler that renders keyward's errors, and body-parser's 4xx errors, as the
 * contract's JSON (`{error, message}` with the RFC 6750 challenge). Other errors go on to `next`.
 *
 * @example
 * ```ts
 * app.use(auth.errorHandler())
 * ```
 */
export function errorHandler(): ErrorRequestHandler {
  return (err, _req, res, next) => {
    const keywardError = keywardErrorOf(err);
    if (keywardError === undefined || res.headersSent) return next(err);
    send(res, problemResponse(keywardError));
  };
}
