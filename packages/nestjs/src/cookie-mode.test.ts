import 'reflect-metadata';
import type { AddressInfo } from 'node:net';
import type { Principal } from '@keyward/core/http';
import { Controller, Delete, Get, HttpCode, Module, Post } from '@nestjs/common';
import { APP_FILTER, APP_GUARD, NestFactory } from '@nestjs/core';
import { ExpressAdapter } from '@nestjs/platform-express';
import { FastifyAdapter } from '@nestjs/platform-fastify';
import {
  COOKIE_MODE_TEST_OPTIONS,
  describeCookieModeAppRoutes,
} from '../../testing/src/cookie-app-routes.js';
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

for (const platform of ['express', 'fastify'] as const) {
  describeCookieModeAppRoutes(`NestJS on ${platform} (KeywardGuard)`, async (kw) => {
    @Module({
      imports: [
        KeywardModule.forRoot({
          keyward: kw,
          isGlobal: true,
          errorFormat: 'contract',
          ...COOKIE_MODE_TEST_OPTIONS,
        }),
      ],
      controllers: [OrdersController],
      providers: [
        { provide: APP_GUARD, useClass: KeywardGuard },
        { provide: APP_FILTER, useClass: KeywardExceptionFilter },
      ],
    })
    class AppModule {}
    const app = await NestFactory.create(
      AppModule,
      platform === 'fastify' ? new FastifyAdapter() : new ExpressAdapter(),
      { logger: false },
    );
    await app.listen(0, '127.0.0.1');
    return {
      url: `http://127.0.0.1:${(app.getHttpServer().address() as AddressInfo).port}`,
      close: () => app.close(),
    };
  });
}
