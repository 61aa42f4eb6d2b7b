import { createKeyward, createMemoryStore, type Keyward, MasterKey } from '@keyward/core';
import { staticUsers } from '@keyward/core/http';
import Fastify, { type FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { keyward, keywardRoutes } from './index.js';

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
afterAll(async () => kw.close());

const users = staticUsers('alice:alice-password:read');

async function contractApp(global = false, bodyLimit?: number): Promise<FastifyInstance> {
  const app = Fastify();
  await app.register(keyward, { keyward: kw, global });
  await app.register(keywardRoutes, { users, ...(bodyLimit ? { bodyLimit } : {}) });
  return app;
}

async function login(app: FastifyInstance): Promise<{ access_token: string; refresh_token: string }> {
  const r = await app.inject({
    method: 'POST',
    url: '/auth/login',
    payload: { username: 'alice', password: 'alice-password' },
  });
  expect(r.statusCode, r.body).toBe(200);
  return r.json();
}

describe('keywardRoutes', () => {
  it('serves the contract routes, also when every other route needs a credential (global: true)', async () => {
    const app = await contractApp(true);
    app.get('/mine', async () => ({ mine: true }));
    const { access_token } = await login(app);
    const me = await app.inject({ url: '/me', headers: { authorization: `Bearer ${access_token}` } });
    expect(me.json()).toEqual({ sub: 'alice', scopes: ['read'], auth: 'jwt' });
    expect((await app.inject({ url: '/health/live' })).headers['content-type']).toMatch(
      /^application\/health\+json/,
    );
    expect((await app.inject({ url: '/.well-known/jwks.json' })).statusCode).toBe(200);
    expect((await app.inject({ url: '/mine' })).statusCode).toBe(401);
  });

  it('answers malformed, oversized, empty and non-JSON bodies with the contract 400 JSON, never a 5xx', async () => {
    const app = await contractApp(false, 1024);
    const post = (payload: string, type = 'application/json') =>
      app.inject({ method: 'POST', url: '/auth/refresh', headers: { 'content-type': type }, payload });
    for (const [reply, message] of [
      [await post('{'), 'not valid JSON'],
      [await post('\u0000\u0001'), 'not valid JSON'],
      [await post(`{"x":"${'y'.repeat(2000)}"}`), 'too large'],
      [await post('a=b', 'application/x-www-form-urlencoded'), 'must be JSON'],
      [await post('a=b', 'text/plain'), 'must be JSON'],
      [await post(''), 'needs a JSON object body'],
    ] as const) {
      const tooLarge = message === 'too large';
      expect(reply.statusCode, reply.body).toBe(tooLarge ? 413 : 400);
      expect(reply.headers['content-type']).toMatch(/^application\/json/);
      expect(reply.json()).toEqual({
        error: tooLarge ? 'body_too_large' : 'invalid_request',
        message: expect.stringContaining(message),
      });
    }
  });

  it('treats a __proto__ key in a login body as a wrong login, not a parser error', async () => {
    const app = await contractApp();
    const r = await app.inject({
      method: 'POST',
      url: '/auth/login',
      headers: { 'content-type': 'application/json' },
      payload: '{"__proto__":{"admin":true},"username":"alice","password":"x"}',
    });
    expect(r.statusCode).toBe(401);
    expect(r.json().error).toBe('invalid_credentials');
  });

  it('logs out with an empty JSON body', async () => {
    const app = await contractApp();
    const { access_token } = await login(app);
    const headers = { authorization: `Bearer ${access_token}`, 'content-type': 'application/json' };
    expect((await app.inject({ method: 'POST', url: '/auth/logout', headers, payload: '' })).statusCode).toBe(
      204,
    );
    const after = await app.inject({ url: '/me', headers: { authorization: `Bearer ${access_token}` } });
    expect(after.json().error).toBe('token_revoked');
  });

  it("leaves the app's own body parsers and error handler alone", async () => {
    const app = await contractApp();
    app.setErrorHandler(async (_err, _request, reply) => reply.code(418).send({ mine: true }));
    app.post('/echo', async (request) => ({ got: request.body }));
    const text = await app.inject({
      method: 'POST',
      url: '/echo',
      headers: { 'content-type': 'text/plain' },
      payload: 'hello',
    });
    expect(text.json()).toEqual({ got: 'hello' });
    const bad = await app.inject({
      method: 'POST',
      url: '/echo',
      headers: { 'content-type': 'application/json' },
      payload: '{',
    });
    expect(bad.statusCode).toBe(418);
  });

  it('honours prefix, include and isShuttingDown', async () => {
    let shuttingDown = false;
    const app = Fastify();
    await app.register(keyward, { keyward: kw });
    await app.register(keywardRoutes, {
      prefix: '/ops',
      include: ['health'],
      isShuttingDown: () => shuttingDown,
    });
    expect((await app.inject({ url: '/ops/health/ready' })).statusCode).toBe(200);
    expect((await app.inject({ url: '/ops/.well-known/jwks.json' })).statusCode).toBe(404);
    expect((await app.inject({ url: '/health/ready' })).statusCode).toBe(404);
    shuttingDown = true;
    const ready = await app.inject({ url: '/ops/health/ready' });
    expect(ready.statusCode).toBe(503);
    expect(ready.json()).toMatchObject({ status: 'fail' });
  });

  it('fails app.ready() without the keyward plugin or with a bad bodyLimit', async () => {
    const alone = Fastify();
    alone.register(keywardRoutes, { users });
    await expect(alone.ready()).rejects.toThrow(/@keyward\/fastify/);
    const app = Fastify();
    app.register(keyward, { keyward: kw });
    app.register(keywardRoutes, { bodyLimit: -1 });
    await expect(app.ready()).rejects.toThrow(/"bodyLimit" must be a positive number/);
  });
});
