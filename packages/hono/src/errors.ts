import type { DeniedHook, HttpResponse } from '@keyward/core/http';
import { problemResponse } from '@keyward/core/http';
import { HTTPException } from 'hono/http-exception';
import type { ContentfulStatusCode } from 'hono/utils/http-status';

/** Core's framework-neutral answer as a standalone `Response` (JSON bodies serialized). */
export function toResponse(answer: HttpResponse): Response {
  const headers = new Headers(answer.headers);
  let body: string | null = null;
  if (typeof answer.body === 'string') body = answer.body;
  else if (answer.body !== undefined) {
    body = JSON.stringify(answer.body);
    headers.set('content-type', 'application/json');
  }
  return new Response(body, { status: answer.status, headers });
}

/**
 * Turns a keyward error into Hono's `HTTPException`: `status` is 400, 401, 403, 404 or 503, `cause`
 * is the stable code (`missing_credentials`, `token_expired`, `insufficient_scope`…), `message` is
 * safe to show, and `getResponse()` is the contract's answer: JSON `{error, message}` with the RFC 6750
 * `WWW-Authenticate` challenge. Hono's default error handler sends that response as is.
 *
 * @example
 * ```ts
 * app.onError((err, c) => {
 *   if (err instanceof HTTPException && err.cause === 'token_expired') console.info('stale client')
 *   return err instanceof HTTPException ? err.getResponse() : c.text('internal error', 500)
 * })
 * app.get('/secrets/:name', keywardAuth(kw), async (c) => {
 *   try {
 *     return c.json({ value: await kw.secrets.get(c.get('auth').sub, c.req.param('name')) })
 *   } catch (err) {
 *     throw toHTTPException(err)
 *   }
 * })
 * ```
 */
export function toHTTPException(err: unknown, onDenied?: DeniedHook): HTTPException {
  const answer = problemResponse(err, onDenied);
  const { error, message } = answer.body as { error: string; message: string };
  return new HTTPException(answer.status as ContentfulStatusCode, {
    message,
    cause: error,
    res: toResponse(answer),
  });
}
