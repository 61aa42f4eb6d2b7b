// keyward issue #13 ("authentication options"): what users of @fastify/jwt, express-jwt,
// passport-jwt, @nestjs/jwt and hono/jwt configure, the same in every adapter, through a real
// listening server of the adapter under test.
import { createKeyward, createMemoryStore, type Keyward, KeywardError, MasterKey } from '@keyward/core';
import type { Principal, UserDirectory } from '@keyward/core/http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/** An app of the adapter under test, listening. */
export interface AuthOptionsApp {
  /** Base URL of the listening server. */
  url: string;
  close(): void | Promise<void>;
}

/** The realm every {@link describeAuthOptionsContract} app is registered with. */
export const AUTH_OPTIONS_REALM = 'orders-api';

/** The header the `extractor` apps read the token from, through the framework's own request. */
export const AUTH_OPTIONS_TOKEN_HEADER = 'x-access-token';

/**
 * The `onAuthenticated` of every app (each adapter wraps it in its own signature): refuses `sub`
 * `disabled` with `token_revoked` ("user disabled"), throws a plain error for `crash` (a server
 * error, whose message must never reach the client), and adds the role `from-hook` otherwise.
 */
export function authOptionsHook(principal: Principal): Principal {
  if (principal.sub === 'disabled') throw new KeywardError('token_revoked', 'user disabled');
  if (principal.sub === 'crash') throw new Error('database down: postgres://app:s3cret@db');
  return { ...principal, roles: [...principal.roles, 'from-hook'] };
}

/**
 * The users of every app's contract routes: `alice` (roles `support`, claim `tenant: t1`),
 * `disabled` and `crash` (refused or crashed by {@link authOptionsHook}), all with password `pw`.
 */
export const AUTH_OPTIONS_USERS: UserDirectory = {
  async verify(username, password) {
    if (password !== 'pw' || !['alice', 'disabled', 'crash'].includes(username)) return undefined;
    return username === 'alice'
      ? { sub: 'alice', scopes: ['read'], roles: ['support'], claims: { tenant: 't1' } }
      : { sub: username, scopes: ['read'] };
  },
};

/**
 * How the adapter builds an app: `default` without `getToken`, `extractor` with a `getToken` that
 * reads {@link AUTH_OPTIONS_TOKEN_HEADER} from the framework's request (Express `req`, Fastify
 * `request`, Hono `c`, NestJS the HTTP request) — never from the headers keyward is given.
 */
export type AuthOptionsMode = 'default' | 'extractor';

/**
 * The authentication options on an adapter (issue #13). `start(kw, mode)` builds and starts an
 * app with keyward registered with `realm: AUTH_OPTIONS_REALM`, `onAuthenticated` calling
 * {@link authOptionsHook}, the principal under the adapter's renamed property (Express
 * `requestProperty`, Fastify `decoratorName`, Hono `variable`: `user`; NestJS `request.user`), in
 * `extractor` mode a `getToken` (see {@link AuthOptionsMode}), and these routes:
 * - `GET /whoami`: authentication required; answers `{sub, roles, tenant}` read from the renamed
 *   property (`tenant` from `claims.tenant`, `null` when absent);
 * - `GET /maybe`: optional authentication; answers `{sub}` (`null` anonymous);
 * - `GET /admin-only`: requires scope `admin`;
 * - keyward's contract routes (login, refresh, `/me`…) with `users: AUTH_OPTIONS_USERS`;
 * - a last error handler answering anything that is not keyward's with 500 `{error: 'internal_error'}`.
 *
 * @example
 * ```ts
 * describeAuthOptionsContract('Express', async (kw, mode) => { ...; return { url, close } })
 * ```
 */
export function describeAuthOptionsContract(
  name: string,
  start: (kw: Keyward, mode: AuthOptionsMode) => Promise<AuthOptionsApp>,
): void {
  describe(`authentication options (issue #13): ${name}`, () => {
    let kw: Keyward;
    let plain: AuthOptionsApp;
    let extractor: AuthOptionsApp;
    beforeAll(async () => {
      kw = await createKeyward({
        store: createMemoryStore(),
        masterKey: MasterKey.generate().exportText(),
        logger: false,
        audit: false,
      });
      plain = await start(kw, 'default');
      extractor = await start(kw, 'extractor');
    });
    afterAll(async () => {
      await plain?.close();
      await extractor?.close();
      await kw?.close();
    });

    const get = async (app: AuthOptionsApp, path: string, headers: Record<string, string> = {}) => {
      const res = await fetch(app.url + path, { headers });
      const text = await res.text();
      let json: unknown;
      try {
        json = text ? JSON.parse(text) : undefined;
      } catch {
        json = undefined;
      }
      // biome-ignore lint/suspicious/noExplicitAny: test assertions read arbitrary JSON
      return { status: res.status, headers: res.headers, text, json: json as any };
    };
    const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
    const login = async (app: AuthOptionsApp, username: string) => {
      const res = await fetch(`${app.url}/auth/login`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ username, password: 'pw' }),
      });
      expect(res.status).toBe(200);
      return (await res.json()) as { access_token: string; refresh_token: string };
    };
    const challenge = (r: { headers: Headers }) => r.headers.get('www-authenticate') ?? '';

    it("login mints the directory's roles and claims; onAuthenticated adds its role; both survive refresh", async () => {
      const pair = await login(plain, 'alice');
      const who = await get(plain, '/whoami', bearer(pair.access_token));
      expect(who.status, who.text).toBe(200);
      expect(who.json).toEqual({ sub: 'alice', roles: ['support', 'from-hook'], tenant: 't1' });
      const res = await fetch(`${plain.url}/auth/refresh`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ refresh_token: pair.refresh_token }),
      });
      expect(res.status).toBe(200);
      const next = (await res.json()) as { access_token: string };
      const again = await get(plain, '/whoami', bearer(next.access_token));
      expect(again.json).toEqual({ sub: 'alice', roles: ['support', 'from-hook'], tenant: 't1' });
    });

    it('every challenge names the realm: app routes, scope checks and the contract routes', async () => {
      const missing = await get(plain, '/whoami');
      expect(missing.status).toBe(401);
      expect(challenge(missing)).toBe(`Bearer realm="${AUTH_OPTIONS_REALM}"`);
      const forged = await get(plain, '/whoami', bearer('a.b.c'));
      expect(forged.status).toBe(401);
      expect(challenge(forged)).toMatch(
        new RegExp(`^Bearer realm="${AUTH_OPTIONS_REALM}", error="invalid_token"`),
      );
      const { access_token } = await login(plain, 'alice');
      const scope = await get(plain, '/admin-only', bearer(access_token));
      expect(scope.status).toBe(403);
      expect(challenge(scope)).toMatch(
        new RegExp(`^Bearer realm="${AUTH_OPTIONS_REALM}", error="insufficient_scope"`),
      );
      const me = await get(plain, '/me');
      expect(me.status).toBe(401);
      expect(challenge(me)).toBe(`Bearer realm="${AUTH_OPTIONS_REALM}"`);
    });

    it('optional authentication ignores a Basic header; required authentication refuses it; Bearer garbage is refused', async () => {
      const basic = { authorization: 'Basic YWxpY2U6cHc=' };
      const maybe = await get(plain, '/maybe', basic);
      expect(maybe.status, maybe.text).toBe(200);
      expect(maybe.json).toEqual({ sub: null });
      const required = await get(plain, '/whoami', basic);
      expect(required.status).toBe(400);
      expect(required.json?.error).toBe('invalid_request');
      const garbage = await get(plain, '/maybe', bearer('a.b.c'));
      expect(garbage.status).toBe(401);
      const { access_token } = await login(plain, 'alice');
      expect((await get(plain, '/maybe', bearer(access_token))).json).toEqual({ sub: 'alice' });
    });

    it('onAuthenticated refuses with its KeywardError (app and contract routes); a crash is a 500 without its message', async () => {
      const disabled = (await login(plain, 'disabled')).access_token;
      for (const path of ['/whoami', '/me', '/maybe']) {
        const r = await get(plain, path, bearer(disabled));
        expect(r.status, `${path}: ${r.text}`).toBe(401);
        expect(r.json?.error).toBe('token_revoked');
        expect(challenge(r)).toMatch(
          new RegExp(`^Bearer realm="${AUTH_OPTIONS_REALM}", error="invalid_token"`),
        );
      }
      const crash = (await login(plain, 'crash')).access_token;
      for (const path of ['/whoami', '/me']) {
        const r = await get(plain, path, bearer(crash));
        expect(r.status, `${path}: ${r.text}`).toBe(500);
        expect(r.text).not.toMatch(/postgres|s3cret|database down/);
      }
      expect((await get(plain, '/me', bearer(crash))).json).toEqual({
        error: 'internal_error',
        message: 'internal error',
      });
    });

    it('getToken reads the token from the framework request, for app and contract routes alike', async () => {
      const { access_token } = await login(extractor, 'alice');
      const header = { [AUTH_OPTIONS_TOKEN_HEADER]: access_token };
      const who = await get(extractor, '/whoami', header);
      expect(who.status, who.text).toBe(200);
      expect(who.json).toEqual({ sub: 'alice', roles: ['support', 'from-hook'], tenant: 't1' });
      const me = await get(extractor, '/me', header);
      expect(me.status, me.text).toBe(200);
      expect(me.json?.sub).toBe('alice');
      // The Authorization header is no longer keyward's credential.
      const viaHeader = await get(extractor, '/whoami', bearer(access_token));
      expect(viaHeader.status).toBe(401);
      expect(viaHeader.json?.error).toBe('missing_credentials');
      expect((await get(extractor, '/maybe', bearer(access_token))).json).toEqual({ sub: null });
      // A token from getToken is verified like a bearer token: same errors, same hook.
      const forged = await get(extractor, '/whoami', { [AUTH_OPTIONS_TOKEN_HEADER]: 'a.b.c' });
      expect(forged.status).toBe(401);
      expect(challenge(forged)).toMatch(
        new RegExp(`^Bearer realm="${AUTH_OPTIONS_REALM}", error="invalid_token"`),
      );
      const disabled = (await login(extractor, 'disabled')).access_token;
      const refused = await get(extractor, '/me', { [AUTH_OPTIONS_TOKEN_HEADER]: disabled });
      expect(refused.json?.error).toBe('token_revoked');
    });
  });
}
