import Fastify from 'fastify';
import {
  COOKIE_MODE_TEST_OPTIONS,
  describeCookieModeAppRoutes,
} from '../../testing/src/cookie-app-routes.js';
import { keywardErrorHandler } from './errors.js';
import { keyward } from './plugin.js';

describeCookieModeAppRoutes('Fastify (authenticate / requireScopes hooks)', async (kw) => {
  const app = Fastify();
  await app.register(keyward, { keyward: kw, ...COOKIE_MODE_TEST_OPTIONS });
  app.setErrorHandler(keywardErrorHandler);
  app.post('/orders', { onRequest: app.authenticate }, async (request) => ({ by: request.auth?.sub }));
  app.delete('/orders/:id', { onRequest: app.requireScopes('write') }, async (_request, reply) =>
    reply.code(204).send(),
  );
  app.get('/orders', { onRequest: app.authenticate }, async (request) => ({ by: request.auth?.sub }));
  const url = await app.listen({ port: 0, host: '127.0.0.1' });
  return { url, close: () => app.close() };
});
