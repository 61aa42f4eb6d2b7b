import { afterEach, describe, expect, it } from 'vitest';
import { MasterKey } from '../keys/master-key.js';
import { createKeyward, type Keyward } from '../keyward.js';
import { createMemoryStore } from '../store/memory.js';
import type { Store } from '../store/types.js';
import { createAuthenticator } from './authenticate.js';
import { MAX_OAUTH_TOKEN_LENGTH } from './oauth.js';
import { type HttpResponse, handleRoute, type KeywardRoute, keywardRoutes } from './routes.js';

const open: Keyward[] = [];
afterEach(async () => {
  for (const kw of open.splice(0)) await kw.close();
});

const FORM = 'application/x-www-form-urlencoded';

async function setup(extra: { clientId?: string } = {}) {
  const c = { t: Date.UTC(2030, 0, 1) };
  const store: Store = createMemoryStore({ now: () => c.t });
  const kw = await createKeyward({
    store,
    masterKey: MasterKey.generate().exportText(),
    logger: false,
    audit: false,
    scheduler: false,
    syncIntervalMs: 60_000,
    issuer: 'https://issuer.example',
    now: () => c.t,
    dataKeyRewrap: { background: false, settleMs: 0 },
    ...extra,
  });
  open.push(kw);
  const routes = keywardRoutes({ ...kw, metrics: { text: async () => '', contentType: 'text/plain' } });
  const auth = createAuthenticator(kw);
  const route = (name: string) => routes.find((r) => r.name === name) as KeywardRoute;
  const bearer = (sub: string, scope: string) => `Bearer ${kw.jwt.sign({ sub, scope })}`;
  // Signed per call: the tests revoke signing keys and move the clock.
  const rs = () => bearer('resource-server', 'introspect');
  const post = (
    name: 'introspectToken' | 'revokeToken',
    body: unknown,
    o: { authorization?: string; contentType?: string; apiKey?: string } = {},
  ): Promise<HttpResponse> =>
    handleRoute(route(name), auth, {
      headers: {
        'content-type': o.contentType ?? FORM,
        ...(o.apiKey ? { 'x-api-key': o.apiKey } : { authorization: o.authorization ?? rs() }),
      },
      params: {},
      body,
    });
  const inspect = async (token: string) => {
    const r = await post('introspectToken', { token });
    expect(r.status).toBe(200);
    expect(r.headers['cache-control']).toBe('no-store');
    return r.body as Record<string, unknown>;
  };
  return { kw, c, store, post, inspect, bearer };
}

describe('POST /oauth/introspect', () => {
  it('describes an active access token with the RFC 7662 members, client_id only when it has one', async () => {
    const { kw, c, inspect } = await setup();
    const pair = await kw.tokens.issue({ sub: 'alice', scopes: ['read', 'write'] });
    const body = await inspect(pair.access_token);
    const iat = Math.floor(c.t / 1000);
    expect(body).toEqual({
      active: true,
      sub: 'alice',
      scope: 'read write',
      exp: iat + kw.options.accessTokenTtlSec,
      iat,
      iss: 'https://issuer.example',
      token_type: 'Bearer',
    });
    // client_id comes from the clientId option (RFC 9068 §2.2), never from a caller's claims.
    const withClient = await setup({ clientId: 'mobile-app' });
    const other = await withClient.kw.tokens.issue({ sub: 'alice' });
    expect(await withClient.inspect(other.access_token)).toMatchObject({
      active: true,
      client_id: 'mobile-app',
    });
  });

  it('is {active: false} and nothing else after logout, family revocation, key revocation, expiry, and for garbage', async () => {
    const { kw, c, inspect } = await setup();
    const loggedOut = await kw.tokens.issue({ sub: 'alice' });
    const { jti, exp } = kw.jwt.verify(loggedOut.access_token).payload;
    await kw.tokens.logout({ access: { jti, exp, sub: 'alice' } });
    expect(await inspect(loggedOut.access_token)).toEqual({ active: false });

    const reused = await kw.tokens.issue({ sub: 'bob' });
    const successor = await kw.tokens.refresh(reused.refresh_token);
    expect((await inspect(successor.access_token)).active).toBe(true);
    c.t += 5000;
    await expect(kw.tokens.refresh(reused.refresh_token)).rejects.toMatchObject({
      code: 'refresh_token_reused',
    });
    expect(await inspect(successor.access_token)).toEqual({ active: false });
    expect(await inspect(successor.refresh_token)).toEqual({ active: false });

    const signed = await kw.tokens.issue({ sub: 'carol' });
    await kw.keys.revoke(kw.keys.snapshot().signingKey().kid, 'test');
    expect(await inspect(signed.access_token)).toEqual({ active: false });

    const old = await kw.tokens.issue({ sub: 'dave' });
    c.t += (kw.options.accessTokenTtlSec + 3600) * 1000;
    expect(await inspect(old.access_token)).toEqual({ active: false });

    for (const garbage of ['x', 'a.b.c', 'rt_nope', 'kw_nope', `rt_${'A'.repeat(43)}`]) {
      expect(await inspect(garbage)).toEqual({ active: false });
    }
  });

  it('describes a refresh token without spending it: a refresh with it still works', async () => {
    const { kw, c, inspect } = await setup({ clientId: 'web' });
    const pair = await kw.tokens.issue({ sub: 'alice', scopes: ['read'] });
    const body = await inspect(pair.refresh_token);
    expect(body).toEqual({
      active: true,
      sub: 'alice',
      scope: 'read',
      exp: Math.floor(c.t / 1000) + 30 * 24 * 3600,
      iss: 'https://issuer.example',
      client_id: 'web',
      token_type: 'refresh_token',
    });
    await inspect(pair.refresh_token);
    const next = await kw.tokens.refresh(pair.refresh_token);
    expect(next.refresh_token).not.toBe(pair.refresh_token);
    // The spent one is no longer active; the successor is.
    expect(await inspect(pair.refresh_token)).toEqual({ active: false });
    expect((await inspect(next.refresh_token)).active).toBe(true);
  });

  it('describes an API key, and a revoked one as inactive', async () => {
    const { kw, inspect } = await setup();
    const created = await kw.apiKeys.create({ owner: 'alice', name: 'ci', scopes: ['read'] });
    expect(await inspect(created.key)).toEqual({
      active: true,
      sub: 'alice',
      scope: 'read',
      iss: 'https://issuer.example',
      token_type: 'api_key',
    });
    await kw.apiKeys.revoke(created.id);
    expect(await inspect(created.key)).toEqual({ active: false });
  });

  it('needs a credential (401) with scope introspect or admin (403 otherwise), bearer or API key', async () => {
    const { kw, post, bearer } = await setup();
    const pair = await kw.tokens.issue({ sub: 'alice' });
    const anonymous = await handleRoute(
      keywardRoutes({ ...kw, metrics: { text: async () => '', contentType: '' } }).find(
        (r) => r.name === 'introspectToken',
      ) as KeywardRoute,
      createAuthenticator(kw),
      { headers: { 'content-type': FORM }, params: {}, body: { token: pair.access_token } },
    );
    expect(anonymous.status).toBe(401);
    expect((anonymous.body as { error: string }).error).toBe('missing_credentials');
    const forbidden = await post(
      'introspectToken',
      { token: pair.access_token },
      { authorization: bearer('alice', 'read') },
    );
    expect(forbidden.status).toBe(403);
    expect(forbidden.headers['www-authenticate']).toBe(
      'Bearer realm="keyward", error="insufficient_scope", scope="introspect"',
    );
    expect(forbidden.body).toMatchObject({ error: 'insufficient_scope' });
    const asAdmin = await post(
      'introspectToken',
      { token: pair.access_token },
      { authorization: bearer('root', 'admin') },
    );
    expect(asAdmin.body).toMatchObject({ active: true, sub: 'alice' });
    const rsKey = await kw.apiKeys.create({ owner: 'rs', name: 'rs', scopes: ['introspect'] });
    const viaKey = await post('introspectToken', { token: pair.access_token }, { apiKey: rsKey.key });
    expect(viaKey.body).toMatchObject({ active: true, sub: 'alice' });
  });

  it('answers bad input with a clean 400 invalid_request: JSON, no token, a repeated or huge token; raw form text works', async () => {
    const { kw, post } = await setup();
    const pair = await kw.tokens.issue({ sub: 'alice' });
    const bad = [
      post('introspectToken', { token: pair.access_token }, { contentType: 'application/json' }),
      post('introspectToken', undefined),
      post('introspectToken', {}),
      post('introspectToken', { token: '' }),
      post('introspectToken', { token: [pair.access_token, pair.access_token] }),
      post('introspectToken', { token: { a: 'b' } }),
      post('introspectToken', { token: 'a'.repeat(MAX_OAUTH_TOKEN_LENGTH + 1) }),
      post('introspectToken', `token=${'a'.repeat(MAX_OAUTH_TOKEN_LENGTH + 1)}`),
      post('introspectToken', ['token']),
      post('revokeToken', { token: pair.access_token }, { contentType: 'application/json' }),
      post('revokeToken', {}),
    ];
    for (const r of await Promise.all(bad)) {
      expect(r.status).toBe(400);
      expect(r.body).toMatchObject({ error: 'invalid_request', message: expect.any(String) });
      expect(JSON.stringify(r.body)).not.toContain(pair.access_token);
    }
    const raw = await post(
      'introspectToken',
      `token=${encodeURIComponent(pair.access_token)}&token_type_hint=refresh_token`,
    );
    expect(raw.body).toMatchObject({ active: true, sub: 'alice' });
  });

  it('answers a store failure as a 5xx, never as an inactive token', async () => {
    const { kw, store, post } = await setup();
    const pair = await kw.tokens.issue({ sub: 'alice' });
    const original = store.get.bind(store);
    store.get = async () => {
      throw Object.assign(new Error('connection refused'), { code: 'ECONNREFUSED' });
    };
    const r = await post('introspectToken', { token: pair.refresh_token });
    store.get = original;
    expect(r.status).toBeGreaterThanOrEqual(500);
    expect(r.body).not.toMatchObject({ active: false });
  });
});

describe('POST /oauth/revoke', () => {
  it("revokes a refresh token's family: its access tokens turn inactive, the refresh fails", async () => {
    const { kw, post, inspect } = await setup();
    const pair = await kw.tokens.issue({ sub: 'alice' });
    const r = await post(
      'revokeToken',
      { token: pair.refresh_token, token_type_hint: 'refresh_token' },
      {
        authorization: `Bearer ${pair.access_token}`,
      },
    );
    expect(r.status).toBe(200);
    expect(r.headers['cache-control']).toBe('no-store');
    expect(await inspect(pair.access_token)).toEqual({ active: false });
    expect(await inspect(pair.refresh_token)).toEqual({ active: false });
    await expect(kw.tokens.refresh(pair.refresh_token)).rejects.toMatchObject({
      code: 'refresh_token_invalid',
    });
  });

  it("revokes an access token's jti; unknown and already revoked tokens get 200", async () => {
    const { kw, post, inspect, bearer } = await setup();
    const pair = await kw.tokens.issue({ sub: 'alice' });
    const other = await kw.tokens.issue({ sub: 'alice' });
    const asAlice = { authorization: `Bearer ${other.access_token}` };
    expect((await post('revokeToken', { token: pair.access_token }, asAlice)).status).toBe(200);
    expect(await inspect(pair.access_token)).toEqual({ active: false });
    // The refresh token of that session is left alone (RFC 7009 §2.1: "MAY").
    expect((await inspect(pair.refresh_token)).active).toBe(true);
    expect((await post('revokeToken', { token: pair.access_token }, asAlice)).status).toBe(200);
    for (const unknown of ['nope', `rt_${'A'.repeat(43)}`, 'kw_nope', 'a.b.c']) {
      expect(
        (await post('revokeToken', { token: unknown }, { authorization: bearer('alice', '') })).status,
      ).toBe(200);
    }
  });

  it('refuses (403) a token of another subject to a non-admin and changes nothing; admin may', async () => {
    const { kw, post, inspect, bearer } = await setup();
    const alice = await kw.tokens.issue({ sub: 'alice' });
    const mallory = bearer('mallory', 'read');
    for (const token of [alice.refresh_token, alice.access_token]) {
      const r = await post('revokeToken', { token }, { authorization: mallory });
      expect(r.status).toBe(403);
      expect(r.body).toMatchObject({ error: 'insufficient_scope' });
      expect((await inspect(token)).active).toBe(true);
    }
    const key = await kw.apiKeys.create({ owner: 'alice', name: 'ci' });
    expect((await post('revokeToken', { token: key.key }, { authorization: mallory })).status).toBe(403);
    expect((await inspect(key.key)).active).toBe(true);

    const admin = bearer('root', 'admin');
    expect((await post('revokeToken', { token: alice.refresh_token }, { authorization: admin })).status).toBe(
      200,
    );
    expect(await inspect(alice.access_token)).toEqual({ active: false });
    expect((await post('revokeToken', { token: key.key }, { authorization: admin })).status).toBe(200);
    expect(await inspect(key.key)).toEqual({ active: false });
  });

  it('needs a credential', async () => {
    const { kw } = await setup();
    const route = keywardRoutes({ ...kw, metrics: { text: async () => '', contentType: '' } }).find(
      (r) => r.name === 'revokeToken',
    ) as KeywardRoute;
    expect(route.body).toBe('form');
    const r = await handleRoute(route, createAuthenticator(kw), {
      headers: { 'content-type': FORM },
      params: {},
      body: { token: 'x' },
    });
    expect(r.status).toBe(401);
  });
});
