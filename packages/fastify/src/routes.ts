import { KeywardError } from '@keyward/core';
import type { KeywardRoutesOptions } from '@keyward/core/http';
import { handleRoute, keywardRoutes as routeTable } from '@keyward/core/http';
import type { FastifyPluginAsync } from 'fastify';
import fp from 'fastify-plugin';
import { keywardErrorHandler, sendResponse } from './errors.js';
import { internalsOf } from './plugin.js';

/** Options of the {@link keywardRoutes} plugin. */
export interface KeywardRoutesPluginOptions extends KeywardRoutesOptions {
  /** Largest accepted JSON body, in bytes. Default 102400 (100 KiB); larger bodies get 400 `invalid_request`. */
  bodyLimit?: number;
}

const plugin: FastifyPluginAsync<KeywardRoutesPluginOptions> = async (fastify, options) => {
  const { bodyLimit = 100 * 1024, users, include, isShuttingDown, jwksSharedCache } = options;
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
      else parseJson(request, body as string, done);
    },
  );
  fastify.setErrorHandler(keywardErrorHandler);

  const routeOptions: KeywardRoutesOptions = {
    ...(users ? { users } : {}),
    ...(include ? { include } : {}),
    ...(isShuttingDown ? { isShuttingDown } : {}),
    ...(jwksSharedCache !== undefined ? { jwksSharedCache } : {}),
  };
  for (const route of routeTable(fastify.keyward, routeOptions)) {
    fastify.route({
      method: route.method,
      url: route.path,
      // The route table authenticates each route itself, also under `global: true`.
      config: { keyward: { public: true } },
      handler: async (request, reply) => {
        const answer = await handleRoute(
          route,
          authenticator,
          // The contract's paths have only named `:params` (strings).
          { headers: request.headers, params: request.params as Record<string, string>, body: request.body },
          onDenied,
        );
        return sendResponse(reply, answer);
      },
    });
  }
};

/**
 * The HTTP contract's routes (login, refresh, logout, `/me`, admin keys, API keys, secrets, JWKS,
 * health, metrics) as an encapsulated plugin, mounted from core's route table. Register it after
 * the {@link keyward} plugin; `prefix` works as for any Fastify plugin. Bad JSON, oversized and
 * non-JSON bodies get the contract's 400 `invalid_request` JSON.
 *
 * @example
 * ```ts
 * await app.register(keyward, { keyward: kw })
 * await app.register(keywardRoutes, { users: staticUsers('alice:alice-password:read') })
 * ```
 */
export const keywardRoutes = fp(plugin, {
  name: '@keyward/fastify/routes',
  fastify: '5.x',
  dependencies: ['@keyward/fastify'],
  encapsulate: true,
});
