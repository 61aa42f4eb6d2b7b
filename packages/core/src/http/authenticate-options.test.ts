// keyward issue #13: the authenticator options users of @fastify/jwt, express-jwt, passport-jwt,
// @nestjs/jwt and hono/jwt look for — getToken, onAuthenticated, realm — optional authentication
// ignoring other Authorization schemes, and the roles / claims of a UserDirectory in login tokens.
import { afterEach, describe, expect, it } from 'vitest';
import { codeOf } from '../../../testing/src/errors.js';
import { startTestIdp } from '../../../testing/src/idp.js';
import { countingStore, makeCore, testClock } from '../apikeys/__fixtures__/core.js';
import { createApiKeyService } from '../apikeys/service.js';
import type { AuditEvent } from '../audit/events.js';
import { KeywardError } from '../errors.js';
import { MasterKey } from '../keys/master-key.js';
import { createKeyward, type Keyward, type KeywardCore } from '../keyward.js';
import { createMemoryStore } from '../store/memory.js';
import { type AuthenticatorOptions, createAuthenticator } from './authenticate.js';
import { extractCredential } from './credentials.js';
import { toHttpProblem } from './errors.js';
import { type Principal, principalFromJwt } from './principal.js';
import { handleRoute, keywardRoutes } from './routes.js';
import { staticUsers, type UserDirectory } from './users.js';

const cores: Array<{ close(): Promise<void> }> = [];
afterEach(async () => {
  await Promise.all(cores.splice(0).map((c) => c.close()));
});

async function setup(options: AuthenticatorOptions = {}) {
  const clock = testClock();
  const events: AuditEvent[] = [];
  const core: KeywardCore = await makeCore(countingStore(createMemoryStore({ now: clock.now })).store, {
    now: clock.now,
    events,
  });
  cores.push(core);
  const apiKeys = await createApiKeyService(core);
  const auth = createAuthenticator({ jwt: core.jwt, apiKeys, audit: core.audit }, options);
  const token = (sub = 'alice', scope = 'read') => core.jwt.sign({ sub, scope });
  const denied = () => events.filter((e) => e.type === 'access.denied');
  return { core, apiKeys, auth, token, denied, clock };
}

describe('getToken', () => {
  it('a returned string is verified like a bearer token; the Authorization header is not read', async () => {
    const seen: unknown[] = [];
    const native = { kind: 'framework request' };
    const s = await setup({
      getToken: (headers, request) => {
        seen.push(request);
        const value = headers['x-access-token'];
        return typeof value === 'string' ? value : undefined;
      },
    });
    const p = await s.auth.authenticate({ 'x-access-token': s.token() }, 'GET', native);
    expect(p.sub).toBe('alice');
    expect(seen).toEqual([native]);
    // The header is somebody else's now: a bearer token there is not keyward's credential.
    expect(await codeOf(s.auth.authenticate({ authorization: `Bearer ${s.token()}` }))).toBe(
      'missing_credentials',
    );
    expect(await s.auth.optional({ authorization: `Bearer ${s.token()}` })).toBeUndefined();
  });

  it('same errors as a bearer token: expired, bad signature, revoked, malformed; audited', async () => {
    let token: string | undefined;
    const s = await setup({ getToken: async () => token });
    token = `${s.token().slice(0, -4)}AAAA`;
    expect(await codeOf(s.auth.authenticate({}))).toBe('token_signature_invalid');
    token = s.token('expiring');
    s.clock.advance(86_400_000);
    expect(await codeOf(s.auth.authenticate({}))).toBe('token_expired');
    token = 'not a token';
    expect(await codeOf(s.auth.authenticate({}))).toBe('invalid_request');
    token = 'garbage!!.x.y';
    expect(await codeOf(s.auth.authenticate({}))).toBe('invalid_request');
    const good = s.token();
    token = good;
    expect((await s.auth.authenticate({})).sub).toBe('alice');
    // Revocation is checked as for a header token: the token's signing key revoked.
    await s.core.keys.revoke(s.core.jwt.verify(good).kid, 'test');
    expect(await codeOf(s.auth.authenticate({}))).toBe('key_revoked');
    expect(s.denied().map((e) => e.code)).toEqual(
      expect.arrayContaining(['token_signature_invalid', 'key_revoked']),
    );
  });

  it('undefined / null is no token (the API key header still counts); token + API key is invalid_request', async () => {
    let token: string | null | undefined = null;
    const s = await setup({ getToken: () => token });
    expect(await s.auth.optional({})).toBeUndefined();
    expect(await codeOf(s.auth.authenticate({}))).toBe('missing_credentials');
    const { key } = await s.apiKeys.create({ owner: 'bob', name: 'ci' });
    expect((await s.auth.authenticate({ 'x-api-key': key })).sub).toBe('bob');
    token = s.token();
    expect(await codeOf(s.auth.authenticate({ 'x-api-key': key }))).toBe('invalid_request');
  });

  it('a thrown KeywardError is answered as such; a wrong return type or another error is a 500', async () => {
    let behaviour: () => unknown = () => undefined;
    const s = await setup({ getToken: () => behaviour() as string });
    behaviour = () => {
      throw new KeywardError('invalid_request', 'two tokens');
    };
    expect(await codeOf(s.auth.authenticate({}))).toBe('invalid_request');
    behaviour = () => 42;
    const wrongType = await s.auth.authenticate({}).catch((e: unknown) => e);
    expect(toHttpProblem(wrongType).status).toBe(500);
    behaviour = () => {
      throw new Error('db down: secret=hunter2');
    };
    const crashed = await s.auth.authenticate({}).catch((e: unknown) => e);
    expect(toHttpProblem(crashed)).toEqual({
      status: 500,
      error: 'internal_error',
      message: 'internal error',
      headers: {},
    });
  });

  it('is refused with cookie mode and when not a function', async () => {
    const core = (await setup()).core;
    expect(
      codeOf(() => createAuthenticator({ jwt: core.jwt }, { getToken: () => undefined, cookie: 'kw_at' })),
    ).toBe('config_invalid');
    expect(
      codeOf(() =>
        createAuthenticator({ jwt: core.jwt }, { getToken: 'x-token' as unknown as () => string }),
      ),
    ).toBe('config_invalid');
  });
});

describe('onAuthenticated', () => {
  it('maps the principal of every credential type, with the framework request', async () => {
    const calls: Array<[string, unknown]> = [];
    const s = await setup({
      onAuthenticated: async (principal, request) => {
        calls.push([principal.via, request]);
        return { ...principal, roles: [...principal.roles, 'from-db'] };
      },
    });
    const native = { id: 1 };
    const viaJwt = await s.auth.authenticate({ authorization: `Bearer ${s.token()}` }, 'GET', native);
    expect(viaJwt.roles).toEqual(['from-db']);
    const { key } = await s.apiKeys.create({ owner: 'bob', name: 'ci' });
    const viaKey = await s.auth.optional({ 'x-api-key': key }, 'GET', native);
    expect(viaKey?.roles).toEqual(['from-db']);
    expect(calls).toEqual([
      ['jwt', native],
      ['api_key', native],
    ]);
    // Every request is mapped again (a cache hit too), and the cached, frozen principal of the
    // token is not changed by the mapping.
    const token = s.token('carol');
    await s.auth.authenticate({ authorization: `Bearer ${token}` });
    const again = await s.auth.authenticate({ authorization: `Bearer ${token}` });
    expect(again.roles).toEqual(['from-db']);
    expect(calls).toHaveLength(4);
    expect(principalFromJwt(s.core.jwt.verify(token)).roles).toEqual([]);
  });

  it('runs on cookie principals too, after the same-origin check', async () => {
    const order: string[] = [];
    const s = await setup({
      cookie: 'kw_at',
      onAuthenticated: (p) => {
        order.push(p.fromCookie ? 'cookie' : 'header');
        return p;
      },
    });
    const cookie = `kw_at=${s.token()}`;
    expect((await s.auth.authenticate({ cookie }, 'GET')).fromCookie).toBe(true);
    expect(await codeOf(s.auth.authenticate({ cookie, 'sec-fetch-site': 'cross-site' }, 'POST'))).toBe(
      'csrf_rejected',
    );
    expect(order).toEqual(['cookie']);
  });

  it('a thrown KeywardError refuses (audited); anything else is a 500 without its message', async () => {
    const disabled = new Set(['mallory']);
    const s = await setup({
      onAuthenticated: (p) => {
        if (disabled.has(p.sub)) throw new KeywardError('token_revoked', 'user disabled');
        if (p.sub === 'crash') throw new Error('connection string postgres://u:pw@db');
        if (p.sub === 'nothing') return undefined as unknown as Principal;
        return p;
      },
    });
    const refused = await s.auth
      .authenticate({ authorization: `Bearer ${s.token('mallory')}` })
      .catch((e: unknown) => e);
    expect(toHttpProblem(refused).status).toBe(401);
    expect(toHttpProblem(refused).error).toBe('token_revoked');
    expect(s.denied()).toEqual([
      expect.objectContaining({ type: 'access.denied', code: 'token_revoked', sub: 'mallory' }),
    ]);
    for (const sub of ['crash', 'nothing']) {
      const err = await s.auth
        .authenticate({ authorization: `Bearer ${s.token(sub)}` })
        .catch((e: unknown) => e);
      expect(toHttpProblem(err)).toEqual({
        status: 500,
        error: 'internal_error',
        message: 'internal error',
        headers: {},
      });
    }
    expect((await s.auth.authenticate({ authorization: `Bearer ${s.token('alice')}` })).sub).toBe('alice');
  });
});

describe('realm', () => {
  it("names the challenge of the authenticator's refusals, and of the routes it serves", async () => {
    const s = await setup({ realm: 'orders-api' });
    expect(s.auth.realm).toBe('orders-api');
    const missing = await s.auth.authenticate({}).catch((e: unknown) => e);
    expect(toHttpProblem(missing).headers['www-authenticate']).toBe('Bearer realm="orders-api"');
    const bad = await s.auth.authenticate({ authorization: 'Bearer a.b.c' }).catch((e: unknown) => e);
    expect(toHttpProblem(bad).headers['www-authenticate']).toMatch(
      /^Bearer realm="orders-api", error="invalid_token"/,
    );
    const p = await s.auth.authenticate({ authorization: `Bearer ${s.token()}` });
    let scope: unknown;
    try {
      s.auth.authorize(p, { scopes: ['admin'] });
    } catch (err) {
      scope = err;
    }
    expect(toHttpProblem(scope).headers['www-authenticate']).toMatch(
      /^Bearer realm="orders-api", error="insufficient_scope"/,
    );
    // Another authenticator keeps keyward's realm.
    const plain = await setup();
    const other = await plain.auth.authenticate({}).catch((e: unknown) => e);
    expect(toHttpProblem(other).headers['www-authenticate']).toBe('Bearer realm="keyward"');
  });

  it('refuses a realm that does not fit a quoted-string', async () => {
    const { core } = await setup();
    for (const realm of ['', 'a"b', 'a\\b', 'caf\u00e9', 'x'.repeat(129)]) {
      expect(codeOf(() => createAuthenticator({ jwt: core.jwt }, { realm }))).toBe('config_invalid');
    }
  });
});

describe('optional authentication and other Authorization schemes', () => {
  it('optional ignores Basic; authenticate still answers invalid_request; Bearer garbage is an error in both', async () => {
    const s = await setup();
    const basic = { authorization: 'Basic YWxpY2U6cHc=' };
    expect(await s.auth.optional(basic)).toBeUndefined();
    expect(await codeOf(s.auth.authenticate(basic))).toBe('invalid_request');
    const { key } = await s.apiKeys.create({ owner: 'bob', name: 'ci' });
    expect((await s.auth.optional({ ...basic, 'x-api-key': key }))?.sub).toBe('bob');
    expect(await codeOf(s.auth.optional({ authorization: 'Bearer a.b.c' }))).toBe('token_malformed');
    expect(await codeOf(s.auth.optional({ authorization: 'Bearer ' }))).toBe('invalid_request');
    expect(await codeOf(s.auth.optional({ authorization: 'Bearer bad"token' }))).toBe('invalid_request');
  });

  it('extractCredential: otherSchemes ignore vs reject (the default)', () => {
    expect(codeOf(() => extractCredential({ authorization: 'Digest x' }))).toBe('invalid_request');
    expect(extractCredential({ authorization: 'Digest x' }, { otherSchemes: 'ignore' })).toBeUndefined();
    expect(extractCredential({ authorization: 'bearer t.o.k' }, { otherSchemes: 'ignore' })).toEqual({
      type: 'bearer',
      token: 't.o.k',
    });
    expect(extractCredential({ authorization: 'BEARER t.o.k' })).toEqual({ type: 'bearer', token: 't.o.k' });
    // A Bearer header without a usable token is malformed, also where other schemes are ignored.
    for (const authorization of ['Bearer', 'bearer', 'Bearer ', 'Bearer a b'])
      expect(codeOf(() => extractCredential({ authorization }, { otherSchemes: 'ignore' }))).toBe(
        'invalid_request',
      );
    expect(extractCredential({ authorization: 'Bearerx t.o.k' }, { otherSchemes: 'ignore' })).toBeUndefined();
    expect(codeOf(() => extractCredential({ authorization: ' t.o.k' }, { otherSchemes: 'ignore' }))).toBe(
      'invalid_request',
    );
  });
});

describe('UserDirectory roles and claims in login tokens', () => {
  async function keyward(users: UserDirectory) {
    const kw: Keyward = await createKeyward({
      store: createMemoryStore(),
      masterKey: MasterKey.generate().exportText(),
      logger: false,
      audit: false,
    });
    cores.push(kw);
    const auth = createAuthenticator(kw);
    const routes = keywardRoutes(kw, { users });
    const route = (name: string) => {
      const found = routes.find((r) => r.name === name);
      if (!found) throw new Error(name);
      return found;
    };
    const login = () =>
      handleRoute(route('login'), auth, {
        headers: { 'content-type': 'application/json' },
        params: {},
        body: { username: 'alice', password: 'pw' },
      });
    return { kw, auth, route, login };
  }
  const directory = (extra: Record<string, unknown>): UserDirectory => ({
    async verify(username, password) {
      return username === 'alice' && password === 'pw'
        ? { sub: 'alice', scopes: ['read'], ...extra }
        : undefined;
    },
  });

  it('roles and claims ride in the token, survive refresh and show in the principal', async () => {
    const s = await keyward(directory({ roles: ['support'], claims: { tenant: 't1', plan: { tier: 2 } } }));
    const answer = await s.login();
    expect(answer.status).toBe(200);
    const pair = answer.body as { access_token: string; refresh_token: string };
    const p = await s.auth.authenticate({ authorization: `Bearer ${pair.access_token}` });
    expect(p.roles).toEqual(['support']);
    expect(p.claims).toMatchObject({ tenant: 't1', plan: { tier: 2 } });
    expect(p.scopes).toEqual(['read']);
    const refreshed = await handleRoute(s.route('refresh'), s.auth, {
      headers: { 'content-type': 'application/json' },
      params: {},
      body: { refresh_token: pair.refresh_token },
    });
    expect(refreshed.status).toBe(200);
    const next = await s.auth.authenticate({
      authorization: `Bearer ${(refreshed.body as { access_token: string }).access_token}`,
    });
    expect(next.roles).toEqual(['support']);
    expect(next.claims).toMatchObject({ tenant: 't1', plan: { tier: 2 } });
  });

  it('reserved claims and bad roles are user_claims_invalid (a 500, not a client error), nothing is issued', async () => {
    const cases: Array<Record<string, unknown>> = [
      { claims: { sub: 'root' } },
      { claims: { scope: 'admin' } },
      { claims: { roles: ['admin'] } },
      { claims: { kw_snb: 1 } },
      { claims: { iss: 'https://evil' } },
      { claims: { client_id: 'x' } },
      { roles: 'admin' },
      { roles: [''] },
      { claims: { big: 'x'.repeat(10_000) } },
    ];
    for (const extra of cases) {
      const s = await keyward(directory(extra));
      const issued: unknown[] = [];
      const original = s.kw.tokens.issue.bind(s.kw.tokens);
      s.kw.tokens.issue = async (input) => {
        const pair = await original(input);
        issued.push(pair);
        return pair;
      };
      const answer = await s.login();
      expect(answer.status, JSON.stringify(extra)).toBe(500);
      expect(answer.body).toEqual({ error: 'internal_error', message: 'internal error' });
      expect(issued).toEqual([]);
    }
    const s = await keyward(directory({ claims: { sub: 'root' } }));
    const route = s.route('login');
    const err = await route
      .handle({ headers: {}, params: {}, body: { username: 'alice', password: 'pw' } }, undefined)
      .catch((e: unknown) => e);
    expect(
      codeOf(() => {
        throw err;
      }),
    ).toBe('user_claims_invalid');
    expect(String((err as Error).message)).toMatch(/reserved claims.*sub/);
  });

  it('staticUsers still logs in without roles or claims', async () => {
    const s = await keyward(staticUsers('alice:pw:read'));
    const answer = await s.login();
    expect(answer.status).toBe(200);
    const p = await s.auth.authenticate({
      authorization: `Bearer ${(answer.body as { access_token: string }).access_token}`,
    });
    expect(p.roles).toEqual([]);
  });
});

describe('the options with a trusted external issuer', () => {
  it('onAuthenticated maps the IdP principal; getToken tokens reach the issuer verifier', async () => {
    const idp = await startTestIdp();
    cores.push({ close: () => idp.close() });
    const kw = await createKeyward({
      store: createMemoryStore(),
      masterKey: MasterKey.generate().exportText(),
      logger: false,
      audit: false,
      scheduler: false,
      trustedIssuers: [{ issuer: idp.issuer, discovery: true, allowInsecure: true, audience: idp.audience }],
    });
    cores.push(kw);
    const seen: Array<string | undefined> = [];
    const auth = createAuthenticator(kw, {
      getToken: (headers) => headers['x-idp-token'] as string | undefined,
      onAuthenticated: (p) => {
        seen.push(p.issuer);
        if (p.sub === 'ext-disabled') throw new KeywardError('token_revoked', 'user disabled');
        return { ...p, roles: ['from-hook'] };
      },
    });
    const key = await idp.addKey();
    const p = await auth.authenticate({ 'x-idp-token': await key.sign({ sub: 'ext-1', scp: ['read'] }) });
    expect(p).toMatchObject({ sub: 'ext-1', issuer: idp.issuer, roles: ['from-hook'] });
    expect(
      await codeOf(
        auth.authenticate({ 'x-idp-token': await key.sign({ sub: 'ext-disabled', scp: ['read'] }) }),
      ),
    ).toBe('token_revoked');
    expect(seen).toEqual([idp.issuer, idp.issuer]);
  });
});
