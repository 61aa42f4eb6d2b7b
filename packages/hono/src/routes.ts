import type {
  AuthenticatorDeps,
  AuthenticatorOptions,
  DeniedHook,
  KeywardRoutesOptions,
  RouteDeps,
} from '@keyward/core/http';
import {
  keywardRoutes as contractRoutes,
  createAuthenticator,
  handleRoute,
  invalidBody,
  problemResponse,
  routeTableOptions,
  routingFailureOf,
} from '@keyward/core/http';
import { type Context, Hono } from 'hono';
import { readFormBody, readJsonBody } from './body.js';
import { toResponse } from './errors.js';
import { honoAuthenticatorOptions, type KeywardHonoAuthHooks } from './middleware.js';

/** What {@link keywardRoutes} needs of a keyward instance: a `Keyward` from `createKeyward()` fits. */
export type KeywardHonoDeps = AuthenticatorDeps & RouteDeps;

/** Options of {@link keywardRoutes}. */
export interface KeywardHonoRoutesOptions
  extends KeywardRoutesOptions,
    Omit<AuthenticatorOptions, 'getToken' | 'onAuthenticated'>,
    KeywardHonoAuthHooks {
  /** Largest accepted JSON body, in bytes; a larger one gets 413 `body_too_large`. Default 100 KiB. */
  bodyLimit?: number;
  /** Called for every 401 / 403 (audit, metrics). */
  onDenied?: DeniedHook;
}

/** The contract's 400 for a URL whose path does not `%`-decode, or `undefined`. */
function malformedPath(url: string): unknown {
  try {
    decodeURIComponent(new URL(url).pathname);
    return undefined;
  } catch (err) {
    // The client's path: a 400 for core's mapping, as a router's URIError is.
    return routingFailureOf(Object.assign(err as URIError, { status: 400 })) ?? err;
  }
}

/**
 * Every route of keyward's HTTP contract as a Hono sub-app: login (with `users`), refresh, logout,
 * `/me`, admin keys, API keys, secrets, JWKS, health, metrics, and OAuth introspection and
 * revocation (form-encoded bodies only). Mount it with `app.route('/', …)`.
 * Errors are answered inside (JSON `{error, message}` with the RFC 6750 challenge), never a 5xx for
 * bad input.
 *
 * @example
 * ```ts
 * const kw = await createKeyward(keywardOptionsFromEnv())
 * const app = new Hono()
 * app.route('/', keywardRoutes(kw, { users: staticUsers('alice:alice-password:read') }))
 * ```
 */
export function keywardRoutes(kw: KeywardHonoDeps, options: KeywardHonoRoutesOptions = {}): Hono {
  const { bodyLimit: maxSize = 100 * 1024, onDenied } = options;
  const authenticator = createAuthenticator(kw, honoAuthenticatorOptions(options));
  const routeOptions = routeTableOptions(options);
  const app = new Hono();
  for (const route of contractRoutes(kw, routeOptions)) {
    const hasBody = route.method === 'POST' || route.method === 'PUT';
    const format = route.body ?? 'json';
    const handler = async (c: Context) => {
      // Hono leaves an undecodable `%` sequence in a parameter as it is: refuse the path instead.
      const malformed = c.req.url.includes('%') ? malformedPath(c.req.url) : undefined;
      if (malformed) return toResponse(problemResponse(malformed, onDenied));
      const body = !hasBody
        ? { ok: true as const, value: undefined }
        : format === 'form'
          ? await readFormBody(c.req.raw, maxSize)
          : await readJsonBody(c.req.raw, maxSize);
      if (!body.ok) {
        const problem = problemResponse(invalidBody(body.failure, format), onDenied);
        if (body.close) problem.headers.connection = 'close';
        return toResponse(problem);
      }
      const answer = await handleRoute(
        route,
        authenticator,
        {
          headers: c.req.header(),
          params: c.req.param(),
          query: queryOf(c),
          body: body.value,
          remoteAddress: remoteAddressOf(c),
          native: c,
        },
        onDenied,
      );
      return toResponse(answer);
    };
    app.on(route.method, route.path, handler);
  }
  return app;
}

/** The query parameters as the other adapters give them: a string, or an array when repeated. */
function queryOf(c: Context): Record<string, string | string[]> {
  const query: Record<string, string | string[]> = Object.create(null);
  for (const [name, values] of Object.entries(c.req.queries())) {
    query[name] = values.length === 1 ? (values[0] as string) : values;
  }
  return query;
}

/**
 * The client address on Node (`@hono/node-server` puts the request in `c.env`, as its `getConnInfo`
 * reads it), for the login and refresh limiter; `undefined` on other runtimes and in `app.request()`.
 */
function remoteAddressOf(c: Context): string | undefined {
  type Bindings = { incoming?: { socket?: { remoteAddress?: string } } };
  const env = c.env as (Bindings & { server?: Bindings }) | undefined;
  return (env?.server ?? env)?.incoming?.socket?.remoteAddress;
}
