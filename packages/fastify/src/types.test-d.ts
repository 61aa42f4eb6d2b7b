import type { Keyward } from '@keyward/core';
import type { Principal } from '@keyward/core/http';
import Fastify from 'fastify';
import { expectTypeOf } from 'vitest';
import { type KeywardFastifyError, type KeywardHook, keyward, keywardRoutes } from './index.js';

declare module '@keyward/core/http' {
  interface KeywardClaims {
    tenant: string;
  }
}

const app = Fastify();
await app.register(keyward, { create: { dir: './.keyward' }, global: true });
await app.register(keywardRoutes, { prefix: '/auth-api', bodyLimit: 10_000 });

expectTypeOf(app.keyward).toEqualTypeOf<Keyward>();
expectTypeOf(app.authenticate).toEqualTypeOf<KeywardHook>();
expectTypeOf(app.requireScopes('admin')).toEqualTypeOf<KeywardHook>();

app.get<{ Params: { id: string } }>(
  '/orders/:id',
  { onRequest: [app.authenticate, app.requireScopes('orders:read')] },
  async (request) => {
    expectTypeOf(request.auth).toEqualTypeOf<Principal | null>();
    expectTypeOf(request.auth?.via).toEqualTypeOf<'jwt' | 'api_key' | undefined>();
    expectTypeOf(request.auth?.claims.tenant).toEqualTypeOf<string | undefined>();
    return { id: request.params.id, owner: request.auth?.sub };
  },
);
app.get('/status', { config: { keyward: { public: true } } }, async () => ({ ok: true }));
app.get('/admin', { config: { keyward: { scopes: ['admin'] } } }, async () => ({ ok: true }));
// @ts-expect-error: config.keyward is { public: true } or { scopes }, nothing else
app.get('/typo', { config: { keyward: { scope: 'admin' } } }, async () => ({}));
// @ts-expect-error: pass an instance or create options, not a string
await app.register(keyward, { keyward: 'kw' });

expectTypeOf<KeywardFastifyError>().toHaveProperty('code').toEqualTypeOf<string>();
expectTypeOf<KeywardFastifyError>().toHaveProperty('statusCode').toEqualTypeOf<number>();
expectTypeOf<KeywardFastifyError>().toHaveProperty('headers').toEqualTypeOf<Record<string, string>>();
