import { afterEach, describe, expect, it } from 'vitest';
import { codeOf } from '../../../testing/src/errors.js';
import { countingStore, makeCore, testClock } from '../apikeys/__fixtures__/core.js';
import { createApiKeyService } from '../apikeys/service.js';
import type { AuditEvent } from '../audit/events.js';
import { KeywardError } from '../errors.js';
import type { KeywardCore } from '../keyward.js';
import { createMemoryStore } from '../store/memory.js';
import { createAuthenticator } from './authenticate.js';
import { cookieModeFromEnv } from './cookie.js';
import { checkSameOrigin, extractCredential, isStateChanging } from './credentials.js';
import { toHttpProblem } from './errors.js';
import { handleRoute, keywardRoutes, type RouteDeps } from './routes.js';
import { staticUsers } from './users.js';

const cores: KeywardCore[] = [];
afterEach(async () => {
  await Promise.all(cores.splice(0).map((c) => c.close()));
});

async function setup() {
  const clock = testClock();
  const events: AuditEvent[] = [];
  const core = await makeCore(countingStore(createMemoryStore({ now: clock.now })).store, {
    now: clock.now,
    events,
  });
  cores.push(core);
  const apiKeys = await createApiKeyService(core);
  const auth = createAuthenticator(
    { jwt: core.jwt, apiKeys, audit: core.audit },
    { cookie: 'kw_at', allowedOrigins: ['https://app.example.com'] },
  );
  const token = (sub = 'alice', scope = 'read admin') => core.jwt.sign({ sub, scope });
  return { core, apiKeys, auth, events, token };
}

describe('extractCredential in cookie mode', () => {
  it('marks a token read from the cookie, and reads no cookie without the option', () => {
    expect(extractCredential({ cookie: 'a=1; kw_at=abc.def.ghi' }, { cookie: 'kw_at' })).toEqual({
      type: 'bearer',
      token: 'abc.def.ghi',
      fromCookie: true,
    });
    expect(extractCredential({ cookie: 'kw_at=abc.def.ghi' })).toBeUndefined();
  });

  it('a malformed %-escape in the cookie is invalid_request, not a 500', () => {
    expect(codeOf(() => extractCredential({ cookie: 'kw_at=%zz' }, { cookie: 'kw_at' }))).toBe(
      'invalid_request',
    );
  });

  it('regression #11: cookie + Authorization is the header, not invalid_request', () => {
    expect(
      extractCredential({ authorization: 'Bearer h.e.ader', cookie: 'kw_at=c.o.okie' }, { cookie: 'kw_at' }),
    ).toEqual({ type: 'bearer', token: 'h.e.ader' });
  });

  it('Authorization + X-API-Key stays invalid_request, so does X-API-Key + cookie', () => {
    const options = { cookie: 'kw_at' };
    expect(
      codeOf(() => extractCredential({ authorization: 'Bearer a.b.c', 'x-api-key': 'kw_x' }, options)),
    ).toBe('invalid_request');
    expect(codeOf(() => extractCredential({ cookie: 'kw_at=a.b.c', 'x-api-key': 'kw_x' }, options))).toBe(
      'invalid_request',
    );
  });
});

describe('checkSameOrigin', () => {
  it('passes safe methods, same-origin / none fetch metadata and allowed origins; rejects the rest', () => {
    const allowed = ['https://app.example.com'];
    for (const method of ['GET', 'HEAD', 'OPTIONS', 'get']) {
      expect(() => checkSameOrigin(method, { 'sec-fetch-site': 'cross-site' }, allowed)).not.toThrow();
    }
    for (const method of ['POST', 'PUT', 'PATCH', 'DELETE', undefined]) {
      expect(isStateChanging(method)).toBe(true);
      expect(() => checkSameOrigin(method, { 'sec-fetch-site': 'same-origin' }, allowed)).not.toThrow();
      expect(() => checkSameOrigin(method, { 'sec-fetch-site': 'none' }, allowed)).not.toThrow();
      expect(() =>
        checkSameOrigin(
          method,
          { 'sec-fetch-site': 'cross-site', origin: 'https://app.example.com' },
          allowed,
        ),
      ).not.toThrow();
      for (const headers of [
        {},
        { 'sec-fetch-site': 'cross-site' },
        // Same site is not same origin: a sibling subdomain gets SameSite cookies too.
        { 'sec-fetch-site': 'same-site' },
        { origin: 'https://evil.example' },
        { origin: 'null' },
        { origin: 'https://app.example.com.evil.example' },
        { 'sec-fetch-site': 'cross-site', origin: 'https://evil.example' },
      ]) {
        expect(codeOf(() => checkSameOrigin(method, headers, allowed))).toBe('csrf_rejected');
      }
    }
  });

  it('csrf_rejected is a 403 without a WWW-Authenticate challenge', () => {
    expect(toHttpProblem(new KeywardError('csrf_rejected', 'x'))).toEqual({
      status: 403,
      error: 'csrf_rejected',
      message: 'x',
      headers: {},
    });
  });
});

describe('the authenticator in cookie mode', () => {
  it('regression #11: a cross-site POST with only the cookie is csrf_rejected (and audited)', async () => {
    const { auth, events, token } = await setup();
    const cookie = `kw_at=${token()}`;
    await expect(auth.authenticate({ cookie, 'sec-fetch-site': 'cross-site' }, 'POST')).rejects.toMatchObject(
      {
        code: 'csrf_rejected',
      },
    );
    await expect(auth.optional({ cookie, origin: 'https://evil.example' }, 'DELETE')).rejects.toMatchObject({
      code: 'csrf_rejected',
    });
    // No method given: counts as state-changing (fails closed).
    await expect(auth.authenticate({ cookie })).rejects.toMatchObject({ code: 'csrf_rejected' });
    const denied = events.filter((e) => e.type === 'access.denied');
    expect(denied.map((e) => (e as { code?: string }).code)).toEqual([
      'csrf_rejected',
      'csrf_rejected',
      'csrf_rejected',
    ]);
    expect(JSON.stringify(denied)).not.toContain(token());
  });

  it('passes same-origin and allowed-origin writes, cross-site reads, and header credentials anywhere', async () => {
    const { auth, apiKeys, token } = await setup();
    const cookie = `kw_at=${token()}`;
    const same = await auth.authenticate({ cookie, 'sec-fetch-site': 'same-origin' }, 'POST');
    expect(same).toMatchObject({ sub: 'alice', fromCookie: true });
    expect(Object.isFrozen(same)).toBe(true);
    expect((await auth.authenticate({ cookie, origin: 'https://app.example.com' }, 'PUT')).sub).toBe('alice');
    expect((await auth.authenticate({ cookie, 'sec-fetch-site': 'cross-site' }, 'GET')).sub).toBe('alice');
    // A header credential is not sent by the browser on its own: no same-origin check.
    const header = await auth.authenticate(
      { authorization: `Bearer ${token('bob', 'read')}`, 'sec-fetch-site': 'cross-site' },
      'POST',
    );
    expect(header.sub).toBe('bob');
    expect(header.fromCookie).toBeUndefined();
    const { key } = await apiKeys.create({ owner: 'carol', name: 'ci' });
    expect((await auth.authenticate({ 'x-api-key': key }, 'DELETE')).sub).toBe('carol');
  });

  it('regression #11: cookie + Authorization authenticates the header principal', async () => {
    const { auth, token } = await setup();
    const p = await auth.authenticate(
      { cookie: `kw_at=${token('alice')}`, authorization: `Bearer ${token('bob', 'read')}` },
      'POST',
    );
    expect(p.sub).toBe('bob');
    expect(p.fromCookie).toBeUndefined();
  });
});

describe('contract routes in cookie mode', () => {
  async function routes() {
    const s = await setup();
    const deps = {
      ...s.core,
      apiKeys: s.apiKeys,
      tokens: {
        issue: async () => ({
          access_token: 'a.b.c',
          refresh_token: 'rt_x',
          token_type: 'Bearer',
          expires_in: 900,
        }),
        logout: async () => undefined,
      },
      secrets: {},
      health: async () => ({}),
      metrics: { text: async () => '', contentType: 'text/plain' },
    } as unknown as RouteDeps;
    const table = keywardRoutes(deps, { users: staticUsers('alice:alice-password:read admin') });
    const route = (name: string) => {
      const found = table.find((r) => r.name === name);
      if (!found) throw new Error(name);
      return found;
    };
    return { ...s, route };
  }

  it('regression #11: a cross-site bodyless POST /admin/keys/rotate with the admin cookie rotates nothing', async () => {
    const { auth, route, core, token } = await routes();
    const before = core.keys.list().length;
    const answer = await handleRoute(route('rotateKey'), auth, {
      headers: { cookie: `kw_at=${token()}`, 'sec-fetch-site': 'cross-site' },
      params: {},
      body: undefined,
    });
    expect(answer).toMatchObject({ status: 403, body: { error: 'csrf_rejected' } });
    expect(answer.headers['www-authenticate']).toBeUndefined();
    expect(core.keys.list().length).toBe(before);
  });

  it('regression #11: a bodyless POST to a route that needs a body is a 400, never read as {}', async () => {
    const { auth, route, core, token } = await routes();
    const before = core.keys.list().length;
    const headers = { authorization: `Bearer ${token()}` };
    for (const name of ['rotateKey', 'revokeKey', 'createApiKey', 'putSecret', 'refresh', 'login']) {
      for (const body of [undefined, null, '']) {
        const answer = await handleRoute(route(name), auth, {
          headers,
          params: { kid: 'k', name: 's' },
          body,
        });
        expect([name, answer.status, (answer.body as { error?: string }).error]).toEqual([
          name,
          400,
          'invalid_request',
        ]);
      }
    }
    expect(core.keys.list().length).toBe(before);
    const rotated = await handleRoute(route('rotateKey'), auth, { headers, params: {}, body: {} });
    expect(rotated.status).toBe(200);
    expect(core.keys.list().length).toBe(before + 1);
  });
});

describe('the session cookie', () => {
  it('login sets it (HttpOnly, Secure, SameSite=Strict, Path=/), logout clears it, only in cookie mode', async () => {
    const s = await setup();
    const deps = {
      ...s.core,
      apiKeys: s.apiKeys,
      tokens: {
        issue: async () => ({
          access_token: 'a.b.c',
          refresh_token: 'rt_x',
          token_type: 'Bearer',
          expires_in: 900,
        }),
        logout: async () => undefined,
      },
    } as unknown as RouteDeps;
    const table = keywardRoutes(deps, { users: staticUsers('alice:alice-password:read') });
    const login = table.find((r) => r.name === 'login');
    const logout = table.find((r) => r.name === 'logout');
    if (!login || !logout) throw new Error('routes');
    const body = { username: 'alice', password: 'alice-password' };
    const ok = await handleRoute(login, s.auth, { headers: {}, params: {}, body });
    expect(ok.status).toBe(200);
    expect(ok.headers['set-cookie']).toBe(
      'kw_at=a.b.c; Max-Age=900; Path=/; HttpOnly; Secure; SameSite=Strict',
    );
    const wrong = await handleRoute(login, s.auth, {
      headers: {},
      params: {},
      body: { ...body, password: 'x' },
    });
    expect(wrong.status).toBe(401);
    expect(wrong.headers['set-cookie']).toBeUndefined();
    const out = await handleRoute(logout, s.auth, {
      headers: { cookie: `kw_at=${s.token()}`, 'sec-fetch-site': 'same-origin' },
      params: {},
      body: undefined,
    });
    expect(out.status).toBe(204);
    expect(out.headers['set-cookie']).toBe('kw_at=; Max-Age=0; Path=/; HttpOnly; Secure; SameSite=Strict');
    const plain = createAuthenticator({ jwt: s.core.jwt });
    expect(
      (await handleRoute(login, plain, { headers: {}, params: {}, body })).headers['set-cookie'],
    ).toBeUndefined();
  });

  it('cookieModeFromEnv reads KEYWARD_COOKIE / KEYWARD_ALLOWED_ORIGINS and refuses bad values', () => {
    expect(cookieModeFromEnv({})).toEqual({});
    expect(
      cookieModeFromEnv({
        KEYWARD_COOKIE: 'kw_at',
        KEYWARD_ALLOWED_ORIGINS: 'https://a.example, http://b:8080',
      }),
    ).toEqual({ cookie: 'kw_at', allowedOrigins: ['https://a.example', 'http://b:8080'] });
    expect(codeOf(() => cookieModeFromEnv({ KEYWARD_COOKIE: 'a=b' }))).toBe('config_invalid');
    expect(
      codeOf(() =>
        cookieModeFromEnv({ KEYWARD_COOKIE: 'kw', KEYWARD_ALLOWED_ORIGINS: 'https://a.example/' }),
      ),
    ).toBe('config_invalid');
    const jwt = { verify: () => ({}) as never };
    expect(codeOf(() => createAuthenticator({ jwt }, { cookie: 'a b' }))).toBe('config_invalid');
    expect(
      codeOf(() => createAuthenticator({ jwt }, { cookie: 'kw', allowedOrigins: 'https://a' as never })),
    ).toBe('config_invalid');
  });
});
