import { KeywardError } from '@keyward/core';
import type {
  Authenticator,
  AuthenticatorDeps,
  AuthenticatorOptions,
  DeniedHook,
  HeaderBag,
  Principal,
} from '@keyward/core/http';
import {
  requireRoles as checkRoles,
  requireScopes as checkScopes,
  createAuthenticator,
  toHttpProblem,
  withRequestHooks,
} from '@keyward/core/http';
import type { Context, MiddlewareHandler, Next } from 'hono';
import { createMiddleware } from 'hono/factory';
import { toHTTPException } from './errors.js';

/**
 * The variables keyward's middleware sets: `c.get('auth')` is the {@link Principal} (or the
 * `variable` option's name, `V`), and `c.get('jwtPayload')` its claims, for code written for `hono/jwt`.
 *
 * @example
 * ```ts
 * const app = new Hono<KeywardEnv>()
 * app.get('/me', keywardAuth(kw), (c) => c.json({ sub: c.get('auth').sub }))
 * ```
 */
export type KeywardEnv<V extends string = 'auth'> = {
  Variables: { [K in V | 'jwtPayload']: K extends 'jwtPayload' ? Principal['claims'] : Principal };
};

/**
 * The variables {@link keywardOptional} sets: both `undefined` for anonymous requests.
 *
 * @example
 * ```ts
 * app.get('/', keywardOptional(kw), (c) => c.text(c.get('auth') ? 'hello again' : 'hello'))
 * ```
 */
export type KeywardOptionalEnv<V extends string = 'auth'> = {
  Variables: {
    [K in V | 'jwtPayload']: K extends 'jwtPayload' ? Principal['claims'] | undefined : Principal | undefined;
  };
};

/** The Hono flavour of core's `getToken` / `onAuthenticated`: functions of the Hono context. */
export interface KeywardHonoAuthHooks {
  /**
   * A custom token extractor, called with the Hono context: the token, or `undefined` / `null`
   * for none. It replaces reading `Authorization: Bearer`; a returned token is verified like a
   * bearer token. May be async.
   *
   * @example
   * ```ts
   * keywardAuth(kw, { getToken: (c) => c.req.header('x-access-token') })
   * ```
   */
  getToken?: (c: Context) => string | null | undefined | Promise<string | null | undefined>;
  /**
   * Called with every verified principal and the context: return the principal to use (changed
   * or not), or throw a `KeywardError` to refuse (a disabled user). Anything else thrown reaches
   * the app's `onError` (a 500). May be async.
   */
  onAuthenticated?: (principal: Principal, c: Context) => Principal | Promise<Principal>;
}

/** Options of {@link keywardAuth} and {@link keywardOptional}. */
export interface KeywardAuthOptions<V extends string = 'auth'>
  extends Omit<AuthenticatorOptions, 'getToken' | 'onAuthenticated'>,
    KeywardHonoAuthHooks {
  /** Called for every 401 / 403 (audit, metrics). */
  onDenied?: DeniedHook;
  /**
   * The context variable of the principal: `c.get(variable)`. Default `auth`; typed for any name
   * (`keywardAuth(kw, { variable: 'user' })` types `c.get('user')`).
   */
  variable?: V;
}

/** Core's authenticator options for the Hono hooks: `getToken(c)` / `onAuthenticated(principal, c)`. */
export function honoAuthenticatorOptions(
  options: Omit<AuthenticatorOptions, 'getToken' | 'onAuthenticated'> & KeywardHonoAuthHooks,
): AuthenticatorOptions {
  return withRequestHooks<Context>(options);
}

function variableOf(variable: unknown): string {
  if (variable === undefined) return 'auth';
  if (typeof variable !== 'string' || variable === '' || variable === 'jwtPayload') {
    throw new KeywardError(
      'config_invalid',
      '@keyward/hono: "variable" must be a non-empty name other than jwtPayload',
    );
  }
  return variable;
}

/** What keyward's API-key middleware needs: an instance with an API-key service. */
export type KeywardApiKeyDeps = AuthenticatorDeps & Required<Pick<AuthenticatorDeps, 'apiKeys'>>;

type Check = (principal: Principal) => void;

// The authenticator that identified a request, so requireScopes / requireRoles check through it
// (Authenticator.authorize audits a missing scope as access.denied) without a keyward argument,
// and the principal, whatever variable it was set under: one property on the context (cheaper per
// request than WeakMap entries).
const kState = Symbol('keyward');
interface State {
  principal: Principal;
  authenticator: Authenticator;
}
const stateOf = (c: Context): State | undefined => (c as { [kState]?: State })[kState];

/**
 * The request's headers as Node parsed them, on @hono/node-server (`c.env.incoming`): reading them
 * builds no `Headers` object. Elsewhere (Bun, Deno, workers, `app.request()`), Hono's own record.
 */
function headersOf(c: Context): HeaderBag {
  const headers = (c.env as { incoming?: { headers?: unknown } } | undefined)?.incoming?.headers;
  return typeof headers === 'object' && headers !== null ? (headers as HeaderBag) : c.req.header();
}

// 4xx answers go out as HTTPException (contract JSON + challenge); anything that would be a 500
// is not keyward's to render, so the original error reaches the app's onError untouched.
function fail(err: unknown, onDenied: DeniedHook | undefined): never {
  if (toHttpProblem(err).error === 'internal_error') throw err;
  throw toHTTPException(err, onDenied);
}

// When an earlier keyward middleware (app-wide, then per route) already authenticated, verify once.
// Synchronous for keyward's own tokens (no promise, as cheap as a no-op middleware); a promise
// when the credential needs one (API keys, external issuers, async hooks).
function identify(
  c: Context,
  authenticator: Authenticator,
  required: boolean,
  onDenied: DeniedHook | undefined,
  variable = 'auth',
  reuse?: (known: Principal) => boolean,
): undefined | Promise<void> {
  const known: Principal | undefined = stateOf(c)?.principal ?? c.get('auth');
  if (known !== undefined && (reuse === undefined || reuse(known))) {
    if (c.get(variable as 'auth') === undefined) c.set(variable as 'auth', known);
    return;
  }
  let outcome: Principal | undefined | Promise<Principal | undefined>;
  try {
    // The method matters only to cookie mode's same-origin check; reading it builds Hono's request.
    const method = authenticator.cookie === undefined ? undefined : c.req.method;
    outcome = authenticator.identify(headersOf(c), method, c, required);
  } catch (err) {
    fail(err, onDenied);
  }
  if (outcome instanceof Promise) {
    return outcome.then(
      (principal) => keep(c, principal, authenticator, variable),
      (err: unknown) => fail(err, onDenied),
    );
  }
  keep(c, outcome, authenticator, variable);
}

/** The next handler, at once when `identify` settled synchronously. */
function proceed(pending: undefined | Promise<void>, next: Next): Promise<void> {
  return pending === undefined ? next() : pending.then(next);
}

function keep(
  c: Context,
  principal: Principal | undefined,
  authenticator: Authenticator,
  variable: string,
): void {
  if (principal === undefined) return;
  (c as { [kState]?: State })[kState] = { principal, authenticator };
  c.set(variable as 'auth', principal);
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
export function keywardAuth<V extends string = 'auth'>(
  kw: AuthenticatorDeps,
  options: KeywardAuthOptions<V> = {},
): MiddlewareHandler<KeywardEnv<V>> {
  const { onDenied, variable, ...authOptions } = options;
  const name = variableOf(variable);
  const authenticator = createAuthenticator(kw, honoAuthenticatorOptions(authOptions));
  return createMiddleware<KeywardEnv<V>>(function keywardAuth(c, next) {
    return proceed(identify(c, authenticator, true, onDenied, name), next);
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
export function keywardOptional<V extends string = 'auth'>(
  kw: AuthenticatorDeps,
  options: KeywardAuthOptions<V> = {},
): MiddlewareHandler<KeywardOptionalEnv<V>> {
  const { onDenied, variable, ...authOptions } = options;
  const name = variableOf(variable);
  const authenticator = createAuthenticator(kw, honoAuthenticatorOptions(authOptions));
  return createMiddleware<KeywardOptionalEnv<V>>(function keywardOptional(c, next) {
    return proceed(identify(c, authenticator, false, onDenied, name), next);
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
  return createMiddleware<KeywardEnv>(function keywardApiKey(c, next) {
    return proceed(
      identify(c, authenticator, true, onDenied, 'auth', (p) => p.via === 'api_key'),
      next,
    );
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
    const authorizer = stateOf(c)?.authenticator;
    check(stateOf(c)?.principal ?? c.get('auth'), (principal) =>
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
    const authorizer = stateOf(c)?.authenticator;
    check(stateOf(c)?.principal ?? c.get('auth'), (principal) =>
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
