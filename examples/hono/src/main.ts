// keyward on Hono (Node, @hono/node-server): serves docs/contract.md. Copy this file as the start of your app.
import { serve } from '@hono/node-server';
import { consoleFromEnv } from '@keyward/console';
import { createKeyward, isKeywardError, keywardOptionsFromEnv } from '@keyward/core';
import { cookieModeFromEnv, routeNotFound, staticUsers } from '@keyward/core/http';
import { type KeywardEnv, keywardRoutes, toHTTPException } from '@keyward/hono';
import { Hono } from 'hono';

const host = process.env.HOST || '127.0.0.1';
const port = Number(process.env.PORT ?? 3000);
// Demo users only: bring your own UserDirectory (database, IdP…) in a real app.
const users = staticUsers(
  process.env.DEMO_USERS || 'alice:alice-password:read,admin:admin-password:read admin',
);
// keywardOptionsFromEnv() runs inside the promise: a bad variable (LOG_LEVEL…) is the same one line.
// Cookie mode (KEYWARD_COOKIE, KEYWARD_ALLOWED_ORIGINS): the access token also in an HttpOnly cookie;
// read inside the promise too, so a bad value is the same one line.
const { kw, cookieMode } = await Promise.resolve()
  .then(async () => {
    const cookieMode = cookieModeFromEnv();
    return { cookieMode, kw: await createKeyward(keywardOptionsFromEnv()) };
  })
  .catch((err: unknown) => {
    // A refused start-up (wrong master key, bad configuration) is one line for the operator, no stack.
    console.error(isKeywardError(err) ? `keyward: ${err.message} [${err.code}]` : err);
    process.exit(1);
  });
let shuttingDown = false;

const app = new Hono<KeywardEnv>();
// KEYWARD_CONSOLE=1: the operator console at /admin/console (admins only; off by default).
app.route(
  '/',
  keywardRoutes(kw, { users, isShuttingDown: () => shuttingDown, ...cookieMode, ...consoleFromEnv() }),
);
// Unknown routes: the contract's JSON 404 (Hono's default is a text "404 Not Found").
app.notFound(() => toHTTPException(routeNotFound()).getResponse());
// Your own routes go here, e.g.:
// app.get('/orders', keywardAuth(kw), requireScopes('read'), (c) => c.json({ owner: c.get('auth').sub }));

const server = serve({ fetch: app.fetch, port, hostname: host }, (info) => {
  const origin = `http://${host.includes(':') ? `[${host}]` : host}:${info.port}`;
  // Tokens carry `iss`: KEYWARD_ISSUER when set, else the address this app listens on (set
  // KEYWARD_ISSUER to the external origin behind a proxy, on 0.0.0.0, or with several instances).
  kw.setDefaultIssuer(origin);
  console.log(`listening on ${origin}`);
});

async function shutdown(): Promise<void> {
  if (shuttingDown) return;
  shuttingDown = true; // readiness now answers 503
  await new Promise((resolve) => server.close(resolve));
  await kw.close();
}
for (const signal of ['SIGTERM', 'SIGINT'] as const) process.once(signal, () => void shutdown());
