import fastifyJwt from '@fastify/jwt';
import { createKeyward, createMemoryStore, type Keyward, MasterKey } from '@keyward/core';
import type { Principal } from '@keyward/core/http';
import Fastify, { type FastifyReply, type FastifyRequest } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  AUTH_OPTIONS_REALM,
  AUTH_OPTIONS_TOKEN_HEADER,
  AUTH_OPTIONS_USERS,
  authOptionsHook,
  describeAuthOptionsContract,
} from '../../testing/src/adapter-contract-auth-options.js';
import { type KeywardNamespacedDecorators, keyward, keywardErrorHandler, keywardRoutes } from './index.js';

declare module 'fastify' {
  interface FastifyInstance extends KeywardNamespacedDecorators<'kw'> {}
}

const userOf = (request: FastifyRequest) => (request as unknown as { user: Principal | null }).user;

describeAuthOptionsContract(
  'Fastify (decoratorName, getToken, onAuthenticated, realm, optionalAuth)',
  async (kw, mode) => {
    const app = Fastify();
    await app.register(keyward, {
      keyward: kw,
      realm: AUTH_OPTIONS_REALM,
      decoratorName: 'user',
      onAuthenticated: (principal, request) => {
        // The framework's own request.
        if (typeof request.routeOptions !== 'object') throw new Error('not a Fastify request');
        return authOptionsHook(principal);
      },
      ...(mode === 'extractor'
        ? {
            getToken: (request: FastifyRequest) =>
              request.headers[AUTH_OPTIONS_TOKEN_HEADER] as string | undefined,
          }
        : {}),
    });
    await app.register(keywardRoutes, { users: AUTH_OPTIONS_USERS });
    app.setErrorHandler((err, request, reply) => {
      try {
        return keywardErrorHandler(err as never, request, reply);
      } catch {
        return reply.code(500).send({ error: 'internal_error' });
      }
    });
    app.get('/whoami', { onRequest: app.authenticate }, async (request) => {
      const p = userOf(request);
      if (request.auth) throw new Error('the default property was set');
      return { sub: p?.sub, roles: p?.roles, tenant: p?.claims.tenant ?? null };
    });
    // The route-config way of optional authentication.
    app.get('/maybe', { config: { keyward: { optional: true } } }, async (request) => ({
      sub: userOf(request)?.sub ?? null,
    }));
    app.get('/admin-only', { onRequest: app.requireScopes('admin') }, async () => ({ ok: true }));
    const url = await app.listen({ port: 0, host: '127.0.0.1' });
    return { url, close: () => app.close() };
  },
);

describe('Fastify namespace, next to @fastify/jwt', () => {
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

  // @fastify/jwt's README recipe: register the plugin, decorate `authenticate`.
  const withFastifyJwt = async () => {
    const app = Fastify();
    await app.register(fastifyJwt, { secret: 'a-secret-for-the-fastify-jwt-recipe-only' });
    app.decorate('authenticate', async (request: FastifyRequest, reply: FastifyReply) => {
      try {
        await request.jwtVerify();
      } catch (err) {
        reply.send(err);
      }
    });
    return app;
  };

  it('without a namespace, keyward refuses to register with a message naming the option', async () => {
    const app = await withFastifyJwt();
    const failure = await app
      .register(keyward, { keyward: kw })
      .ready()
      .then(
        () => undefined,
        (err: unknown) => err as { code?: string; message: string },
      );
    expect(failure?.code).toBe('config_invalid');
    expect(failure?.message).toMatch(/"authenticate" is already decorated.*"namespace"/);
    expect(failure?.message).not.toMatch(/FST_ERR_DEC_ALREADY_PRESENT/);
    await app.close();
  });

  it("with namespace: 'kw' both work side by side, each with its own tokens and request property", async () => {
    const app = await withFastifyJwt();
    await app.register(keyward, { keyward: kw, namespace: 'kw' });
    app.setErrorHandler((err, request, reply) => {
      try {
        return keywardErrorHandler(err as never, request, reply);
      } catch {
        // @fastify/jwt's errors carry their status.
        return reply.code((err as { statusCode?: number }).statusCode ?? 500).send({ error: 'fastify-jwt' });
      }
    });
    app.get('/legacy', { onRequest: app.authenticate }, async (request) => ({ user: request.user }));
    app.get('/kw', { onRequest: app.kwAuthenticate }, async (request) => ({ sub: request.auth?.sub }));
    app.get('/kw-admin', { onRequest: app.kwRequireScopes('admin') }, async () => ({ ok: true }));
    app.get('/kw-support', { onRequest: app.kwRequireRoles('support') }, async () => ({ ok: true }));
    app.get('/kw-maybe', { onRequest: app.kwOptionalAuth }, async (request) => ({
      sub: request.auth?.sub ?? null,
    }));
    await app.ready();
    const legacyToken = app.jwt.sign({ sub: 'legacy-user' });
    const legacy = await app.inject({ url: '/legacy', headers: { authorization: `Bearer ${legacyToken}` } });
    expect(legacy.statusCode).toBe(200);
    expect(legacy.json().user.sub).toBe('legacy-user');
    const kwToken = kw.jwt.sign({ sub: 'alice', scope: 'read', roles: ['support'] });
    const bearer = { authorization: `Bearer ${kwToken}` };
    expect((await app.inject({ url: '/kw', headers: bearer })).json()).toEqual({ sub: 'alice' });
    expect((await app.inject({ url: '/kw-admin', headers: bearer })).statusCode).toBe(403);
    expect((await app.inject({ url: '/kw-support', headers: bearer })).statusCode).toBe(200);
    expect((await app.inject({ url: '/kw-maybe' })).json()).toEqual({ sub: null });
    expect((await app.inject({ url: '/kw-maybe', headers: bearer })).json()).toEqual({ sub: 'alice' });
    // Each verifier refuses the other's token.
    expect(
      (await app.inject({ url: '/kw', headers: { authorization: `Bearer ${legacyToken}` } })).statusCode,
    ).toBe(401);
    const reversed = await app.inject({ url: '/legacy', headers: bearer });
    // (@fastify/jwt answers a token of another algorithm with an error of its own, without a status.)
    expect(reversed.statusCode, reversed.body).toBeGreaterThanOrEqual(400);
    expect(reversed.body).not.toContain('alice');
    expect(app.hasDecorator('optionalAuth')).toBe(false);
    await app.close();
  });

  it("decoratorName clashing with @fastify/jwt's request.user is refused, naming the option", async () => {
    const app = await withFastifyJwt();
    const failure = await app
      .register(keyward, { keyward: kw, namespace: 'kw', decoratorName: 'user' })
      .ready()
      .then(
        () => undefined,
        (err: unknown) => err as { code?: string; message: string },
      );
    expect(failure?.code).toBe('config_invalid');
    expect(failure?.message).toMatch(/request\.user is already decorated.*"decoratorName"/);
    await app.close();
  });

  it('default names: optionalAuth is decorated; bad namespace and route config are refused', async () => {
    const app = Fastify();
    await app.register(keyward, { keyward: kw });
    expect(typeof app.optionalAuth).toBe('function');
    app.get('/maybe', { onRequest: app.optionalAuth }, async (request) => ({
      sub: request.auth?.sub ?? null,
    }));
    expect((await app.inject({ url: '/maybe', headers: { authorization: 'Basic YTpi' } })).json()).toEqual({
      sub: null,
    });
    await app.close();
    const mixed = Fastify();
    await mixed.register(keyward, { keyward: kw });
    await expect(async () => {
      mixed.get('/both', { config: { keyward: { optional: true, public: true } as never } }, async () => 'x');
      await mixed.ready();
    }).rejects.toThrow(/config\.keyward must be \{ public: true \}, \{ optional: true \}/);
    await mixed.close();
    const bad = Fastify();
    await expect(bad.register(keyward, { keyward: kw, namespace: 'k-w' }).ready()).rejects.toThrow(
      /"namespace" must be an identifier/,
    );
    await bad.close();
  });
});
