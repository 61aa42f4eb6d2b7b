// keyward on NestJS: serves docs/contract.md on the Express platform, or on Fastify with
// NEST_PLATFORM=fastify. Copy this file as the start of your app.
import 'reflect-metadata';
import type { AddressInfo } from 'node:net';
import { consoleFromEnv } from '@keyward/console';
import { createKeyward, isKeywardError, keywardOptionsFromEnv } from '@keyward/core';
import {
  cookieModeFromEnv,
  problemResponse,
  ROUTE_GROUPS,
  routeNotFound,
  routingFailureOf,
  staticUsers,
} from '@keyward/core/http';
import { KeywardExceptionFilter, KeywardGuard, KeywardModule } from '@keyward/nestjs';
import { type ArgumentsHost, Catch, type LogLevel, Module, NotFoundException } from '@nestjs/common';
import { APP_FILTER, APP_GUARD, NestFactory } from '@nestjs/core';
import { ExpressAdapter } from '@nestjs/platform-express';
import { FastifyAdapter } from '@nestjs/platform-fastify';

/** A refused start-up (bad configuration, wrong master key): one line for the operator, no stack. */
function refuse(err: unknown): never {
  console.error(isKeywardError(err) ? `keyward: ${err.message} [${err.code}]` : `keyward: ${String(err)}`);
  process.exit(1);
}

const host = process.env.HOST || '127.0.0.1';
const port = Number(process.env.PORT ?? 3000);
const platform = process.env.NEST_PLATFORM || 'express';
if (platform !== 'express' && platform !== 'fastify') {
  refuse(new Error(`NEST_PLATFORM must be "express" or "fastify", not "${platform}"`));
}
// Nest's own log follows LOG_LEVEL too (pino's levels; keywardOptionsFromEnv() refuses any other).
const NEST_LEVELS: Record<string, LogLevel[] | false> = {
  silent: false,
  fatal: ['fatal'],
  error: ['fatal', 'error'],
  warn: ['fatal', 'error', 'warn'],
  info: ['fatal', 'error', 'warn', 'log'],
  debug: ['fatal', 'error', 'warn', 'log', 'debug'],
  trace: ['fatal', 'error', 'warn', 'log', 'debug', 'verbose'],
};
const nestLogger = NEST_LEVELS[process.env.LOG_LEVEL || 'warn'] ?? ['error', 'warn'];
// Demo users only: bring your own UserDirectory (database, IdP…) in a real app.
const users = staticUsers(
  process.env.DEMO_USERS || 'alice:alice-password:read,admin:admin-password:read admin',
);
// Created before Nest, so a refused start-up (wrong master key, bad configuration) is one line for the
// operator instead of Nest's ExceptionHandler stack trace. The module then uses it; shutdown() closes it.
// Cookie mode (KEYWARD_COOKIE, KEYWARD_ALLOWED_ORIGINS): the access token also in an HttpOnly cookie;
// read inside the promise too, so a bad value is the same one line.
const { kw, cookieMode } = await Promise.resolve()
  .then(async () => {
    const cookieMode = cookieModeFromEnv();
    return { cookieMode, kw: await createKeyward(keywardOptionsFromEnv()) };
  })
  .catch(refuse);

/** The Fastify platform's `frameworkErrors` handler (Fastify's own types, without importing fastify). */
type FrameworkErrors = NonNullable<
  Extract<
    NonNullable<ConstructorParameters<typeof FastifyAdapter>[0]>,
    { frameworkErrors?: unknown }
  >['frameworkErrors']
>;
type ReplyLike = {
  code(status: number): ReplyLike;
  headers(values: object): ReplyLike;
  send(body: unknown): void;
};
const frameworkErrors: FrameworkErrors = (error, _request, reply) => {
  const answer = problemResponse(routingFailureOf(error) ?? error);
  // Fastify's reply is generic over route schemas this handler has none of.
  (reply as unknown as ReplyLike).code(answer.status).headers(answer.headers).send(answer.body);
};

/** KeywardExceptionFilter, plus the contract's JSON 404 for a route no controller serves. */
@Catch()
class AppExceptionFilter extends KeywardExceptionFilter {
  override catch(exception: unknown, host: ArgumentsHost): void {
    const adapter = this.httpAdapterHost?.httpAdapter;
    if (exception instanceof NotFoundException && adapter && host.getType() === 'http') {
      const request = host.switchToHttp().getRequest();
      // Nest's own "Cannot GET /path" (it quotes the path), not a NotFoundException of a controller.
      const own = `Cannot ${adapter.getRequestMethod(request)} ${adapter.getRequestUrl(request)}`;
      if (exception.message === own) {
        super.catch(routeNotFound(), host);
        return;
      }
    }
    super.catch(exception, host);
  }
}

@Module({
  imports: [
    KeywardModule.forRoot({
      keyward: kw,
      users,
      isGlobal: true,
      // The contract's routes, metrics included (`routes: true` serves all but /metrics, which needs
      // no credential: keep it off the public internet); `prefix: '/api'` would serve them under /api.
      // KEYWARD_CONSOLE=1 adds the operator console at /admin/console (admins only; off by default).
      routes: { include: ROUTE_GROUPS, ...consoleFromEnv() },
      // The contract's `{error, message}` bodies, as the other examples answer (default: Nest's shape).
      errorFormat: 'contract',
      ...cookieMode,
    }),
  ],
  providers: [
    // Every route needs a credential unless marked @Public(); @Scopes() / @Roles() add checks.
    { provide: APP_GUARD, useClass: KeywardGuard },
    // The contract's JSON errors, also for bodies the platform's parser refuses.
    // Unknown routes answer the contract's JSON 404.
    { provide: APP_FILTER, useClass: AppExceptionFilter },
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
      new FastifyAdapter({
        onProtoPoisoning: 'remove',
        // A malformed URL or an over-long path parameter: the contract's 400 JSON, not Fastify's
        // answer quoting the URL; parameters up to keyward's limit (256 characters) reach the routes.
        maxParamLength: 256,
        frameworkErrors,
      })
    : new ExpressAdapter();
const app = await NestFactory.create(AppModule, adapter, { logger: nestLogger });
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
