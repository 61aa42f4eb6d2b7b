import { KeywardError } from '@keyward/core';
import type { KeywardRoute, KeywardRoutesOptions as RouteTableOptions } from '@keyward/core/http';
import {
  bodyFailureOf,
  handleRoute,
  invalidBody,
  problemResponse,
  routePrefix,
  keywardRoutes as routeTable,
  routeTableOptions,
} from '@keyward/core/http';
import type { FastifyError, FastifyInstance, FastifyPluginAsync } from 'fastify';
import fp from 'fastify-plugin';
import { keywardErrorHandler, sendResponse } from './errors.js';
import { internalsOf } from './plugin.js';

/** Options of the {@link keywardRoutes} plugin. */
export interface KeywardRoutesPluginOptions extends RouteTableOptions {
  /** Largest accepted JSON body, in bytes. Default 102400 (100 KiB); larger bodies get 413 `body_too_large`. */
  bodyLimit?: number;
}

/**
 * Registered without encapsulation, so Fastify's own `prefix` register option moves nothing: it is
 * read as keyward's `prefix` (the two are one option), and the routes go into a child context of
 * their own below. Inside a context that already has a prefix, the table is built under it (for the
 * discovery documents) and each route mounted relative to it; a route that would have to leave it
 * (`/.well-known/*` at the root) is refused: Fastify cannot serve it from there.
 */
const plugin: FastifyPluginAsync<KeywardRoutesPluginOptions> = async (fastify, options) => {
  const enclosing = fastify.prefix;
  const own = routePrefix(options.prefix);
  const routeOptions = routeTableOptions(options);
  const prefix = `${enclosing}${own}`;
  if (prefix !== '') routeOptions.prefix = prefix;
  const routes = routeTable(fastify.keyward, routeOptions).map((route) => {
    if (!route.path.startsWith(`${enclosing}/`))
      throw new KeywardError(
        'config_invalid',
        `@keyward/fastify: route "${route.name}" is served at ${route.path}, outside the context prefix "${enclosing}" keywardRoutes is registered in: register it at the application's root and pass "prefix" (or set wellKnown: 'prefixed')`,
      );
    return { ...route, path: route.path.slice(enclosing.length) };
  });
  await fastify.register(async (scope) => mountRoutes(scope, options, routes));
};

async function mountRoutes(
  fastify: FastifyInstance,
  options: KeywardRoutesPluginOptions,
  routes: KeywardRoute[],
): Promise<void> {
  const { bodyLimit = 100 * 1024 } = options;
  if (!Number.isSafeInteger(bodyLimit) || bodyLimit <= 0) {
    throw new KeywardError(
      'config_invalid',
      '@keyward/fastify: "bodyLimit" must be a positive number of bytes',
    );
  }
  const { authenticator, onDenied } = internalsOf(fastify);

  // Everything below stays inside this plugin's encapsulation: the app's own routes keep their
  // parsers and error handler. JSON only; `__proto__` keys are dropped rather than refused so a
  // polluted login body is just a wrong login (the contract's 401, not a parser error).
  fastify.removeAllContentTypeParsers();
  const parseJson = fastify.getDefaultJsonParser('remove', 'remove');
  fastify.addContentTypeParser(
    'application/json',
    { parseAs: 'string', bodyLimit },
    (request, body, done) => {
      // An empty JSON body is no body, as in the other frameworks (`POST /auth/logout` needs none).
      if (body === '') done(null, undefined);
      else void parseJson(request, body as string, done);
    },
  );
  fastify.setErrorHandler(keywardErrorHandler);

  const mount = (scope: FastifyInstance, route: KeywardRoute) =>
    scope.route({
      method: route.method,
      url: route.path,
      // The route table authenticates each route itself, also under `global: true`.
      config: { keyward: { public: true } },
      handler: async (request, reply) => {
        const answer = await handleRoute(
          route,
          authenticator,
          // The contract's paths have only named `:params` (strings).
          {
            headers: request.headers,
            params: request.params as Record<string, string>,
            // Fastify's default query parser: a string, or an array when repeated.
            query: request.query as Record<string, string | string[] | undefined>,
            body: request.body,
            remoteAddress: request.ip,
            native: request,
          },
          onDenied,
        );
        return sendResponse(reply, answer);
      },
    });
  for (const route of routes) if (route.body !== 'form') mount(fastify, route);
  const formRoutes = routes.filter((route) => route.body === 'form');
  if (formRoutes.length > 0) {
    // The OAuth endpoints (RFC 7662 / RFC 7009) take `application/x-www-form-urlencoded` only, in a
    // child context of their own, so the JSON routes above never accept a form.
    await fastify.register(async (oauth) => {
      oauth.removeAllContentTypeParsers();
      oauth.addContentTypeParser(
        'application/x-www-form-urlencoded',
        { parseAs: 'string', bodyLimit },
        (_request, body, done) => {
          // No prototype: a field named `__proto__` is just a field. Repeated fields become arrays.
          const fields: Record<string, string | string[]> = Object.create(null);
          for (const [name, value] of new URLSearchParams(body as string)) {
            const seen = fields[name];
            fields[name] = seen === undefined ? value : [...(Array.isArray(seen) ? seen : [seen]), value];
          }
          done(null, fields);
        },
      );
      oauth.setErrorHandler((error: FastifyError, request, reply) => {
        const failure = bodyFailureOf(error);
        if (failure) return sendResponse(reply, problemResponse(invalidBody(failure, 'form'), onDenied));
        return keywardErrorHandler(error, request, reply);
      });
      for (const route of formRoutes) mount(oauth, route);
    });
  }
}

/**
 * The HTTP contract's routes (login, refresh, logout, `/me`, admin keys, API keys, secrets, JWKS,
 * health, metrics, OAuth introspection and revocation) as an encapsulated plugin, mounted from
 * core's route table. Register it after the {@link keyward} plugin, at the application's root;
 * `prefix` (keyward's option and Fastify's register option alike: one prefix, applied once) serves
 * the routes under it, `/.well-known/*` staying at the root unless `wellKnown: 'prefixed'`. Bad JSON and non-JSON bodies get the contract's 400 `invalid_request` JSON,
 * oversized ones 413 `body_too_large`; the OAuth routes take form-encoded bodies only (same
 * `bodyLimit`). Malformed URLs and unknown routes are the app's: see `keywardFrameworkErrors`.
 *
 * @example
 * ```ts
 * await app.register(keyward, { keyward: kw })
 * await app.register(keywardRoutes, { users: staticUsers('alice:alice-password:read') })
 * // or under /api (/api/auth/login; the JWKS stays at /.well-known/jwks.json):
 * await app.register(keywardRoutes, { users, prefix: '/api' })
 * ```
 */
export const keywardRoutes = fp(plugin, {
  name: '@keyward/fastify/routes',
  fastify: '5.x',
  dependencies: ['@keyward/fastify'],
});
