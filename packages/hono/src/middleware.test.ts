import { createKeyward, createMemoryStore, type Keyward, KeywardError, MasterKey } from '@keyward/core';
import type { DeniedHook } from '@keyward/core/http';
import { Hono, type MiddlewareHandler } from 'hono';
import { HTTPException } from 'hono/http-exception';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type KeywardEnv,
  keywardApiKey,
  keywardAuth,
  keywardOptional,
  requireRoles,
  requireScopes,
  toHTTPException,
} from './index.js';

let kw: Keyward;
let apiKey: string;
let clock = Date.now();

beforeAll(async () => {
  kw = await createKeyward({
    store: createMemoryStore(),
    masterKey: MasterKey.generate().exportText(),
    logger: false,
    audit: false,
    now: () => clock,
  });
  apiKey = (await kw.apiKeys.create({ owner: 'ci-bot', name: 'ci', scopes: ['ci'] })).key;
});
afterAll(async () => kw.close());

const token = (claims: Record<string, unknown> = {}) =>
  kw.jwt.sign({ sub: 'alice', scope: 'read', ...claims });
const bearer = (t = token()) => ({ authorization: `Bearer ${t}` });
// biome-ignore lint/suspicious/noExplicitAny: JSON bodies in assertions
const body = async (r: Response): Promise<any> => r.json();

function whoAmI(...middleware: MiddlewareHandler<KeywardEnv>[]) {
  const app = new Hono<KeywardEnv>();
  app.use(...middleware);
  app.get('/who', (c) =>
    c.json({
      sub: c.get('auth')?.sub ?? null,
      via: c.get('auth')?.via ?? null,
      jwtSub: c.get('jwtPayload')?.sub ?? null,
    }),
  );
  return app;
}

describe('keywardAuth', () => {
  it('sets c.get("auth") and hono/jwt\'s c.get("jwtPayload") for a bearer token', async () => {
    const r = await whoAmI(keywardAuth(kw)).request('/who', { headers: bearer() });
    expect(await body(r)).toEqual({ sub: 'alice', via: 'jwt', jwtSub: 'alice' });
  });

  it('accepts an API key as well', async () => {
    const r = await whoAmI(keywardAuth(kw)).request('/who', { headers: { 'x-api-key': apiKey } });
    expect(await body(r)).toEqual({ sub: 'ci-bot', via: 'api_key', jwtSub: 'ci-bot' });
  });

  it('answers 401 missing_credentials with the bare challenge and the contract JSON', async () => {
    const r = await whoAmI(keywardAuth(kw)).request('/who');
    expect(r.status).toBe(401);
    expect(r.headers.get('www-authenticate')).toBe('Bearer realm="keyward"');
    expect(r.headers.get('content-type')).toMatch(/^application\/json/);
    expect(await body(r)).toEqual({ error: 'missing_credentials', message: expect.any(String) });
  });

  it('throws an HTTPException with the stable code as cause, for app.onError', async () => {
    const seen: Array<{ status: number; cause: unknown; message: string }> = [];
    const app = whoAmI(keywardAuth(kw));
    app.onError((err, c) => {
      if (!(err instanceof HTTPException)) return c.text('unexpected', 500);
      seen.push({ status: err.status, cause: err.cause, message: err.message });
      return err.getResponse();
    });
    const soonStale = token();
    clock += 3_600_000;
    const r = await Promise.resolve(app.request('/who', { headers: bearer(soonStale) })).finally(() => {
      clock -= 3_600_000;
    });
    expect(r.status).toBe(401);
    expect(r.headers.get('www-authenticate')).toMatch(/^Bearer realm="keyward", error="invalid_token"/);
    expect(seen).toEqual([{ status: 401, cause: 'token_expired', message: expect.any(String) }]);
  });

  it("never echoes the token (hono/jwt's JwtTokenInvalid does)", async () => {
    const [h, , s] = token().split('.');
    const tampered = `${h}.${Buffer.from('{"sub":"mallory","scope":"admin"}').toString('base64url')}.${s}`;
    const r = await whoAmI(keywardAuth(kw)).request('/who', { headers: bearer(tampered) });
    expect(r.status).toBe(401);
    const text = await r.text();
    expect(text).not.toContain(tampered);
    expect(text).not.toContain(s);
    expect(r.headers.get('www-authenticate')).not.toContain(s);
  });

  it('answers 400 invalid_request to a malformed Authorization header and to two credentials', async () => {
    const app = whoAmI(keywardAuth(kw));
    const basic = await app.request('/who', { headers: { authorization: 'Basic YTpi' } });
    expect(basic.status).toBe(400);
    expect(basic.headers.get('www-authenticate')).toMatch(/error="invalid_request"/);
    const both = await app.request('/who', { headers: { ...bearer(), 'x-api-key': apiKey } });
    expect((await body(both)).error).toBe('invalid_request');
  });

  it("lets errors that are not a client's fault reach onError untouched, never as a 4xx", async () => {
    const boom = new Error('store exploded');
    const deps = { jwt: kw.jwt, apiKeys: { verify: () => Promise.reject(boom) } };
    const app = whoAmI(keywardAuth(deps));
    let seen: unknown;
    app.onError((err, c) => {
      seen = err;
      return c.text('sorry', 500);
    });
    const r = await app.request('/who', { headers: { 'x-api-key': apiKey } });
    expect(r.status).toBe(500);
    expect(seen).toBe(boom);
  });

  it('reports every 401 and 403 to onDenied', async () => {
    const denied: Array<[string, number]> = [];
    const onDenied: DeniedHook = (code, status) => denied.push([code, status]);
    await whoAmI(keywardAuth(kw, { onDenied })).request('/who');
    expect(denied).toEqual([['missing_credentials', 401]]);
  });

  it('can turn API keys off', async () => {
    const r = await whoAmI(keywardAuth(kw, { apiKeys: false })).request('/who', {
      headers: { 'x-api-key': apiKey },
    });
    expect((await body(r)).error).toBe('missing_credentials');
  });
});

describe('keywardOptional', () => {
  const optionalApp = () =>
    new Hono().get('/who', keywardOptional(kw), (c) =>
      c.json({
        sub: c.get('auth')?.sub ?? null,
        via: c.get('auth')?.via ?? null,
        jwtSub: c.get('jwtPayload')?.sub ?? null,
      }),
    );
  it('leaves auth undefined for anonymous requests and sets it otherwise', async () => {
    const app = optionalApp();
    expect(await body(await app.request('/who'))).toEqual({ sub: null, via: null, jwtSub: null });
    expect((await body(await app.request('/who', { headers: bearer() }))).sub).toBe('alice');
  });

  it('still rejects a bad credential', async () => {
    const r = await optionalApp().request('/who', { headers: bearer('a.b.c') });
    expect(r.status).toBe(401);
  });
});

describe('requireScopes and requireRoles', () => {
  it('answers 403 insufficient_scope with the scope challenge', async () => {
    const app = whoAmI(keywardAuth(kw), requireScopes('admin'));
    const r = await app.request('/who', { headers: bearer() });
    expect(r.status).toBe(403);
    expect(r.headers.get('www-authenticate')).toBe(
      'Bearer realm="keyward", error="insufficient_scope", scope="admin"',
    );
    const ok = await app.request('/who', { headers: bearer(token({ scope: 'read admin' })) });
    expect(ok.status).toBe(200);
  });

  it('answers 401 when no keyward middleware ran before', async () => {
    const r = await whoAmI(requireScopes('read')).request('/who', { headers: bearer() });
    expect(r.status).toBe(401);
    expect((await body(r)).error).toBe('missing_credentials');
  });

  it('requires one of the roles', async () => {
    const app = whoAmI(keywardAuth(kw), requireRoles('support', 'owner'));
    expect((await app.request('/who', { headers: bearer() })).status).toBe(403);
    const owner = await app.request('/who', { headers: bearer(token({ roles: ['owner'] })) });
    expect(owner.status).toBe(200);
  });
});

describe('keywardApiKey', () => {
  it('accepts an API key and ignores the Authorization header', async () => {
    const app = whoAmI(keywardApiKey(kw), requireScopes('ci'));
    const r = await app.request('/who', { headers: { 'x-api-key': apiKey, authorization: 'Basic YTpi' } });
    expect(await body(r)).toEqual({ sub: 'ci-bot', via: 'api_key', jwtSub: 'ci-bot' });
  });

  it('does not accept a bearer token', async () => {
    const r = await whoAmI(keywardApiKey(kw)).request('/who', { headers: bearer() });
    expect(r.status).toBe(401);
    expect((await body(r)).error).toBe('missing_credentials');
  });

  it('does not let a bearer principal from an app-wide middleware through', async () => {
    const app = new Hono<KeywardEnv>();
    app.use(keywardOptional(kw) as unknown as MiddlewareHandler<KeywardEnv>);
    app.get('/hook', keywardApiKey(kw), (c) => c.text(c.get('auth').via));
    expect((await app.request('/hook', { headers: bearer() })).status).toBe(401);
    const r = await app.request('/hook', { headers: { 'x-api-key': apiKey } });
    expect(await r.text()).toBe('api_key');
  });

  it('rejects an unknown key with 401 invalid_token', async () => {
    const r = await whoAmI(keywardApiKey(kw)).request('/who', { headers: { 'x-api-key': `${apiKey}x` } });
    expect(r.status).toBe(401);
    expect((await body(r)).error).toMatch(/^api_key_/);
  });
});

describe('toHTTPException', () => {
  it('maps a keyward error from a handler to the contract answer', async () => {
    const app = new Hono();
    app.get('/secret', () => {
      throw toHTTPException(new KeywardError('not_found', 'no such secret'));
    });
    const r = await app.request('/secret');
    expect(r.status).toBe(404);
    expect(await body(r)).toEqual({ error: 'not_found', message: 'no such secret' });
  });
});

describe('audit of denied access', () => {
  it('records a missing scope and a bad token as access.denied, with fingerprints only', async () => {
    const { callbackSink } = await import('@keyward/core');
    const events: Array<{ type: string; code?: string; via?: string }> = [];
    const audited = await createKeyward({
      store: createMemoryStore(),
      masterKey: MasterKey.generate().exportText(),
      logger: false,
      audit: { sinks: [callbackSink((e) => void events.push(e))] },
      scheduler: false,
    });
    const app = new Hono<KeywardEnv>();
    app.get('/admin', keywardAuth(audited), requireScopes('admin'), (c) => c.json({ ok: true }));
    const t = audited.jwt.sign({ sub: 'alice', scope: 'read' });
    expect((await app.request('/admin', { headers: { authorization: `Bearer ${t}` } })).status).toBe(403);
    expect((await app.request('/admin', { headers: { authorization: `Bearer ${t}x` } })).status).toBe(401);
    await audited.close();
    const denied = events.filter((e) => e.type === 'access.denied');
    expect(denied.map((e) => e.code)).toEqual(['insufficient_scope', 'token_signature_invalid']);
    expect(JSON.stringify(events)).not.toContain(t);
  });
});
