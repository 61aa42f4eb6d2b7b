// keyward on NestJS: serves docs/contract.md on the Express platform, or on Fastify with
// NEST_PLATFORM=fastify. Copy this file as the start of your app.
import 'reflect-metadata';
import type { AddressInfo } from 'node:net';
import { createKeyward, isKeywardError, keywardOptionsFromEnv } from '@keyward/core';
import { cookieModeFromEnv, staticUsers } from '@keyward/core/http';
import { KeywardExceptionFilter, KeywardGuard, KeywardModule } from '@keyward/nestjs';
import { Module } from '@nestjs/common';
import { APP_FILTER, APP_GUARD, NestFactory } from '@nestjs/core';
import { ExpressAdapter } from '@nestjs/platform-express';
import { FastifyAdapter } from '@nestjs/platform-fastify';

const host = process.env.HOST || '127.0.0.1';
const port = Number(process.env.PORT ?? 3000);
const platform = process.env.NEST_PLATFORM || 'express';
if (platform !== 'express' && platform !== 'fastify') {
  throw new Error(`NEST_PLATFORM must be "express" or "fastify", not "${platform}"`);
}
// Demo users only: bring your own UserDirectory (database, IdP…) in a real app.
const users = staticUsers(
  process.env.DEMO_USERS || 'alice:alice-password:read,admin:admin-password:read admin',
);
// Cookie mode (KEYWARD_COOKIE, KEYWARD_ALLOWED_ORIGINS): the access token also in an HttpOnly cookie.
const cookieMode = cookieModeFromEnv();

// Created before Nest, so a refused start-up (wrong master key, bad configuration) is one line for the
// operator instead of Nest's ExceptionHandler stack trace. The module then uses it; shutdown() closes it.
const kw = await createKeyward(keywardOptionsFromEnv()).catch((err: unknown) => {
  console.error(isKeywardError(err) ? `keyward: ${err.message} [${err.code}]` : err);
  process.exit(1);
});

@Module({
  imports: [KeywardModule.forRoot({ keyward: kw, users, isGlobal: true, routes: true, ...cookieMode })],
  providers: [
    // Every route needs a credential unless marked @Public(); @Scopes() / @Roles() add checks.
    { provide: APP_GUARD, useClass: KeywardGuard },
    // The contract's JSON errors, also for bodies the platform's parser refuses.
    { provide: APP_FILTER, useClass: KeywardExceptionFilter },
  ],
  // Your own controllers go here, e.g.:
  // @Controller('orders') class OrdersController {
  //   @Get() @Scopes('read') list(@CurrentUser() user: Principal) { return { owner: user.sub } }
  // }
})
class AppModule {}

const adapter =
  platform === 'fastify'
    ? // 'remove' drops a "__proto__" key instead of refusing the body, as JSON.parse does on Express.
      new FastifyAdapter({ onProtoPoisoning: 'remove' })
    : new ExpressAdapter();
const app = await NestFactory.create(AppModule, adapter, { logger: ['error', 'warn'] });
app.getHttpAdapter().getInstance().disable?.('x-powered-by');
await app.listen(port, host);
const origin = `http://${host.includes(':') ? `[${host}]` : host}:${(app.getHttpServer().address() as AddressInfo).port}`;
// Tokens carry `iss`: KEYWARD_ISSUER when set, else the address this app listens on (set
// KEYWARD_ISSUER to the external origin behind a proxy, on 0.0.0.0, or with several instances).
kw.setDefaultIssuer(origin);
console.log(`listening on ${origin}`);

// On SIGTERM / SIGINT: readiness answers 503, the server closes, then the keyward instance, and the
// process exits with 0 (Nest's enableShutdownHooks() would re-raise the signal instead).
let closing = false;
async function shutdown(): Promise<void> {
  if (closing) return;
  closing = true;
  await app.close();
  await kw.close();
}
for (const signal of ['SIGTERM', 'SIGINT'] as const) process.once(signal, () => void shutdown());
