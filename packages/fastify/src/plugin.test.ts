import {
  createKeyward,
  createMemoryStore,
  type Keyward,
  KeywardError,
  type KeywardServiceOptions,
  MasterKey,
} from '@keyward/core';
import Fastify, { type FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { KeywardFastifyError, keyward, keywardErrorHandler } from './index.js';

const createOptions = (): KeywardServiceOptions => ({
  store: createMemoryStore(),
  masterKey: MasterKey.generate().exportText(),
  logger: false,
  audit: false,
  scheduler: false,
});

let kw: Keyward;
beforeAll(async () => {
  kw = await createKeyward(createOptions());
});
afterAll(async () => kw.close());

const bearer = (scope: string) => ({ authorization: `Bearer ${kw.jwt.sign({ sub: 'alice', scope })}` });

async function appWith(options: Parameters<typeof keyward>[1] = { keyward: kw }): Promise<FastifyInstance> {
  const app = Fastify();
  await app.register(keyward, options);
  return app;
}

describe('fastify.authenticate and request.auth', () => {
  it('puts the principal on request.auth, which starts as null on every request', async () => {
    const app = await appWith();
    app.get('/who', { onRequest: app.authenticate }, async (request) => ({ sub: request.auth?.sub }));
    app.get('/open', async (request) => ({ auth: request.auth }));
    expect((await app.inject({ url: '/who', headers: bearer('read') })).json()).toEqual({ sub: 'alice' });
    expect((await app.inject({ url: '/open', headers: bearer('read') })).json()).toEqual({ auth: null });
  });

  it('fails with a KeywardFastifyError carrying status, stable code and challenge (Fastify default handler)', async () => {
    const app = await appWith();
    const seen: unknown[] = [];
    app.addHook('onError', async (_request, _reply, error) => {
      seen.push(error);
    });
    app.get('/who', { onRequest: app.authenticate }, async () => ({}));
    const none = await app.inject({ url: '/who' });
    expect(none.statusCode).toBe(401);
    expect(none.headers['www-authenticate']).toBe('Bearer realm="keyward"');
    expect(none.json()).toMatchObject({ statusCode: 401, code: 'missing_credentials' });
    const bad = await app.inject({ url: '/who', headers: { authorization: 'Bearer a.b.c' } });
    expect(bad.statusCode).toBe(401);
    expect(bad.headers['www-authenticate']).toMatch(/^Bearer realm="keyward", error="invalid_token"/);
    const err = seen[1] as KeywardFastifyError;
    expect(err).toBeInstanceOf(KeywardFastifyError);
    expect(err.cause).toBeInstanceOf(KeywardError);
    expect(err.statusCode).toBe(401);
  });

  it('renders the contract JSON {error, message} with keywardErrorHandler, and passes other errors on', async () => {
    const app = await appWith();
    app.setErrorHandler(keywardErrorHandler);
    app.get('/who', { onRequest: app.authenticate }, async () => ({}));
    app.get('/boom', async () => {
      throw new Error('boom');
    });
    const r = await app.inject({ url: '/who', headers: { authorization: 'Basic abc' } });
    expect(r.statusCode).toBe(400);
    expect(r.headers['content-type']).toMatch(/^application\/json/);
    expect(r.json()).toEqual({ error: 'invalid_request', message: expect.any(String) });
    expect(r.headers['www-authenticate']).toMatch(/error="invalid_request"/);
    const boom = await app.inject({ url: '/boom' });
    expect(boom.statusCode).toBe(500);
    expect(boom.json()).toMatchObject({ statusCode: 500, error: 'Internal Server Error' });
  });

  it('answers a store outage with 503 store_unavailable, not a 401', async () => {
    const broken = Object.assign(Object.create(kw) as Keyward, {
      apiKeys: { ...kw.apiKeys, verify: () => Promise.reject(new KeywardError('store_unavailable', 'down')) },
    });
    const app = await appWith({ keyward: broken });
    app.setErrorHandler(keywardErrorHandler);
    app.get('/who', { onRequest: app.authenticate }, async () => ({}));
    const r = await app.inject({ url: '/who', headers: { 'x-api-key': 'kw_x' } });
    expect(r.statusCode).toBe(503);
    expect(r.json().error).toBe('store_unavailable');
  });
});

describe('fastify.requireScopes and requireRoles', () => {
  it('authenticate on their own and answer 403 with the insufficient_scope challenge', async () => {
    const denied: Array<[string, number]> = [];
    const app = await appWith({ keyward: kw, onDenied: (code, status) => denied.push([code, status]) });
    app.setErrorHandler(keywardErrorHandler);
    app.get('/admin', { onRequest: app.requireScopes('admin') }, async (request) => ({
      sub: request.auth?.sub,
    }));
    app.get('/both', { onRequest: [app.authenticate, app.requireScopes('read')] }, async () => ({
      ok: true,
    }));
    app.get('/ops', { onRequest: app.requireRoles('ops') }, async () => ({ ok: true }));
    const r = await app.inject({ url: '/admin', headers: bearer('read') });
    expect(r.statusCode).toBe(403);
    expect(r.headers['www-authenticate']).toBe(
      'Bearer realm="keyward", error="insufficient_scope", scope="admin"',
    );
    expect(r.json()).toMatchObject({ error: 'insufficient_scope' });
    expect((await app.inject({ url: '/admin', headers: bearer('read admin') })).json()).toEqual({
      sub: 'alice',
    });
    expect((await app.inject({ url: '/admin' })).statusCode).toBe(401);
    expect((await app.inject({ url: '/both', headers: bearer('read') })).statusCode).toBe(200);
    expect((await app.inject({ url: '/ops', headers: bearer('read') })).statusCode).toBe(403);
    expect(denied).toEqual([
      ['insufficient_scope', 403],
      ['missing_credentials', 401],
      ['insufficient_scope', 403],
    ]);
  });
});

describe('route config', () => {
  it('with global: true authenticates every later route, in child plugins too, except public ones', async () => {
    const app = await appWith({ keyward: kw, global: true });
    app.setErrorHandler(keywardErrorHandler);
    app.get('/private', async (request) => ({ sub: request.auth?.sub }));
    app.get('/status', { config: { keyward: { public: true } } }, async () => ({ ok: true }));
    app.get('/admin', { config: { keyward: { scopes: ['admin'] } } }, async () => ({ ok: true }));
    const own = vi.fn(async () => undefined);
    await app.register(async (child) => {
      child.get('/child', { onRequest: own }, async (request) => ({ sub: request.auth?.sub }));
    });
    expect((await app.inject({ url: '/private' })).statusCode).toBe(401);
    expect((await app.inject({ url: '/private', headers: bearer('read') })).json()).toEqual({ sub: 'alice' });
    expect((await app.inject({ url: '/status' })).statusCode).toBe(200);
    expect((await app.inject({ url: '/admin', headers: bearer('read') })).statusCode).toBe(403);
    expect((await app.inject({ url: '/admin', headers: bearer('admin') })).statusCode).toBe(200);
    expect((await app.inject({ url: '/child' })).statusCode).toBe(401);
    expect(own).not.toHaveBeenCalled(); // keyward's hook runs before the route's own hooks
    expect((await app.inject({ url: '/child', headers: bearer('read') })).json()).toEqual({ sub: 'alice' });
    expect(own).toHaveBeenCalledOnce();
    expect((await app.inject({ method: 'HEAD', url: '/private' })).statusCode).toBe(401);
    expect((await app.inject({ url: '/nowhere' })).statusCode).toBe(404);
  });

  it('without global still enforces config.keyward.scopes, and leaves other routes open', async () => {
    const app = await appWith();
    app.get('/admin', { config: { keyward: { scopes: ['admin'] } } }, async () => ({ ok: true }));
    app.get('/any', { config: { keyward: { scopes: [] } } }, async (request) => ({ sub: request.auth?.sub }));
    app.get('/open', async () => ({ ok: true }));
    expect((await app.inject({ url: '/admin', headers: bearer('read') })).statusCode).toBe(403);
    expect((await app.inject({ url: '/any' })).statusCode).toBe(401);
    expect((await app.inject({ url: '/any', headers: bearer('read') })).json()).toEqual({ sub: 'alice' });
    expect((await app.inject({ url: '/open' })).statusCode).toBe(200);
  });

  it('rejects a malformed config.keyward when the route is registered', async () => {
    for (const config of [
      { public: false },
      { scopes: 'admin' },
      { public: true, scopes: ['a'] },
      { scopes: [''] },
    ]) {
      const app = await appWith();
      // biome-ignore lint/suspicious/noExplicitAny: deliberately wrong config
      const register = () => app.get('/x', { config: { keyward: config as any } }, async () => ({}));
      await expect(async () => {
        register();
        await app.ready();
      }).rejects.toThrow(/config\.keyward must be/);
    }
  });
});

describe('plugin options', () => {
  it('fails app.ready() on bad options, naming the option', async () => {
    const cases: Array<[object, RegExp]> = [
      [{}, /exactly one of "keyward".*"create"/],
      [{ keyward: kw, create: {} }, /exactly one of/],
      [{ keyward: { jwt: {} } }, /"keyward" must be an instance/],
      [{ keyward: kw, global: 'yes' }, /"global" must be true or false/],
      [{ keyward: kw, apiKeyHeader: 'X API' }, /"apiKeyHeader"/],
      [{ keyward: kw, onDenied: 'log' }, /"onDenied" must be a function/],
      [{ create: { masterKey: 'not-a-key', store: createMemoryStore() } }, /./],
    ];
    for (const [options, message] of cases) {
      const app = Fastify();
      // biome-ignore lint/suspicious/noExplicitAny: deliberately wrong options
      app.register(keyward, options as any);
      await expect(app.ready()).rejects.toThrow(message);
      await app.close();
    }
  });

  it('closes an instance it created, never one it was given', async () => {
    const created = await appWith({ create: createOptions() });
    await created.ready();
    const closedCreated = vi.fn();
    created.keyward.onClose(closedCreated);
    await created.close();
    expect(closedCreated).toHaveBeenCalledOnce();

    const given = await createKeyward(createOptions());
    const closedGiven = vi.fn();
    given.onClose(closedGiven);
    const app = await appWith({ keyward: given });
    await app.ready();
    expect(app.keyward).toBe(given);
    await app.close();
    expect(closedGiven).not.toHaveBeenCalled();
    expect(given.jwt.verify(given.jwt.sign({ sub: 'a' })).payload.sub).toBe('a');
    await given.close();
  });

  it('accepts API keys only when allowed, and under the configured header', async () => {
    const { key } = await kw.apiKeys.create({ owner: 'bob', name: 'ci', scopes: ['read'] });
    const off = await appWith({ keyward: kw, apiKeys: false });
    off.get('/who', { onRequest: off.authenticate }, async (request) => ({ via: request.auth?.via }));
    expect((await off.inject({ url: '/who', headers: { 'x-api-key': key } })).statusCode).toBe(401);
    const custom = await appWith({ keyward: kw, apiKeyHeader: 'x-service-key' });
    custom.get('/who', { onRequest: custom.authenticate }, async (request) => ({ via: request.auth?.via }));
    expect((await custom.inject({ url: '/who', headers: { 'x-service-key': key } })).json()).toEqual({
      via: 'api_key',
    });
  });
});

describe('the hooks settle through done, or a promise when called without it (issue 15)', () => {
  it('works as a hook (done, sync and async credentials) and awaited by hand, on a listening server', async () => {
    const app = await appWith();
    app.setErrorHandler(keywardErrorHandler);
    app.get('/hook', { onRequest: app.authenticate }, async (request) => ({ sub: request.auth?.sub }));
    app.get('/pre', { preHandler: [app.requireScopes('read')] }, async (request) => ({
      sub: request.auth?.sub,
    }));
    app.get(
      '/by-hand',
      {
        onRequest: async (request, reply) => {
          await app.authenticate(request, reply);
        },
      },
      async (request) => ({ sub: request.auth?.sub }),
    );
    const { key } = await kw.apiKeys.create({ owner: 'ci', name: 'deploy' });
    const base = await app.listen({ port: 0, host: '127.0.0.1' });
    try {
      const get = async (path: string, headers: Record<string, string>) => {
        const res = await fetch(`${base}${path}`, { headers });
        return { status: res.status, body: (await res.json()) as Record<string, unknown> };
      };
      for (const path of ['/hook', '/pre', '/by-hand']) {
        expect(await get(path, bearer('read'))).toEqual({ status: 200, body: { sub: 'alice' } });
        // An API key is verified asynchronously: the same hook settles through its promise.
        expect((await get(path, { 'x-api-key': key })).status).toBe(path === '/pre' ? 403 : 200);
        expect(await get(path, {})).toMatchObject({ status: 401, body: { error: 'missing_credentials' } });
        expect((await get(path, { authorization: 'Bearer a.b.c' })).status).toBe(401);
      }
      expect(await get('/pre', bearer('write'))).toMatchObject({
        status: 403,
        body: { error: 'insufficient_scope' },
      });
    } finally {
      await app.close();
    }
  });
});
