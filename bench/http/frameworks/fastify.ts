import fastifyJwt from '@fastify/jwt';
import { keyward } from '@keyward/fastify';
import Fastify, { type onRequestHookHandler } from 'fastify';
import type { StartServer } from '../server.js';
import { BODY, floorCheck, ROUTE } from '../spec.js';

/** Fastify 5: no auth, a no-op async `onRequest` hook (with `raw`: plus bare `crypto.verify`), keyward's `fastify.authenticate` hook, or @fastify/jwt's `request.jwtVerify()`. */
export const start: StartServer = async (spec, kw) => {
  const app = Fastify();
  let onRequest: onRequestHookHandler | undefined;
  if (kw) {
    await app.register(keyward, { keyward: kw });
    onRequest = app.authenticate;
  } else if (spec.variant === 'noop' || spec.variant === 'raw') {
    const check = floorCheck(spec);
    onRequest = async (request) => check?.(request.headers.authorization);
  } else if (spec.variant === 'peer') {
    await app.register(
      fastifyJwt,
      spec.alg === 'HS256'
        ? { secret: spec.peer.secret ?? '' }
        : { secret: { public: spec.peer.publicPem ?? '' }, verify: { algorithms: ['ES256'] } },
    );
    // The hook of @fastify/jwt's README.
    onRequest = async (request) => {
      await request.jwtVerify();
    };
  }
  app.get(ROUTE, onRequest ? { onRequest } : {}, async () => BODY);
  await app.listen({ port: 0, host: '127.0.0.1' });
  const address = app.server.address();
  if (address === null || typeof address === 'string') throw new Error('fastify did not bind a TCP port');
  return { port: address.port, close: () => app.close() };
};
