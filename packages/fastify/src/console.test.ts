import { consoleRoutes } from '@keyward/console';
import Fastify from 'fastify';
import { describeConsoleRouteSet } from '../../testing/src/console-routes.js';
import { keyward } from './plugin.js';
import { keywardRoutes } from './routes.js';

describeConsoleRouteSet('Fastify', consoleRoutes(), async (kw, options) => {
  const app = Fastify();
  await app.register(keyward, { keyward: kw });
  await app.register(keywardRoutes, options);
  const url = await app.listen({ port: 0, host: '127.0.0.1' });
  return { url, close: () => app.close() };
});
