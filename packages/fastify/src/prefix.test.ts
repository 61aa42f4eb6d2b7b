import type { AddressInfo } from 'node:net';
import { createKeyward, createMemoryStore, type Keyward, MasterKey } from '@keyward/core';
import { staticUsers } from '@keyward/core/http';
import Fastify from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describePrefixedRoutes } from '../../testing/src/route-prefix-apps.js';
import { keyward, keywardRoutes } from './index.js';

// Keyward's `prefix` and Fastify's `prefix` register option are one option, applied once.
describePrefixedRoutes('Fastify', async (kw, options) => {
  const app = Fastify();
  await app.register(keyward, { keyward: kw, global: true });
  await app.register(keywardRoutes, options);
  await app.listen({ port: 0, host: '127.0.0.1' });
  return { url: `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`, close: () => app.close() };
});

describe('keywardRoutes inside a prefixed context', () => {
  let kw: Keyward;
  const users = staticUsers('alice:alice-password:read');
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

  it("is refused while /.well-known stays at the root, and served under the context with wellKnown: 'prefixed'", async () => {
    const refused = Fastify();
    await refused.register(keyward, { keyward: kw });
    const registering = Promise.resolve(
      refused.register(async (api) => api.register(keywardRoutes, { users }), { prefix: '/api' }),
    );
    const err = await registering.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toMatchObject({ name: 'KeywardError', code: 'config_invalid' });
    expect(String((err as Error).message)).toMatch(/register it at the application's root/);
    await refused.close().catch(() => undefined);

    const app = Fastify();
    await app.register(keyward, { keyward: kw });
    await app.register(
      async (api) => api.register(keywardRoutes, { users, prefix: '/v1', wellKnown: 'prefixed' }),
      { prefix: '/api' },
    );
    const login = await app.inject({
      method: 'POST',
      url: '/api/v1/auth/login',
      payload: { username: 'alice', password: 'alice-password' },
    });
    expect(login.statusCode, login.body).toBe(200);
    expect((await app.inject({ url: '/api/v1/.well-known/jwks.json' })).statusCode).toBe(200);
    for (const url of ['/api/v1/api/v1/me', '/api/api/v1/me', '/v1/me', '/.well-known/jwks.json'])
      expect((await app.inject({ url })).statusCode, url).toBe(404);
    const discovery = await app.inject({ url: '/api/v1/.well-known/openid-configuration' });
    expect(discovery.json()).toMatchObject({
      jwks_uri: 'https://auth.example.com/api/v1/.well-known/jwks.json',
      token_endpoint: 'https://auth.example.com/api/v1/auth/refresh',
    });
    await app.close();
  });
});
