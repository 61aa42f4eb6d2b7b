import 'reflect-metadata';
import type { AddressInfo } from 'node:net';
import { type DynamicModule, Module, type Type } from '@nestjs/common';
import { APP_FILTER, APP_GUARD, NestFactory } from '@nestjs/core';
import { ExpressAdapter } from '@nestjs/platform-express';
import { FastifyAdapter } from '@nestjs/platform-fastify';
import { KeywardExceptionFilter } from '../keyward.exceptions.js';
import { KeywardGuard } from '../keyward.guard.js';

/**
 * A Nest app of the tests: `keyward` (a `KeywardModule.forRoot(…)`) and the controllers, with
 * `KeywardGuard` and `KeywardExceptionFilter` global, listening on a free loopback port.
 */
export async function listenNest(
  platform: 'express' | 'fastify',
  keyward: DynamicModule,
  controllers: Type[] = [],
): Promise<{ url: string; close: () => Promise<void> }> {
  @Module({
    imports: [keyward],
    controllers,
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
}
