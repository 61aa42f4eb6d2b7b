import type { AddressInfo } from 'node:net';
import express from 'express';
import { describePrefixedRoutes } from '../../testing/src/route-prefix-apps.js';
import { keyward } from './keyward.js';

// The one right way: the router at the app's root (`app.use(router)`), the prefix passed to keyward.
describePrefixedRoutes('Express', async (kw, options) => {
  const app = express();
  const auth = keyward(kw);
  app.use(auth.router(options));
  app.use(auth.errorHandler());
  const server = app.listen(0, '127.0.0.1');
  await new Promise<void>((resolve) => server.once('listening', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
});
