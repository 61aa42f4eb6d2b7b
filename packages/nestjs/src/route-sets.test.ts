import 'reflect-metadata';
import type { AddressInfo } from 'node:net';
import { Module } from '@nestjs/common';
import { APP_FILTER, APP_GUARD, NestFactory } from '@nestjs/core';
import { ExpressAdapter } from '@nestjs/platform-express';
import { FastifyAdapter } from '@nestjs/platform-fastify';
import { describeRouteSetServed } from '../../testing/src/route-set-apps.js';
import { KeywardExceptionFilter } from './keyward.exceptions.js';
import { KeywardGuard } from './keyward.guard.js';
import { KeywardModule } from './keyward.module.js';

for (const platform of ['express', 'fastify'] as const) {
  describeRouteSetServed(`NestJS on ${platform}`, async (kw, { users, ...routes }) => {
    @Module({
      imports: [KeywardModule.forRoot({ keyward: kw, users, isGlobal: true, routes })],
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
