// keyward on Fastify: serves docs/contract.md. Copy this file as the start of your app.
import { consoleFromEnv } from '@keyward/console';
import { createKeyward, isKeywardError, keywardOptionsFromEnv } from '@keyward/core';
import { cookieModeFromEnv, MAX_PATH_PARAM_LENGTH, staticUsers } from '@keyward/core/http';
import { keyward, keywardFrameworkErrors, keywardNotFoundHandler, keywardRoutes } from '@keyward/fastify';
import Fastify from 'fastify';

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

// A malformed URL or an over-long path parameter is the contract's 400 JSON (Fastify's own answer
// quotes the URL); parameters up to keyward's own limit (secret names: 256 characters) reach the routes.
const app = Fastify({ frameworkErrors: keywardFrameworkErrors, maxParamLength: MAX_PATH_PARAM_LENGTH });
app.setNotFoundHandler(keywardNotFoundHandler);
await app.register(keyward, { keyward: kw, ...cookieMode });
// KEYWARD_CONSOLE=1: the operator console at /admin/console (admins only; off by default).
await app.register(keywardRoutes, { users, isShuttingDown: () => shuttingDown, ...consoleFromEnv() });
// Your own routes go here, e.g. (with `app.setErrorHandler(keywardErrorHandler)` for the contract's JSON errors):
// app.get('/orders', { onRequest: app.requireScopes('read') }, async (request) => ({ owner: request.auth?.sub }));

const address = await app.listen({ port, host });
// Tokens carry `iss`: KEYWARD_ISSUER when set, else the address this app listens on (set
// KEYWARD_ISSUER to the external origin behind a proxy, on 0.0.0.0, or with several instances).
kw.setDefaultIssuer(address);
console.log(`listening on ${address}`);

async function shutdown(): Promise<void> {
  if (shuttingDown) return;
  shuttingDown = true; // readiness now answers 503
  await app.close();
  await kw.close();
}
for (const signal of ['SIGTERM', 'SIGINT'] as const) process.once(signal, () => void shutdown());
