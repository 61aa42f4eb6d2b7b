import 'reflect-metadata';
import type { AddressInfo } from 'node:net';
import { consoleRoutes } from '@keyward/console';
import { Module } from '@nestjs/common';
import { APP_GUARD, NestFactory } from '@nestjs/core';
import { ExpressAdapter } from '@nestjs/platform-express';
import { FastifyAdapter } from '@nestjs/platform-fastify';
import { describeConsoleRouteSet } from '../../testing/src/console-routes.js';
import { KeywardGuard } from './keyward.guard.js';
import { KeywardModule } from './keyward.module.js';

// The console reaches Nest through the module's `routes` like any route set: no Nest-specific code.
for (const platform of ['express', 'fastify'] as const) {
  describeConsoleRouteSet(`NestJS on ${platform}`, consoleRoutes(), async (kw, routes) => {
    @Module({
      imports: [KeywardModule.forRoot({ keyward: kw, isGlobal: true, routes })],
      providers: [{ provide: APP_GUARD, useClass: KeywardGuard }],
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
