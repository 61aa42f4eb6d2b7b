import type { AddressInfo } from 'node:net';
import { keyward } from '@keyward/express';
import express, { type RequestHandler } from 'express';
import { expressjwt } from 'express-jwt';
import type { StartServer } from '../server.js';
import { BODY, floorCheck, ROUTE } from '../spec.js';

/** Express 5: no auth, a no-op async middleware (with `raw`: plus bare `crypto.verify`), `keyward(kw).authenticate()`, or express-jwt as its README shows it. */
export const start: StartServer = async (spec, kw) => {
  const guards: RequestHandler[] = [];
  if (kw) guards.push(keyward(kw).authenticate());
  else if (spec.variant === 'noop' || spec.variant === 'raw') {
    // An async middleware, as keyward's is: the cost of its shape alone (`raw`: and the verify).
    const check = floorCheck(spec);
    guards.push((req, _res, next) => {
      check?.(req.headers.authorization);
      void Promise.resolve().then(() => next());
    });
  } else if (spec.variant === 'peer') {
    guards.push(
      spec.alg === 'HS256'
        ? expressjwt({ secret: spec.peer.secret ?? '', algorithms: ['HS256'] })
        : expressjwt({ secret: spec.peer.publicPem ?? '', algorithms: ['ES256'] }),
    );
  }
  const app = express();
  app.get(ROUTE, ...guards, (_req, res) => {
    res.json(BODY);
  });
  const server = await new Promise<ReturnType<typeof app.listen>>((resolve, reject) => {
    const s = app.listen(0, '127.0.0.1', (err?: Error) => (err ? reject(err) : resolve(s)));
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
};
