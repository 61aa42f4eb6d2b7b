import type { AddressInfo } from 'node:net';
import { serve } from '@hono/node-server';
import type { Principal } from '@keyward/core/http';
import { type Context, Hono } from 'hono';
import { HTTPException } from 'hono/http-exception';
import { describe, expect, expectTypeOf, it } from 'vitest';
import {
  AUTH_OPTIONS_REALM,
  AUTH_OPTIONS_TOKEN_HEADER,
  AUTH_OPTIONS_USERS,
  authOptionsHook,
  describeAuthOptionsContract,
} from '../../testing/src/adapter-contract-auth-options.js';
import { codeOf } from '../../testing/src/errors.js';
import { keywardAuth, keywardOptional, keywardRoutes, requireRoles, requireScopes } from './index.js';

describeAuthOptionsContract('Hono (variable, getToken, onAuthenticated, realm)', async (kw, mode) => {
  const hooks = {
    realm: AUTH_OPTIONS_REALM,
    onAuthenticated: (principal: Principal, c: Context) => {
      // The framework's own context.
      if (typeof c.req?.header !== 'function') throw new Error('not a Hono context');
      return authOptionsHook(principal);
    },
    ...(mode === 'extractor' ? { getToken: (c: Context) => c.req.header(AUTH_OPTIONS_TOKEN_HEADER) } : {}),
  };
  const app = new Hono();
  app.route('/', keywardRoutes(kw, { users: AUTH_OPTIONS_USERS, ...hooks }));
  app.get('/whoami', keywardAuth(kw, { ...hooks, variable: 'user' }), (c) => {
    const p = c.get('user');
    return c.json({ sub: p.sub, roles: p.roles, tenant: p.claims.tenant ?? null });
  });
  app.get('/maybe', keywardOptional(kw, { ...hooks, variable: 'user' }), (c) =>
    c.json({ sub: c.get('user')?.sub ?? null }),
  );
  app.get('/admin-only', keywardAuth(kw, { ...hooks, variable: 'user' }), requireScopes('admin'), (c) =>
    c.json({ ok: true }),
  );
  app.onError((err) =>
    err instanceof HTTPException
      ? err.getResponse()
      : Response.json({ error: 'internal_error' }, { status: 500 }),
  );
  return new Promise((resolve) => {
    const server = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }, (info: AddressInfo) =>
      resolve({ url: `http://127.0.0.1:${info.port}`, close: () => void server.close() }),
    );
  });
});

describe('Hono variable', () => {
  const kw = {
    jwt: { verify: () => ({ kid: 'k', payload: { sub: 'alice', exp: 2e9, roles: ['r'] } }) },
  } as never;
  it('types c.get() for the chosen name and leaves the default for auth', async () => {
    const app = new Hono();
    app.get('/custom', keywardAuth(kw, { variable: 'user' }), requireRoles('r'), (c) => {
      expectTypeOf(c.get('user')).toEqualTypeOf<Principal>();
      return c.json({ user: c.get('user').sub });
    });
    app.get('/default', keywardAuth(kw), (c) => {
      expectTypeOf(c.get('auth')).toEqualTypeOf<Principal>();
      return c.json({ auth: c.get('auth').sub });
    });
    const headers = { authorization: 'Bearer a.b.c' };
    expect(await (await app.request('/custom', { headers })).json()).toEqual({ user: 'alice' });
    expect(await (await app.request('/default', { headers })).json()).toEqual({ auth: 'alice' });
  });
  it('refuses an empty variable or jwtPayload', () => {
    expect(codeOf(() => keywardAuth(kw, { variable: '' }))).toBe('config_invalid');
    expect(codeOf(() => keywardOptional(kw, { variable: 'jwtPayload' }))).toBe('config_invalid');
  });
});
