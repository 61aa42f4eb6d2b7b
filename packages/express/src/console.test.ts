import type { AddressInfo } from 'node:net';
import { consoleRoutes } from '@keyward/console';
import express from 'express';
import { describeConsoleRouteSet } from '../../testing/src/console-routes.js';
import { keyward } from './keyward.js';

describeConsoleRouteSet('Express', consoleRoutes(), async (kw, options) => {
  const app = express();
  app.use(keyward(kw).router(options));
  const server = app.listen(0, '127.0.0.1');
  await new Promise<void>((resolve) => server.once('listening', () => resolve()));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
});
