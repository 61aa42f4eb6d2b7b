import type { AddressInfo } from 'node:net';
import express from 'express';
import {
  COOKIE_MODE_TEST_OPTIONS,
  describeCookieModeAppRoutes,
} from '../../testing/src/cookie-app-routes.js';
import { keyward } from './keyward.js';

describeCookieModeAppRoutes('Express (authenticate / requireScopes / optional)', async (kw) => {
  const auth = keyward(kw, COOKIE_MODE_TEST_OPTIONS);
  const app = express();
  app.post('/orders', auth.authenticate(), (req, res) => void res.json({ by: req.auth?.sub }));
  app.delete('/orders/:id', auth.requireScopes('write'), (_req, res) => void res.status(204).end());
  app.get('/orders', auth.optional(), (req, res) => void res.json({ by: req.auth?.sub ?? null }));
  app.use(auth.errorHandler());
  const server = app.listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => void server.close(),
  };
});
