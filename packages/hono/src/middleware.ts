import { KeywardError } from '@keyward/core';
import type {
  Authenticator,
  AuthenticatorDeps,
  AuthenticatorOptions,
  DeniedHook,
  Principal,
} from '@keyward/core/http';
import {
  requireRoles as checkRoles,
  requireScopes as checkScopes,
  createAuthenticator,
  toHttpProblem,
} from '@keyward/core/http';
import type { Context, MiddlewareHandler } from 'hono';
import { createMiddleware } from 'hono/factory';
import { toHTTPException } from './errors.js';

/**
 * The variables keyward's middleware sets: `c.get('auth')` is the {@link Principal}, and
 * `c.get('jwtPayload')` its claims, for code written for `hono/jwt`.
 *
 * @example
 * ```ts
 * const app = new Hono<KeywardEnv>()
 * app.get('/me', keywardAuth(kw), (c) => c.json({ sub: c.get('auth').sub }))
 * ```
 */
export type KeywardEnv = { Variables: { auth: Principal; jwtPayload: Principal['claims'] } };

/**
 * The variables {@link keywardOptional} sets: both `undefined` for anonymous requests.
 *
 * @example
 * ```ts
 * app.get('/', keywardOptional(kw), (c) => c.text(c.get('auth') ? 'hello again' : 'hello'))
 * ```
 */
export type KeywardOptionalEnv = {
  Variables: { auth: Principal | undefined; jwtPayload: Principal['claims'] | undefined };
};

/** Options of {@link keywardAuth} and {@link keywardOptional}. */
export interface KeywardAuthOptions extends AuthenticatorOptions {
  /** Called for every 401 / 403 (audit, metrics). */
  onDenied?: DeniedHook;
}

/** What keyward's API-key middleware needs: an instance with an API-key service. */
export type KeywardApiKeyDeps = AuthenticatorDeps & Required<Pick<AuthenticatorDeps, 'apiKeys'>>;

type Check = (principal: Principal) => void;

// The authenticator that identified a request, so requireScopes / requireRoles check through it
// (Authenticator.authorize audits a missing scope as access.denied) without a keyward argument.
const authorizers = new WeakMap<Context, Authenticator>();

// 4xx answers go out as HTTPException (contract JSON + challenge); anything that would be a 500
// is not keyward's to render, so the original error reaches the app's onError untouched.
function fail(err: unknown, onDenied: DeniedHook | undefined): never {
  if (toHttpProblem(err).error === 'internal_error') throw err;
  throw toHTTPException(err, onDenied);
}

// When an earlier keyward middleware (app-wide, then per route) already authenticated, verify once.
async function identify(
  c: Context,
  authenticator: Authenticator,
  find: () => Promise<Principal | undefined>,
  onDenied: DeniedHook | undefined,
  reuse: (known: Principal) => boolean = () => true,
): Promise<void> {
  const known: Principal | undefined = c.get('auth');
  if (known !== undefined && reuse(known)) return;
  let principal: Principal | undefined;
  try {
    principal = await find();
  } catch (err) {
    fail(err, onDenied);
  }
  if (principal === undefined) return;
  authorizers.set(c, authenticator);
  c.set('auth', principal);
  c.set('jwtPayload', principal.claims);
}

/**
 * Requires a valid bearer token (`Authorization: Bearer`, scheme case-insensitive) or API key
 * (`X-API-Key`); sets `c.get('auth')` and `c.get('jwtPayload')`. Otherwise throws an
 * `HTTPException` (401 without or with a bad credential, 400 for a malformed header).
 *
 * @example
 * ```ts
 * const app = new Hono<KeywardEnv>()
 * app.use('/api/*', keywardAuth(kw))
 * app.get('/api/orders', (c) => c.json({ owner: c.get('auth').sub }))
 * ```
 */
export function keywardAuth(
  kw: AuthenticatorDeps,
  options: KeywardAuthOptions = {},
): MiddlewareHandler<KeywardEnv> {
  const { onDenied, ...authOptions } = options;
  const authenticator = createAuthenticator(kw, authOptions);
  return createMiddleware<KeywardEnv>(async function keywardAuth(c, next) {
    await identify(
      c,
      authenticator,
      () => authenticator.authenticate(c.req.header(), c.req.method),
      onDenied,
    );
    await next();
  });
}

/**
 * Sets `c.get('auth')` when the request carries a credential and leaves it `undefined` when it
 * carries none; a bad or malformed credential is still rejected.
 *
 * @example
 * ```ts
 * app.get('/feed', keywardOptional(kw), (c) => c.json({ personal: c.get('auth') !== undefined }))
 * ```
 */
export function keywardOptional(
  kw: AuthenticatorDeps,
  options: KeywardAuthOptions = {},
): MiddlewareHandler<KeywardOptionalEnv> {
  const { onDenied, ...authOptions } = options;
  const authenticator = createAuthenticator(kw, authOptions);
  return createMiddleware<KeywardOptionalEnv>(async function keywardOptional(c, next) {
    await identify(c, authenticator, () => authenticator.optional(c.req.header(), c.req.method), onDenied);
    await next();
  });
}

/**
 * Requires an API key (`X-API-Key`, or `apiKeyHeader`); bearer tokens are not looked at, so an
 * `Authorization` header meant for something else (a proxy's Basic auth) does not interfere.
 *
 * @example
 * ```ts
 * app.post('/webhooks/build', keywardApiKey(kw), requireScopes('ci'), (c) => c.body(null, 202))
 * ```
 */
export function keywardApiKey(
  kw: KeywardApiKeyDeps,
  options: Pick<KeywardAuthOptions, 'apiKeyHeader' | 'onDenied'> = {},
): MiddlewareHandler<KeywardEnv> {
  const { onDenied, apiKeyHeader } = options;
  const authenticator = createAuthenticator(kw, {
    apiKeys: true,
    bearer: false,
    ...(apiKeyHeader ? { apiKeyHeader } : {}),
  });
  return createMiddleware<KeywardEnv>(async function keywardApiKey(c, next) {
    await identify(
      c,
      authenticator,
      () => authenticator.authenticate(c.req.header(), c.req.method),
      onDenied,
      (p) => p.via === 'api_key',
    );
    await next();
  });
}

/**
 * Requires every scope of the principal set by an earlier {@link keywardAuth} (or
 * {@link keywardApiKey}); else 403 `insufficient_scope` with the RFC 6750 challenge, or 401 when
 * no principal was set.
 *
 * @example
 * ```ts
 * app.post('/admin/reindex', keywardAuth(kw), requireScopes('admin'), (c) => c.json({ started: true }))
 * ```
 */
export function requireScopes(...scopes: string[]): MiddlewareHandler<KeywardEnv> {
  return createMiddleware<KeywardEnv>(async function requireScopes(c, next) {
    const authorizer = authorizers.get(c);
    check(c.get('auth'), (principal) =>
      authorizer ? authorizer.authorize(principal, { scopes }) : checkScopes(principal, scopes),
    );
    await next();
  });
}

/**
 * Requires at least one of the roles (the `roles` claim) of the principal set by an earlier
 * {@link keywardAuth}; else 403 `insufficient_scope`, or 401 when no principal was set.
 *
 * @example
 * ```ts
 * app.delete('/users/:id', keywardAuth(kw), requireRoles('support', 'owner'), (c) => c.body(null, 204))
 * ```
 */
export function requireRoles(...roles: string[]): MiddlewareHandler<KeywardEnv> {
  return createMiddleware<KeywardEnv>(async function requireRoles(c, next) {
    const authorizer = authorizers.get(c);
    check(c.get('auth'), (principal) =>
      authorizer ? authorizer.authorize(principal, { roles }) : checkRoles(principal, roles),
    );
    await next();
  });
}

function check(principal: Principal | undefined, rule: Check): void {
  try {
    if (principal === undefined) throw new KeywardError('missing_credentials', 'authentication required');
    rule(principal);
  } catch (err) {
    fail(err, undefined);
  }
}
