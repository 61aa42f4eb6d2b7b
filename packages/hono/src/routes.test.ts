import { createKeyward, createMemoryStore, type Keyward, MasterKey } from '@keyward/core';
import { staticUsers } from '@keyward/core/http';
import { Hono } from 'hono';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { keywardRoutes } from './index.js';

let kw: Keyward;
beforeAll(async () => {
  kw = await createKeyward({
    store: createMemoryStore(),
    masterKey: MasterKey.generate().exportText(),
    logger: false,
    audit: false,
  });
});
afterAll(async () => kw.close());

const users = staticUsers('alice:alice-password:read');
// biome-ignore lint/suspicious/noExplicitAny: JSON bodies in assertions
const body = async (r: Response): Promise<any> => r.json();
const post = (app: Hono, path: string, text: string, type = 'application/json') =>
  app.request(path, { method: 'POST', headers: { 'content-type': type }, body: text });

describe('keywardRoutes', () => {
  it('serves the contract routes mounted with app.route("/", …)', async () => {
    const app = new Hono();
    app.route('/', keywardRoutes(kw, { users }));
    const login = await post(
      app,
      '/auth/login',
      JSON.stringify({ username: 'alice', password: 'alice-password' }),
    );
    expect(login.status).toBe(200);
    expect(login.headers.get('cache-control')).toContain('no-store');
    const { access_token } = await body(login);
    const me = await app.request('/me', { headers: { authorization: `Bearer ${access_token}` } });
    expect(await body(me)).toEqual({ sub: 'alice', scopes: ['read'], auth: 'jwt' });
    const live = await app.request('/health/live');
    expect(live.headers.get('content-type')).toBe('application/health+json');
  });

  it('can be mounted under a prefix and limited to some groups', async () => {
    const app = new Hono();
    app.route('/kw', keywardRoutes(kw, { include: ['health', 'jwks'] }));
    expect((await app.request('/kw/health/live')).status).toBe(200);
    expect((await app.request('/kw/.well-known/jwks.json')).status).toBe(200);
    expect((await app.request('/kw/me')).status).toBe(404);
    expect((await post(app, '/kw/auth/login', '{}')).status).toBe(404);
  });

  it('answers malformed JSON and other content types with 400 invalid_request, not a 500', async () => {
    const app = keywardRoutes(kw, { users });
    for (const text of ['{', '{"a":1}}', '\u0000']) {
      const r = await post(app, '/auth/login', text);
      expect(r.status).toBe(400);
      expect(await body(r)).toEqual({
        error: 'invalid_request',
        message: 'the request body is not valid JSON',
      });
    }
    const form = await post(app, '/auth/login', 'username=alice', 'application/x-www-form-urlencoded');
    expect(form.status).toBe(400);
    expect((await body(form)).message).toMatch(/must be JSON/);
  });

  it('answers a body over bodyLimit with 413 body_too_large', async () => {
    const app = keywardRoutes(kw, { users, bodyLimit: 1024 });
    const text = JSON.stringify({ username: 'alice', password: 'x'.repeat(2000) });
    const sized: Record<string, string> = {
      'content-type': 'application/json',
      'content-length': String(text.length),
    };
    for (const headers of [sized, { 'content-type': 'application/json' }]) {
      const r = await app.request('/auth/login', { method: 'POST', headers, body: text });
      expect(r.status).toBe(413);
      expect(await body(r)).toEqual({ error: 'body_too_large', message: 'the request body is too large' });
    }
    const small = await post(app, '/auth/login', JSON.stringify({ username: 'alice', password: 'nope' }));
    expect(small.status).toBe(401);
  });

  it('does not serve login without a user directory', async () => {
    const app = keywardRoutes(kw);
    expect((await post(app, '/auth/login', '{}')).status).toBe(404);
  });
});
