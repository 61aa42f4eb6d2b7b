import 'reflect-metadata';
import type { AddressInfo } from 'node:net';
import { createKeyward, createMemoryStore, type Keyward, MasterKey } from '@keyward/core';
import type { Principal } from '@keyward/core/http';
import { Controller, Delete, Get, HttpCode, type INestApplication, Module, Post } from '@nestjs/common';
import { APP_FILTER, APP_GUARD, NestFactory } from '@nestjs/core';
import { ExpressAdapter } from '@nestjs/platform-express';
import { FastifyAdapter } from '@nestjs/platform-fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CurrentUser, Scopes } from './keyward.decorators.js';
import { KeywardExceptionFilter } from './keyward.exceptions.js';
import { KeywardGuard } from './keyward.guard.js';
import { KeywardModule } from './keyward.module.js';

@Controller('orders')
class OrdersController {
  @Post() create(@CurrentUser() user: Principal) {
    return { by: user.sub };
  }
  @Get() list(@CurrentUser() user: Principal) {
    return { by: user.sub };
  }
  @Scopes('write') @Delete(':id') @HttpCode(204) remove() {}
}

let kw: Keyward;
beforeAll(async () => {
  kw = await createKeyward({
    store: createMemoryStore(),
    masterKey: MasterKey.generate().exportText(),
    logger: false,
    audit: false,
  });
});
afterAll(() => kw.close());

const cookie = () => `kw_at=${kw.jwt.sign({ sub: 'alice', scope: 'read write' })}`;
const crossSite = { 'sec-fetch-site': 'cross-site', origin: 'https://evil.example' };

for (const platform of ['express', 'fastify'] as const) {
  describe(`cookie mode on the app’s own NestJS routes (${platform})`, () => {
    let app: INestApplication;
    let url: string;
    beforeAll(async () => {
      @Module({
        imports: [
          KeywardModule.forRoot({
            keyward: kw,
            isGlobal: true,
            cookie: 'kw_at',
            allowedOrigins: ['https://app.example.com'],
          }),
        ],
        controllers: [OrdersController],
        providers: [
          { provide: APP_GUARD, useClass: KeywardGuard },
          { provide: APP_FILTER, useClass: KeywardExceptionFilter },
        ],
      })
      class AppModule {}
      app = await NestFactory.create(
        AppModule,
        platform === 'fastify' ? new FastifyAdapter() : new ExpressAdapter(),
        { logger: false },
      );
      await app.listen(0, '127.0.0.1');
      url = `http://127.0.0.1:${(app.getHttpServer().address() as AddressInfo).port}`;
    });
    afterAll(() => app?.close());

    it('regression #11: KeywardGuard on a POST / DELETE route refuses a cross-site cookie with 403 csrf_rejected', async () => {
      for (const [method, path] of [
        ['POST', '/orders'],
        ['DELETE', '/orders/1'],
      ] as const) {
        const r = await fetch(url + path, { method, headers: { cookie: cookie(), ...crossSite } });
        expect(r.status).toBe(403);
        expect(((await r.json()) as { error: string }).error).toBe('csrf_rejected');
        expect(r.headers.get('www-authenticate')).toBeNull();
      }
    });

    it('passes same-origin and allowed-origin writes, cross-site reads and header credentials', async () => {
      const same = await fetch(`${url}/orders`, {
        method: 'POST',
        headers: { cookie: cookie(), 'sec-fetch-site': 'same-origin' },
      });
      expect(await same.json()).toEqual({ by: 'alice' });
      const allowed = await fetch(`${url}/orders/1`, {
        method: 'DELETE',
        headers: { cookie: cookie(), origin: 'https://app.example.com' },
      });
      expect(allowed.status).toBe(204);
      const read = await fetch(`${url}/orders`, { headers: { cookie: cookie(), ...crossSite } });
      expect(await read.json()).toEqual({ by: 'alice' });
      const header = await fetch(`${url}/orders`, {
        method: 'POST',
        headers: { authorization: `Bearer ${kw.jwt.sign({ sub: 'bob' })}`, cookie: cookie(), ...crossSite },
      });
      expect(await header.json()).toEqual({ by: 'bob' });
    });
  });
}
