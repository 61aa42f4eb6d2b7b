import type {
  AuthenticatorDeps,
  AuthenticatorOptions,
  DeniedHook,
  KeywardRoutesOptions,
  Principal,
  RouteDeps,
} from '@keyward/core/http';
import { createAuthenticator, reportProblem } from '@keyward/core/http';
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
export interface KeywardExpressOptions extends AuthenticatorOptions {
  /** Called for every 401 / 403 (audit, metrics). */
  onDenied?: DeniedHook;
}

/** Options of {@link KeywardExpress.router}. */
export interface KeywardRouterOptions extends KeywardRoutesOptions {
  /** Largest accepted JSON body, in express.json's format. Default `'100kb'`. */
  bodyLimit?: string | number;
}

/** The middleware and routers of one keyward instance. */
export interface KeywardExpress {
  /** Requires a valid bearer token or API key; sets `req.auth` and `res.locals.auth`. */
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
  const { onDenied, ...authOptions } = options;
  const authenticator = createAuthenticator(kw, authOptions);

  function fail(res: Response, next: NextFunction, err: unknown): void {
    const problem = reportProblem(err, onDenied);
    if (problem.status >= 500) {
      next(err);
      return;
    }
    res.set(problem.headers);
    next(new UnauthorizedError(problem, err));
  }

  function guard(required: boolean, check?: (principal: Principal) => void): RequestHandler {
    return (req: Request, res: Response, next: NextFunction) => {
      const known = req.auth;
      const found = known
        ? Promise.resolve(known)
        : authenticator[required ? 'authenticate' : 'optional'](req.headers, req.method);
      found.then(
        (principal) => {
          try {
            if (principal) {
              check?.(principal);
              req.auth = principal;
              res.locals.auth = principal;
            }
          } catch (err) {
            return fail(res, next, err);
          }
          next();
        },
        (err: unknown) => fail(res, next, err),
      );
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
