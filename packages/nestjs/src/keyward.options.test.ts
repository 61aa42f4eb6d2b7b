import 'reflect-metadata';
import { createKeyward, createMemoryStore, type Keyward, MasterKey } from '@keyward/core';
import { type DynamicModule, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KeywardModule } from './keyward.module.js';
import type { KeywardModuleOptions } from './keyward.service.js';

let kw: Keyward;
beforeAll(async () => {
  kw = await createKeyward({
    store: createMemoryStore(),
    masterKey: MasterKey.generate().exportText(),
    logger: false,
    audit: false,
    scheduler: false,
  });
});
afterAll(() => kw.close());

/** The error a bootstrap of `keywardModule` fails with (`undefined` when it starts). */
async function bootstrapError(keywardModule: DynamicModule): Promise<unknown> {
  @Module({ imports: [keywardModule] })
  class AppModule {}
  try {
    const app = await NestFactory.createApplicationContext(AppModule, { logger: false, abortOnError: false });
    await app.close();
    return undefined;
  } catch (err) {
    return err;
  }
}

/** Throws unless `err` is a `config_invalid` KeywardError whose message names `option`. */
function expectConfigInvalid(err: unknown, option: string): void {
  expect(err, option).toMatchObject({ name: 'KeywardError', code: 'config_invalid' });
  expect((err as Error).message, option).toContain(`"${option}`);
}

describe('KeywardModule options', () => {
  it('refuses bad extras when forRoot / forRootAsync is called, naming the option', () => {
    const cases: Array<[string, Record<string, unknown>]> = [
      ['isGlobal', { isGlobal: 'yes' }],
      ['routes', { routes: 'yes' }],
      ['routes', { routes: ['auth'] }],
      ['routes.prefx', { routes: { prefx: '/api' } }],
      ['routes.include', { routes: { include: 'auth' } }],
      ['routes.routeSets', { routes: { routeSets: [{ group: 'console' }] } }],
      ['routes.jwksSharedCache', { routes: { jwksSharedCache: 'yes' } }],
    ];
    for (const [option, extras] of cases) {
      let thrown: unknown;
      try {
        KeywardModule.forRoot({ keyward: kw, ...extras } as KeywardModuleOptions);
      } catch (err) {
        thrown = err;
      }
      expectConfigInvalid(thrown, option);
      thrown = undefined;
      try {
        KeywardModule.forRootAsync({ useFactory: () => ({ keyward: kw }), ...extras });
      } catch (err) {
        thrown = err;
      }
      expectConfigInvalid(thrown, option);
    }
  });

  it('refuses bad module options at bootstrap, for forRoot and forRootAsync alike, naming the option', async () => {
    const cases: Array<[string, Record<string, unknown>]> = [
      ['user', { keyward: kw, user: {} }],
      ['keyward', { keyward: {} }],
      ['keyward', { keyward: kw, options: {} }],
      ['options', { options: 'redis://x' }],
      ['users', { keyward: kw, users: {} }],
      ['onDenied', { keyward: kw, onDenied: 'log' }],
      ['errorFormat', { keyward: kw, errorFormat: 'json' }],
      ['apiKeys', { keyward: kw, apiKeys: 'no' }],
      ['bearer', { keyward: kw, bearer: 1 }],
      ['apiKeyHeader', { keyward: kw, apiKeyHeader: 'x api key' }],
      // Checked by the authenticator and the route table the module builds.
      ['allowedOrigins', { keyward: kw, allowedOrigins: 'https://app.example.com' }],
    ];
    for (const [option, options] of cases) {
      expectConfigInvalid(
        await bootstrapError(KeywardModule.forRoot(options as KeywardModuleOptions)),
        option,
      );
      expectConfigInvalid(
        await bootstrapError(
          KeywardModule.forRootAsync({ useFactory: async () => options as KeywardModuleOptions }),
        ),
        option,
      );
    }
    expect(
      await bootstrapError(KeywardModule.forRoot({ keyward: kw, cookie: 'a;b' } as KeywardModuleOptions)),
    ).toMatchObject({ code: 'config_invalid' });
    expect(
      await bootstrapError(KeywardModule.forRoot({ keyward: kw, errorFormat: 'contract' })),
    ).toBeUndefined();
  });

  it('refuses route-table options at bootstrap: unknown groups, a bad prefix', async () => {
    expectConfigInvalid(
      await bootstrapError(KeywardModule.forRoot({ keyward: kw, routes: { include: ['auth', 'consol'] } })),
      'include',
    );
    expectConfigInvalid(
      await bootstrapError(
        KeywardModule.forRootAsync({ useFactory: () => ({ keyward: kw }), routes: { prefix: '/api/' } }),
      ),
      'prefix',
    );
    expectConfigInvalid(
      await bootstrapError(KeywardModule.forRoot({ keyward: kw, routes: { wellKnown: 'moved' as 'root' } })),
      'wellKnown',
    );
    expect(
      await bootstrapError(KeywardModule.forRoot({ keyward: kw, routes: { prefix: '/api' } })),
    ).toBeUndefined();
  });
});
