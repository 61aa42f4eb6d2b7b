import type { AddressInfo } from 'node:net';
import { serve } from '@hono/node-server';
import { keywardAuth } from '@keyward/hono';
import { Hono, type MiddlewareHandler } from 'hono';
import { jwt } from 'hono/jwt';
import type { StartServer } from '../server.js';
import { BODY, floorCheck, ROUTE } from '../spec.js';

/** Hono 4 on @hono/node-server: no auth, a no-op async middleware (with `raw`: plus bare `crypto.verify`), `keywardAuth(kw)`, or `hono/jwt`. */
export const start: StartServer = async (spec, kw) => {
  let guard: MiddlewareHandler | undefined;
  if (kw) guard = keywardAuth(kw);
  else if (spec.variant === 'noop' || spec.variant === 'raw') {
    const check = floorCheck(spec);
    guard = async (c, next) => {
      check?.(c.req.header('authorization'));
      return next();
    };
  } else if (spec.variant === 'peer') {
    // keyward's access tokens carry `typ: at+jwt` (RFC 9068); hono/jwt accepts only `JWT` unless told.
    const verification = { typ: 'at+jwt' };
    guard =
      spec.alg === 'HS256'
        ? jwt({ secret: spec.peer.secret ?? '', alg: 'HS256', verification })
        : jwt({ secret: spec.peer.publicJwk ?? {}, alg: 'ES256', verification });
  }
  const app = new Hono();
  if (guard) app.get(ROUTE, guard, (c) => c.json(BODY));
  else app.get(ROUTE, (c) => c.json(BODY));
  const server = await new Promise<ReturnType<typeof serve>>((resolve) => {
    const s = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }, () => resolve(s));
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
};
