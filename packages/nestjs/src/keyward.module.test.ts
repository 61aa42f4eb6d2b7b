import 'reflect-metadata';
import { createMemoryStore, type Keyward, MasterKey } from '@keyward/core';
import type { Principal } from '@keyward/core/http';
import { Controller, Get, Inject, Module, ServiceUnavailableException } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { HealthCheckService, TerminusModule } from '@nestjs/terminus';
import { describe, expect, expectTypeOf, it, vi } from 'vitest';
import type { KeywardRequest } from './index.js';
import { KEYWARD } from './keyward.constants.js';
import { KeywardHealthIndicator } from './keyward.health.js';
import { KeywardModule } from './keyward.module.js';
import { KeywardService } from './keyward.service.js';

const options = () => ({
  store: createMemoryStore(),
  masterKey: MasterKey.generate().exportText(),
  logger: false as const,
  audit: false as const,
});

describe('KeywardModule', () => {
  it('forRootAsync creates the instance, and closes it on shutdown only because it created it', async () => {
    @Module({ imports: [KeywardModule.forRootAsync({ useFactory: async () => ({ options: options() }) })] })
    class AppModule {}
    const app = await NestFactory.createApplicationContext(AppModule, { logger: false });
    const kw = app.get<Keyward>(KEYWARD);
    expect(app.get(KeywardService).keyward).toBe(kw);
    const close = vi.spyOn(kw, 'close');
    await app.close();
    expect(close).toHaveBeenCalledOnce();
  });

  it('leaves an instance it was given open, and readiness answers 503 once shutdown begins', async () => {
    const { createKeyward } = await import('@keyward/core');
    const kw = await createKeyward(options());
    @Module({ imports: [KeywardModule.forRoot({ keyward: kw })] })
    class AppModule {}
    const app = await NestFactory.createApplicationContext(AppModule, { logger: false });
    const service = app.get(KeywardService);
    const close = vi.spyOn(kw, 'close');
    await app.close();
    expect(close).not.toHaveBeenCalled();
    expect(service.isShuttingDown).toBe(true);
    const ready = await service.handle('ready', { headers: {}, params: {}, body: undefined });
    expect(ready.status).toBe(503);
    await kw.close();
  });

  it('isGlobal makes the service injectable in modules that do not import KeywardModule', async () => {
    @Module({
      providers: [{ provide: 'who', inject: [KeywardService], useFactory: (s: KeywardService) => s }],
    })
    class FeatureModule {}
    @Module({ imports: [KeywardModule.forRoot({ options: options(), isGlobal: true }), FeatureModule] })
    class AppModule {}
    const app = await NestFactory.createApplicationContext(AppModule, { logger: false });
    expect(app.get('who')).toBe(app.get(KeywardService));
    await app.close();
  });
});

describe('KeywardHealthIndicator', () => {
  it('fits @nestjs/terminus: up on pass or warn, a 503 from HealthCheckService on fail', async () => {
    const { createKeyward } = await import('@keyward/core');
    const kw = await createKeyward(options());
    let status: 'pass' | 'warn' | 'fail' = 'warn';
    vi.spyOn(kw, 'health').mockImplementation(async () => ({ status, checks: {} }));
    @Controller()
    class HealthController {
      constructor(
        @Inject(HealthCheckService) readonly health: HealthCheckService,
        @Inject(KeywardHealthIndicator) readonly keyward: KeywardHealthIndicator,
      ) {}
      @Get('health') check() {
        return this.health.check([() => this.keyward.isHealthy('keyward')]);
      }
    }
    @Module({
      imports: [TerminusModule, KeywardModule.forRoot({ keyward: kw })],
      controllers: [HealthController],
    })
    class AppModule {}
    const app = await NestFactory.createApplicationContext(AppModule, { logger: false });
    const controller = app.get(HealthController);
    await expect(controller.check()).resolves.toMatchObject({
      status: 'ok',
      info: { keyward: { status: 'up' } },
    });
    status = 'fail';
    await expect(controller.check()).rejects.toBeInstanceOf(ServiceUnavailableException);
    await app.close();
    await kw.close();
  });
});

describe('types', () => {
  it('types request.user and request.auth as the principal', () => {
    expectTypeOf<KeywardRequest['user']>().toEqualTypeOf<Principal | undefined>();
    expectTypeOf<KeywardRequest['auth']>().toEqualTypeOf<Principal | undefined>();
    expectTypeOf<NonNullable<KeywardRequest['user']>['via']>().toEqualTypeOf<'jwt' | 'api_key'>();
  });
});
