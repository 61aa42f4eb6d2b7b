import type { AddressInfo } from 'node:net';
import { serve } from '@hono/node-server';
import { Hono } from 'hono';
import { describeRouteSetServed } from '../../testing/src/route-set-apps.js';
import { keywardRoutes } from './index.js';

describeRouteSetServed('Hono', async (kw, options) => {
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
