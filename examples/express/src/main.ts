// keyward on Express: serves docs/contract.md. Copy this file as the start of your app.
import type { AddressInfo } from 'node:net';
import { consoleFromEnv } from '@keyward/console';
import { createKeyward, isKeywardError, keywardOptionsFromEnv } from '@keyward/core';
import { cookieModeFromEnv, routeNotFound, staticUsers } from '@keyward/core/http';
import { keyward } from '@keyward/express';
import express from 'express';

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
const auth = keyward(kw, cookieMode);
let shuttingDown = false;

const app = express();
app.disable('x-powered-by');
// KEYWARD_CONSOLE=1: the operator console at /admin/console (admins only; off by default).
app.use(auth.router({ users, isShuttingDown: () => shuttingDown, ...consoleFromEnv() }));
// Your own routes go here, e.g.:
// app.get('/orders', auth.requireScopes('read'), (req, res) => res.json({ owner: req.auth?.sub }));
// Unknown routes: the contract's JSON 404 (Express's default is an HTML page quoting the path).
app.use((_req, _res, next) => next(routeNotFound()));
app.use(auth.errorHandler());

const server = app.listen(port, host, (err?: Error) => {
  if (err) throw err;
  const origin = `http://${host.includes(':') ? `[${host}]` : host}:${(server.address() as AddressInfo).port}`;
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
