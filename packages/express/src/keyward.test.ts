import type { AddressInfo } from 'node:net';
import {
  createKeywardCore,
  createMemoryStore,
  type KeywardCore,
  KeywardError,
  MasterKey,
} from '@keyward/core';
import express, { type ErrorRequestHandler } from 'express';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UnauthorizedError } from './errors.js';
import { type KeywardExpressDeps, keyward } from './keyward.js';

let core: KeywardCore;
let kw: KeywardExpressDeps;
const servers: Array<{ close(): void }> = [];

beforeAll(async () => {
  core = await createKeywardCore({
    store: createMemoryStore(),
    masterKey: MasterKey.generate().exportText(),
    logger: false,
    audit: false,
  });
  const unused = () => Promise.reject(new Error('not used in these tests'));
  kw = {
    ...core,
    jwt: core.jwt,
    keys: core.keys,
    policy: core.policy,
    metrics: core.metrics,
    tokens: {
      issue: unused,
      refresh: unused,
      inspectRefresh: unused,
      logout: unused,
      logoutEverywhere: unused,
      oneTime: unused,
      consumeOneTime: unused,
    },
    secrets: { put: unused, get: unused, list: unused, delete: unused },
    apiKeys: {
      create: unused,
      list: unused,
      revoke: unused,
      verify: () => Promise.reject(new KeywardError('store_unavailable', 'store down')),
    },
    health: async () => ({ status: 'pass', checks: {} }),
  };
});
afterAll(async () => {
  for (const server of servers) server.close();
  await core.close();
});

async function serve(app: express.Express): Promise<string> {
  const server = app.listen(0, '127.0.0.1');
  servers.push(server);
  await new Promise((resolve) => server.once('listening', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

// biome-ignore lint/suspicious/noExplicitAny: JSON bodies in assertions
const json = async (r: Response): Promise<any> => r.json();
const bearer = (scope: string) => ({ authorization: `Bearer ${core.jwt.sign({ sub: 'alice', scope })}` });

describe('keyward() middleware', () => {
  it('puts the principal on req.auth and res.locals.auth', async () => {
    const auth = keyward(kw);
    const app = express();
    app.get('/who', auth.authenticate(), (req, res) => {
      res.json({ sub: req.auth?.sub, via: req.auth?.via, same: res.locals.auth === req.auth });
    });
    const r = await fetch(`${await serve(app)}/who`, { headers: bearer('read') });
    expect(await r.json()).toEqual({ sub: 'alice', via: 'jwt', same: true });
  });

  it('passes an express-jwt style UnauthorizedError to next, with the challenge already on res', async () => {
    const auth = keyward(kw);
    const seen: unknown[] = [];
    const app = express();
    app.get('/who', auth.authenticate(), (_req, res) => res.json({}));
    app.use(((err, _req, res, _next) => {
      seen.push(err);
      res.status(err.status).json({ name: err.name, code: err.code, header: res.get('www-authenticate') });
    }) as ErrorRequestHandler);
    const base = await serve(app);
    const none = await fetch(`${base}/who`);
    expect(none.status).toBe(401);
    expect(await none.json()).toEqual({
      name: 'UnauthorizedError',
      code: 'missing_credentials',
      header: 'Bearer realm="keyward"',
    });
    const bad = await fetch(`${base}/who`, { headers: { authorization: 'Bearer a.b.c' } });
    expect(bad.status).toBe(401);
    const err = seen[1] as UnauthorizedError;
    expect(err).toBeInstanceOf(UnauthorizedError);
    expect(err.inner).toBeInstanceOf(KeywardError);
    expect(err.headers['www-authenticate']).toMatch(/error="invalid_token"/);
  });

  it('optional() lets anonymous requests through but still rejects a bad token', async () => {
    const auth = keyward(kw);
    const app = express();
    app.get('/maybe', auth.optional(), (req, res) => res.json({ sub: req.auth?.sub ?? null }));
    app.use(auth.errorHandler());
    const base = await serve(app);
    expect(await (await fetch(`${base}/maybe`)).json()).toEqual({ sub: null });
    expect(await (await fetch(`${base}/maybe`, { headers: bearer('read') })).json()).toEqual({
      sub: 'alice',
    });
    const bad = await fetch(`${base}/maybe`, { headers: { authorization: 'Bearer a.b.c' } });
    expect(bad.status).toBe(401);
    expect((await json(bad)).error).toMatch(/^token_/);
  });

  it('requireScopes() authenticates on its own and answers 403 with the insufficient_scope challenge', async () => {
    const auth = keyward(kw);
    const app = express();
    app.get('/admin', auth.requireScopes('admin'), (_req, res) => res.json({ ok: true }));
    app.get('/roles', auth.requireRoles('ops'), (_req, res) => res.json({ ok: true }));
    app.use(auth.errorHandler());
    const base = await serve(app);
    const denied = await fetch(`${base}/admin`, { headers: bearer('read') });
    expect(denied.status).toBe(403);
    expect(denied.headers.get('www-authenticate')).toBe(
      'Bearer realm="keyward", error="insufficient_scope", scope="admin"',
    );
    expect(await denied.json()).toMatchObject({ error: 'insufficient_scope' });
    expect((await fetch(`${base}/admin`, { headers: bearer('read admin') })).status).toBe(200);
    expect((await fetch(`${base}/admin`)).status).toBe(401);
    expect((await fetch(`${base}/roles`, { headers: bearer('read') })).status).toBe(403);
  });

  it('reports every 401 and 403 to onDenied', async () => {
    const denied: Array<[string, number]> = [];
    const auth = keyward(kw, { onDenied: (code, status) => denied.push([code, status]) });
    const app = express();
    app.get('/admin', auth.requireScopes('admin'), (_req, res) => res.json({}));
    app.use(auth.errorHandler());
    const base = await serve(app);
    await fetch(`${base}/admin`);
    await fetch(`${base}/admin`, { headers: bearer('read') });
    expect(denied).toEqual([
      ['missing_credentials', 401],
      ['insufficient_scope', 403],
    ]);
  });

  it('passes a store outage on as the original error (503 via errorHandler), not as a 401', async () => {
    const auth = keyward(kw);
    const app = express();
    app.get('/who', auth.authenticate(), (_req, res) => res.json({}));
    app.use(auth.errorHandler());
    const r = await fetch(`${await serve(app)}/who`, { headers: { 'x-api-key': 'kw_x' } });
    expect(r.status).toBe(503);
    expect((await json(r)).error).toBe('store_unavailable');
  });
});

describe('keyward().router()', () => {
  it('answers malformed, oversized and non-JSON bodies with the contract JSON, never HTML', async () => {
    const auth = keyward(kw);
    const app = express();
    app.use(auth.router({ bodyLimit: '1kb' }));
    const base = await serve(app);
    const post = (body: string, type = 'application/json') =>
      fetch(`${base}/auth/refresh`, { method: 'POST', headers: { 'content-type': type }, body });
    for (const [reply, message] of [
      [await post('{'), 'not valid JSON'],
      [await post(`{"x":"${'y'.repeat(2000)}"}`), 'too large'],
      [await post('a=b', 'application/x-www-form-urlencoded'), 'must be JSON'],
    ] as const) {
      const tooLarge = message === 'too large';
      expect(reply.status).toBe(tooLarge ? 413 : 400);
      expect(reply.headers.get('content-type')).toMatch(/^application\/json/);
      const body = await json(reply);
      expect(body.error).toBe(tooLarge ? 'body_too_large' : 'invalid_request');
      expect(body.message).toContain(message);
    }
  });

  it("leaves the app's own routes and their body parsing alone", async () => {
    const auth = keyward(kw);
    const app = express();
    app.use(auth.router());
    app.post('/mine', express.text(), (req, res) => res.json({ got: req.body }));
    const r = await fetch(`${await serve(app)}/mine`, {
      method: 'POST',
      headers: { 'content-type': 'text/plain' },
      body: 'hello',
    });
    expect(await r.json()).toEqual({ got: 'hello' });
  });

  it('healthRouter() serves only the health routes, 503 once shutting down', async () => {
    let shuttingDown = false;
    const auth = keyward(kw);
    const app = express();
    app.use(auth.healthRouter({ isShuttingDown: () => shuttingDown }));
    const base = await serve(app);
    expect((await fetch(`${base}/health/ready`)).status).toBe(200);
    expect((await fetch(`${base}/.well-known/jwks.json`)).status).toBe(404);
    shuttingDown = true;
    const ready = await fetch(`${base}/health/ready`);
    expect(ready.status).toBe(503);
    expect(await ready.json()).toMatchObject({ status: 'fail' });
  });
});

describe('errorHandler()', () => {
  it('passes errors that are not keyward errors on to the next handler', async () => {
    const auth = keyward(kw);
    const app = express();
    app.get('/boom', () => {
      throw new Error('boom');
    });
    app.use(auth.errorHandler());
    app.use(((_err, _req, res, _next) => res.status(500).json({ mine: true })) as ErrorRequestHandler);
    expect(await (await fetch(`${await serve(app)}/boom`)).json()).toEqual({ mine: true });
  });
});
