import type { Keyward } from '@keyward/core';
import type { Principal } from '@keyward/core/http';
import { Hono, type MiddlewareHandler } from 'hono';
import type { HTTPException } from 'hono/http-exception';
import { expectTypeOf } from 'vitest';
import {
  type KeywardEnv,
  keywardApiKey,
  keywardAuth,
  keywardOptional,
  keywardRoutes,
  requireScopes,
  toHTTPException,
} from './index.js';

// Core's doc says '@keyward/core', but KeywardClaims is exported from '@keyward/core/http' only.
declare module '@keyward/core/http' {
  interface KeywardClaims {
    tenant: string;
  }
}
declare const kw: Keyward;

// A plain Hono app: the middleware alone types the handler's variables.
const app = new Hono();
app.get('/orders', keywardAuth(kw), requireScopes('orders:read'), (c) => {
  expectTypeOf(c.get('auth')).toEqualTypeOf<Principal>();
  expectTypeOf(c.get('auth').via).toEqualTypeOf<'jwt' | 'api_key'>();
  expectTypeOf(c.get('jwtPayload').sub).toEqualTypeOf<string | undefined>();
  expectTypeOf(c.get('auth').claims.tenant).toEqualTypeOf<string | undefined>();
  return c.json({ owner: c.get('auth').sub });
});
app.get('/feed', keywardOptional(kw), (c) => {
  expectTypeOf(c.get('auth')).toEqualTypeOf<Principal | undefined>();
  return c.json({ personal: c.get('auth') !== undefined });
});
app.post('/hooks', keywardApiKey(kw), (c) => c.text(c.get('auth').sub));
app.route('/', keywardRoutes(kw));

// An app typed with KeywardEnv after app.use().
const typed = new Hono<KeywardEnv>();
typed.use('/api/*', keywardAuth(kw));
typed.get('/api/me', (c) => c.text(c.get('auth').sub));

expectTypeOf(keywardAuth(kw)).toExtend<MiddlewareHandler<KeywardEnv>>();
expectTypeOf(keywardRoutes(kw)).toEqualTypeOf<Hono>();
expectTypeOf(toHTTPException(new Error('x'))).toEqualTypeOf<HTTPException>();
