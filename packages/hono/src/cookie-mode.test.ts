import type { AddressInfo } from 'node:net';
import { serve } from '@hono/node-server';
import { Hono } from 'hono';
import {
  COOKIE_MODE_TEST_OPTIONS,
  describeCookieModeAppRoutes,
} from '../../testing/src/cookie-app-routes.js';
import { type KeywardEnv, keywardAuth, requireScopes } from './index.js';

describeCookieModeAppRoutes('Hono (keywardAuth / requireScopes)', async (kw) => {
  const app = new Hono<KeywardEnv>();
  app.use('/orders/*', keywardAuth(kw, COOKIE_MODE_TEST_OPTIONS));
  app.use('/orders', keywardAuth(kw, COOKIE_MODE_TEST_OPTIONS));
  app.post('/orders', (c) => c.json({ by: c.get('auth').sub }));
  app.get('/orders', (c) => c.json({ by: c.get('auth').sub }));
  app.delete('/orders/:id', requireScopes('write'), (c) => c.body(null, 204));
  return new Promise((resolve) => {
    const server = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }, (info: AddressInfo) =>
      resolve({ url: `http://127.0.0.1:${info.port}`, close: () => void server.close() }),
    );
  });
});
