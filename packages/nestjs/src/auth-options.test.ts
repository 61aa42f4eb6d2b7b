import 'reflect-metadata';
import type { AddressInfo } from 'node:net';
import { createKeyward, createMemoryStore, type Keyward, MasterKey } from '@keyward/core';
import type { Principal } from '@keyward/core/http';
import { Controller, Get, type INestApplication, Module } from '@nestjs/common';
import { APP_GUARD, NestFactory } from '@nestjs/core';
import { ExpressAdapter } from '@nestjs/platform-express';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  AUTH_OPTIONS_REALM,
  AUTH_OPTIONS_TOKEN_HEADER,
  AUTH_OPTIONS_USERS,
  authOptionsHook,
  describeAuthOptionsContract,
} from '../../testing/src/adapter-contract-auth-options.js';
import { listenNest } from './__fixtures__/listen.js';
import { CurrentUser, OptionalAuth, Scopes } from './keyward.decorators.js';
import { KeywardGuard } from './keyward.guard.js';
import { KeywardModule } from './keyward.module.js';
import type { KeywardHttpRequest } from './keyward.service.js';

@Controller()
class AppController {
  @Get('whoami') whoami(@CurrentUser() user: Principal) {
    return { sub: user.sub, roles: user.roles, tenant: user.claims.tenant ?? null };
  }
  @OptionalAuth() @Get('maybe') maybe(@CurrentUser() user: Principal | undefined) {
    return { sub: user?.sub ?? null };
  }
  @Scopes('admin') @Get('admin-only') adminOnly() {
    return { ok: true };
  }
  @OptionalAuth() @Scopes('admin') @Get('maybe-admin') maybeAdmin(
    @CurrentUser('sub') sub: string | undefined,
  ) {
    return { sub: sub ?? null };
  }
}

describe('@OptionalAuth() with @Scopes()', () => {
  let kw: Keyward;
  let app: INestApplication;
  let url: string;
  beforeAll(async () => {
    kw = await createKeyward({
      store: createMemoryStore(),
      masterKey: MasterKey.generate().exportText(),
      logger: false,
      audit: false,
    });
    @Module({
      imports: [KeywardModule.forRoot({ keyward: kw, isGlobal: true })],
      controllers: [AppController],
      providers: [{ provide: APP_GUARD, useClass: KeywardGuard }],
    })
    class AppModule {}
    app = await NestFactory.create(AppModule, new ExpressAdapter(), { logger: false });
    await app.listen(0, '127.0.0.1');
    url = `http://127.0.0.1:${(app.getHttpServer().address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    await app?.close();
    await kw?.close();
  });
  const get = (headers: Record<string, string> = {}) => fetch(`${url}/maybe-admin`, { headers });
  it('anonymous passes; a principal must have the scopes; a bad token is refused', async () => {
    const anonymous = await get();
    expect(anonymous.status).toBe(200);
    expect(await anonymous.json()).toEqual({ sub: null });
    const reader = await get({ authorization: `Bearer ${kw.jwt.sign({ sub: 'r', scope: 'read' })}` });
    expect(reader.status).toBe(403);
    const admin = await get({ authorization: `Bearer ${kw.jwt.sign({ sub: 'a', scope: 'admin' })}` });
    expect(await admin.json()).toEqual({ sub: 'a' });
    expect((await get({ authorization: 'Bearer a.b.c' })).status).toBe(401);
  });
});

for (const platform of ['express', 'fastify'] as const) {
  describeAuthOptionsContract(
    `NestJS on ${platform} (@OptionalAuth, module getToken / onAuthenticated / realm)`,
    async (kw, mode) => {
      return listenNest(
        platform,
        KeywardModule.forRoot({
          keyward: kw,
          isGlobal: true,
          routes: true,
          // The shared suite reads the contract's error shape (the Nest shape has its own tests).
          errorFormat: 'contract',
          users: AUTH_OPTIONS_USERS,
          realm: AUTH_OPTIONS_REALM,
          onAuthenticated: (principal: Principal, request: KeywardHttpRequest) => {
            if (typeof request.headers !== 'object') throw new Error('no request');
            return authOptionsHook(principal);
          },
          ...(mode === 'extractor'
            ? {
                getToken: (request: KeywardHttpRequest) =>
                  request.headers[AUTH_OPTIONS_TOKEN_HEADER] as string | undefined,
              }
            : {}),
        }),
        [AppController],
      );
    },
  );
}
