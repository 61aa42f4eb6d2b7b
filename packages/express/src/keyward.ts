import { KeywardError } from '@keyward/core';
import type {
  AuthenticatorDeps,
  AuthenticatorOptions,
  DeniedHook,
  KeywardRoutesOptions,
  Principal,
  RouteDeps,
} from '@keyward/core/http';
import { createAuthenticator, reportProblem, withRequestHooks } from '@keyward/core/http';
import type { ErrorRequestHandler, NextFunction, Request, RequestHandler, Response, Router } from 'express';
import { errorHandler, UnauthorizedError } from './errors.js';
import { keywardRouter } from './router.js';

declare global {
  namespace Express {
    interface Request {
      /** The authenticated principal, set by keyward's middleware. */
      auth?: Principal;
    }
    interface Locals {
      /** The authenticated principal, set by keyward's middleware (for views). */
      auth?: Principal;
    }
  }
}

/** What `@keyward/express` needs of a keyward instance: a `Keyward` from `createKeyward()` fits. */
export type KeywardExpressDeps = AuthenticatorDeps & RouteDeps;

/** Options of {@link keyward}. */
export interface KeywardExpressOptions extends Omit<AuthenticatorOptions, 'getToken' | 'onAuthenticated'> {
  /** Called for every 401 / 403 (audit, metrics). */
  onDenied?: DeniedHook;
  /**
   * Where the middleware puts the principal: `req[requestProperty]` and
   * `res.locals[requestProperty]`. Default `auth` (typed by keyward). For another name, type it
   * yourself: `declare global { namespace Express { interface Request { user?: Principal } } }`.
   */
  requestProperty?: string;
  /**
   * A custom token extractor (express-jwt's `getToken`): the token, or `undefined` / `null` for
   * none. It replaces reading `Authorization: Bearer`; a returned token is verified like a bearer
   * token. Also used by the contract routes of {@link KeywardExpress.router}. May be async.
   *
   * @example
   * ```ts
   * keyward(kw, { getToken: (req) => req.get('x-access-token') })
   * ```
   */
  getToken?: (req: Request) => string | null | undefined | Promise<string | null | undefined>;
  /**
   * Called with every verified principal and the request: return the principal to use (changed
   * or not: express-jwt's `formatUser`), or throw a `KeywardError` to refuse (`isRevoked`, a
   * disabled user). Anything else thrown goes to `next(err)` (a 500). May be async.
   */
  onAuthenticated?: (principal: Principal, req: Request) => Principal | Promise<Principal>;
}

/** Options of {@link KeywardExpress.router}. */
export interface KeywardRouterOptions extends KeywardRoutesOptions {
  /** Largest accepted JSON body, in express.json's format. Default `'100kb'`. */
  bodyLimit?: string | number;
}

/** The middleware and routers of one keyward instance. */
export interface KeywardExpress {
  /**
   * Requires a valid bearer token or API key; sets `req.auth` and `res.locals.auth` (or the
   * `requestProperty` option's name).
   */
  authenticate(): RequestHandler;
  /** Sets `req.auth` when a credential is present; a bad credential is still rejected. */
  optional(): RequestHandler;
  /** Requires every scope (authenticating first if needed); else 403 `insufficient_scope`. */
  requireScopes(...scopes: string[]): RequestHandler;
  /** Requires at least one of the roles (authenticating first if needed); else 403. */
  requireRoles(...roles: string[]): RequestHandler;
  /**
   * Every route of the HTTP contract (login, refresh, logout, /me, admin, API keys, secrets, JWKS,
   * health, metrics, and `POST /oauth/introspect` / `POST /oauth/revoke`, which take form-encoded
   * bodies only, within the same `bodyLimit`).
   */
  router(options?: KeywardRouterOptions): Router;
  /** `GET /health/live` and `GET /health/ready` only. */
  healthRouter(options?: Pick<KeywardRoutesOptions, 'isShuttingDown'>): Router;
  /** Renders keyward's errors as the contract's JSON; other errors go on to `next`. */
  errorHandler(): ErrorRequestHandler;
}

/**
 * Express middleware and routers for a keyward instance. Failures go to `next(err)` as an
 * {@link UnauthorizedError} (express-jwt's shape) with the `WWW-Authenticate` header already set.
 *
 * @example
 * ```ts
 * const kw = await createKeyward(keywardOptionsFromEnv())
 * const auth = keyward(kw)
 * app.use(auth.router({ users: staticUsers('alice:alice-password:read') }))
 * app.get('/orders', auth.requireScopes('orders:read'), (req, res) => res.json({ for: req.auth?.sub }))
 * app.use(auth.errorHandler())
 * ```
 */
export function keyward(kw: KeywardExpressDeps, options: KeywardExpressOptions = {}): KeywardExpress {
  const { onDenied, requestProperty = 'auth', getToken, onAuthenticated, ...authOptions } = options;
  if (typeof requestProperty !== 'string' || requestProperty === '') {
    throw new KeywardError(
      'config_invalid',
      '@keyward/express: "requestProperty" must be a non-empty string',
    );
  }
  const authenticator = createAuthenticator(
    kw,
    withRequestHooks<Request>({ ...authOptions, getToken, onAuthenticated }),
  );
  const slot = (target: object) => target as Record<string, Principal | undefined>;

  function fail(res: Response, next: NextFunction, err: unknown): void {
    const problem = reportProblem(err, onDenied);
    if (problem.status >= 500) {
      next(err);
      return;
    }
    res.set(problem.headers);
    next(new UnauthorizedError(problem, err));
  }

  function settle(
    req: Request,
    res: Response,
    next: NextFunction,
    principal: Principal | undefined,
    check: ((principal: Principal) => void) | undefined,
  ): void {
    if (principal) {
      try {
        check?.(principal);
      } catch (err) {
        fail(res, next, err);
        return;
      }
      slot(req)[requestProperty] = principal;
      slot(res.locals)[requestProperty] = principal;
    }
    next();
  }

  // Synchronous for keyward's own tokens (next() at once, no promise); through a promise for
  // credentials that need one (API keys, external issuers, async hooks).
  function guard(required: boolean, check?: (principal: Principal) => void): RequestHandler {
    return (req: Request, res: Response, next: NextFunction) => {
      let outcome: Principal | undefined | Promise<Principal | undefined>;
      try {
        outcome =
          slot(req)[requestProperty] ?? authenticator.identify(req.headers, req.method, req, required);
      } catch (err) {
        fail(res, next, err);
        return;
      }
      if (outcome instanceof Promise) {
        outcome.then(
          (principal) => settle(req, res, next, principal, check),
          (err: unknown) => fail(res, next, err),
        );
        return;
      }
      settle(req, res, next, outcome, check);
    };
  }

  return {
    authenticate: () => guard(true),
    optional: () => guard(false),
    // authorize() audits a missing scope as access.denied.
    requireScopes: (...scopes) => guard(true, (p) => authenticator.authorize(p, { scopes })),
    requireRoles: (...roles) => guard(true, (p) => authenticator.authorize(p, { roles })),
    router: (routerOptions = {}) => keywardRouter(kw, authenticator, routerOptions, onDenied),
    healthRouter: (healthOptions = {}) =>
      keywardRouter(kw, authenticator, { ...healthOptions, include: ['health'] }, onDenied),
    errorHandler,
  };
}
