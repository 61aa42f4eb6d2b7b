import 'reflect-metadata';
import type { Keyward } from '@keyward/core';
import { createMemoryStore, MasterKey } from '@keyward/core';
import { Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { expect, it, vi } from 'vitest';
import { KeywardModule } from './keyward.module.js';

// Every instance the module creates, with its close() spied on.
const created = vi.hoisted(() => [] as Array<{ kw: Keyward; close: ReturnType<typeof vi.fn> }>);
vi.mock('@keyward/core', async (importOriginal) => {
  const core = await importOriginal<typeof import('@keyward/core')>();
  return {
    ...core,
    createKeyward: async (options: Parameters<typeof core.createKeyward>[0]) => {
      const kw = await core.createKeyward(options);
      created.push({ kw, close: vi.spyOn(kw, 'close') as unknown as ReturnType<typeof vi.fn> });
      return kw;
    },
  };
});

it('closes an instance it created when the route table refuses its options at bootstrap', async () => {
  @Module({
    imports: [
      KeywardModule.forRoot({
        options: {
          store: createMemoryStore(),
          masterKey: MasterKey.generate().exportText(),
          logger: false,
          audit: false,
          scheduler: false,
        },
        routes: { include: ['auth', 'consol'] },
      }),
    ],
  })
  class AppModule {}
  const failure = await NestFactory.createApplicationContext(AppModule, {
    logger: false,
    abortOnError: false,
  }).then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(failure).toMatchObject({ code: 'config_invalid' });
  expect(created).toHaveLength(1);
  expect(created[0]?.close).toHaveBeenCalledOnce();
});
