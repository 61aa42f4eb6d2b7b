import 'reflect-metadata';
import type { AddressInfo } from 'node:net';
import { createKeyward, createMemoryStore, type Keyward, MasterKey } from '@keyward/core';
import { staticUsers } from '@keyward/core/http';
import {
  type CanActivate,
  Controller,
  type DynamicModule,
  Get,
  type INestApplication,
  Injectable,
  Module,
} from '@nestjs/common';
import { APP_FILTER, APP_GUARD, NestFactory } from '@nestjs/core';
import { ExpressAdapter } from '@nestjs/platform-express';
import { FastifyAdapter } from '@nestjs/platform-fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describePrefixedRoutes } from '../../testing/src/route-prefix-apps.js';
import { KeywardExceptionFilter } from './keyward.exceptions.js';
import { KeywardGuard } from './keyward.guard.js';
import { KeywardModule } from './keyward.module.js';

type Platform = 'express' | 'fastify';
const users = staticUsers('alice:alice-password:read');

@Controller('orders')
class OrdersController {
  @Get() list() {
    return { orders: [] };
  }
}

/** Denies every request it sees: keyward's routes never meet it. */
@Injectable()
class DenyAll implements CanActivate {
  canActivate(): boolean {
    return false;
  }
}

async function listen(
  platform: Platform,
  keywardModule: DynamicModule,
  providers: unknown[] = [{ provide: APP_GUARD, useClass: KeywardGuard }],
  configure?: (app: INestApplication) => void,
): Promise<{ app: INestApplication; url: string }> {
  @Module({ imports: [keywardModule], controllers: [OrdersController], providers: providers as never })
  class AppModule {}
  const app = await NestFactory.create(
    AppModule,
    platform === 'fastify' ? new FastifyAdapter() : new ExpressAdapter(),
    { logger: false, abortOnError: false },
  );
  configure?.(app);
  await app.listen(0, '127.0.0.1');
  return { app, url: `http://127.0.0.1:${(app.getHttpServer().address() as AddressInfo).port}` };
}

let kw: Keyward;
beforeAll(async () => {
  kw = await createKeyward({
    store: createMemoryStore(),
    masterKey: MasterKey.generate().exportText(),
    logger: false,
    audit: false,
    scheduler: false,
    issuer: 'https://auth.example.com',
  });
});
afterAll(() => kw.close());

const login = (url: string, path = '/auth/login') =>
  fetch(`${url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username: 'alice', password: 'alice-password' }),
  });

for (const platform of ['express', 'fastify'] as const) {
  describe(`KeywardModule routes on ${platform}`, () => {
    const apps: INestApplication[] = [];
    afterAll(async () => {
      for (const app of apps.splice(0)) await app.close();
    });
    const start = async (...args: Parameters<typeof listen> extends [Platform, ...infer R] ? R : never) => {
      const started = await listen(platform, ...args);
      apps.push(started.app);
      return started.url;
    };

    it('routes: true serves core routes but /metrics, past a global KeywardGuard', async () => {
      const url = await start(KeywardModule.forRoot({ keyward: kw, users, isGlobal: true, routes: true }));
      const ok = await login(url);
      expect(ok.status).toBe(200);
      const { access_token } = (await ok.json()) as { access_token: string };
      const me = await fetch(`${url}/me`, { headers: { authorization: `Bearer ${access_token}` } });
      expect(await me.json()).toEqual({ sub: 'alice', scopes: ['read'], auth: 'jwt' });
      expect((await fetch(`${url}/health/live`)).status).toBe(200);
      expect((await fetch(`${url}/.well-known/jwks.json`)).status).toBe(200);
      expect((await fetch(`${url}/metrics`)).status).toBe(404);
      // The app's own routes still need a credential.
      expect((await fetch(`${url}/orders`)).status).toBe(401);
    });

    it('routes.include chooses the groups, metrics only when named; no routes without the extra', async () => {
      const some = await start(
        KeywardModule.forRoot({ keyward: kw, routes: { include: ['metrics', 'health'] } }),
      );
      const metrics = await fetch(`${some}/metrics`);
      expect(metrics.status).toBe(200);
      expect(metrics.headers.get('content-type')).toMatch(/^text\/plain/);
      expect((await fetch(`${some}/health/ready`)).status).toBe(200);
      expect((await login(some, '/auth/refresh')).status).toBe(404);
      expect((await fetch(`${some}/.well-known/jwks.json`)).status).toBe(404);
      const none = await start(KeywardModule.forRoot({ keyward: kw, users }));
      for (const path of ['/health/live', '/.well-known/jwks.json', '/metrics'])
        expect((await fetch(`${none}${path}`)).status, path).toBe(404);
      expect((await login(none)).status).toBe(404);
    });

    it('serves the routes with forRootAsync, under routes.prefix', async () => {
      const url = await start(
        KeywardModule.forRootAsync({
          useFactory: async () => ({ keyward: kw, users }),
          routes: { prefix: '/api' },
        }),
      );
      expect((await login(url, '/api/auth/login')).status).toBe(200);
      expect((await fetch(`${url}/.well-known/jwks.json`)).status).toBe(200);
      expect((await fetch(`${url}/health/live`)).status).toBe(404);
    });

    it("keyward's routes do not run the app's guards: a deny-all global guard blocks only the app's routes", async () => {
      const url = await start(KeywardModule.forRoot({ keyward: kw, users, routes: true }), [
        { provide: APP_GUARD, useClass: DenyAll },
      ]);
      expect((await fetch(`${url}/orders`)).status).toBe(403);
      expect((await login(url)).status).toBe(200);
      expect((await fetch(`${url}/health/live`)).status).toBe(200);
    });

    it("Nest's global prefix moves the app's routes only: keyward's follow routes.prefix", async () => {
      const url = await start(
        KeywardModule.forRoot({ keyward: kw, users, isGlobal: true, routes: { prefix: '/auth-api' } }),
        undefined,
        (app) => app.setGlobalPrefix('api'),
      );
      expect((await fetch(`${url}/api/orders`)).status).toBe(401);
      expect((await login(url, '/auth-api/auth/login')).status).toBe(200);
      expect((await fetch(`${url}/.well-known/jwks.json`)).status).toBe(200);
      for (const path of ['/api/auth-api/health/live', '/api/.well-known/jwks.json', '/health/live'])
        expect((await fetch(`${url}${path}`)).status, path).toBe(404);
    });

    for (const errorFormat of ['nest', 'contract'] as const) {
      it(`answers errors in the ${errorFormat} shape on keyward's and the app's routes, headers alike`, async () => {
        const url = await start(
          KeywardModule.forRoot({
            keyward: kw,
            users,
            isGlobal: true,
            routes: true,
            ...(errorFormat === 'nest' ? {} : { errorFormat }),
          }),
          [
            { provide: APP_GUARD, useClass: KeywardGuard },
            { provide: APP_FILTER, useClass: KeywardExceptionFilter },
          ],
        );
        const shape = (status: number, error: string, code: string) =>
          errorFormat === 'nest'
            ? { statusCode: status, error, message: expect.any(String), code }
            : { error: code, message: expect.any(String) };
        const expired = 'Bearer a.b.c';
        for (const path of ['/me', '/orders']) {
          const anonymous = await fetch(`${url}${path}`);
          expect(anonymous.status, path).toBe(401);
          expect(anonymous.headers.get('www-authenticate'), path).toBe('Bearer realm="keyward"');
          expect(await anonymous.json(), path).toEqual(shape(401, 'Unauthorized', 'missing_credentials'));
          const bad = await fetch(`${url}${path}`, { headers: { authorization: expired } });
          expect(bad.status, path).toBe(401);
          expect(bad.headers.get('www-authenticate'), path).toMatch(/error="invalid_token"/);
          expect(await bad.json(), path).toMatchObject({
            ...shape(401, 'Unauthorized', 'token_malformed'),
            ...(errorFormat === 'nest' ? { code: expect.stringMatching(/^token_/) } : {}),
            ...(errorFormat === 'contract' ? { error: expect.stringMatching(/^token_/) } : {}),
          });
        }
        // keyward's own routes answer with no-store in either shape.
        expect((await fetch(`${url}/me`)).headers.get('cache-control')).toBe('no-store');
        // A body the platform's parser refuses, through KeywardExceptionFilter.
        const broken = await fetch(`${url}/auth/refresh`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: '{',
        });
        expect(broken.status).toBe(400);
        expect(broken.headers.get('cache-control')).toBe('no-store');
        expect(await broken.json()).toEqual(shape(400, 'Bad Request', 'invalid_request'));
        // The login limiter's 429 keeps its Retry-After in both shapes (10 failures per user by default).
        const wrong = () =>
          fetch(`${url}/auth/login`, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({ username: `mallory-${platform}-${errorFormat}`, password: 'wrong' }),
          });
        const first = await wrong();
        expect(first.status).toBe(401);
        expect(await first.json()).toEqual(shape(401, 'Unauthorized', 'invalid_credentials'));
        for (let i = 1; i < 10; i++) expect((await wrong()).status).toBe(401);
        const throttled = await wrong();
        expect(throttled.status).toBe(429);
        expect(Number(throttled.headers.get('retry-after'))).toBeGreaterThan(0);
        expect(await throttled.json()).toEqual(shape(429, 'Too Many Requests', 'too_many_requests'));
      });
    }
  });
}

for (const platform of ['express', 'fastify'] as const) {
  describePrefixedRoutes(`NestJS on ${platform}`, async (instance, options) => {
    const { users: directory, ...routes } = options;
    const { app, url } = await listen(
      platform,
      KeywardModule.forRoot({ keyward: instance, users: directory, isGlobal: true, routes }),
    );
    return { url, close: () => app.close() };
  });
}
