import type { AddressInfo } from 'node:net';
import Fastify from 'fastify';
import { describeRouteSetServed } from '../../testing/src/route-set-apps.js';
import { keyward, keywardRoutes } from './index.js';

describeRouteSetServed('Fastify', async (kw, options) => {
  const app = Fastify();
  await app.register(keyward, { keyward: kw });
  await app.register(keywardRoutes, options);
  await app.listen({ port: 0, host: '127.0.0.1' });
  return { url: `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`, close: () => app.close() };
});
