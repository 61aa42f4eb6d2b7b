import type { AddressInfo } from 'node:net';
import { serve } from '@hono/node-server';
import { consoleRoutes } from '@keyward/console';
import { Hono } from 'hono';
import { describeConsoleRouteSet } from '../../testing/src/console-routes.js';
import { keywardRoutes } from './routes.js';

describeConsoleRouteSet('Hono', consoleRoutes(), async (kw, options) => {
  const app = new Hono();
  app.route('/', keywardRoutes(kw, options));
  return new Promise((resolve) => {
    const server = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }, (info: AddressInfo) =>
      resolve({
        url: `http://127.0.0.1:${info.port}`,
        close: () => new Promise<void>((done) => server.close(() => done())),
      }),
    );
  });
});
