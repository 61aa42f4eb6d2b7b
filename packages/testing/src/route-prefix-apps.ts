import { createKeyward, createMemoryStore, type Keyward, MasterKey } from '@keyward/core';
import { staticUsers, type UserDirectory } from '@keyward/core/http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/** An app of the adapter under test, listening, with keyward's routes mounted the documented way. */
export interface PrefixedApp {
  /** Base URL of the listening server. */
  url: string;
  close(): void | Promise<void>;
}

/** What {@link describePrefixedRoutes} asks the adapter to mount: the route-table options to pass. */
export interface PrefixedAppOptions {
  users: UserDirectory;
  prefix: string;
  wellKnown?: 'root' | 'prefixed';
}

/**
 * keyward's routes under a prefix (issue #13), through a real listening server: `start(kw, options)`
 * mounts the routes the adapter's documented way (at the app's root, passing `prefix`) and listens.
 * Checks that the routes answer under `/api`, the JWKS and discovery at the root (or under the
 * prefix with `wellKnown: 'prefixed'`), the discovery documents report the prefixed endpoints, and
 * nothing answers at a doubled or a missing prefix.
 *
 * @example
 * ```ts
 * describePrefixedRoutes('Express', async (kw, options) => { ...; return { url, close } })
 * ```
 */
export function describePrefixedRoutes(
  name: string,
  start: (kw: Keyward, options: PrefixedAppOptions) => Promise<PrefixedApp>,
): void {
  describe(`${name}: routes under a prefix`, () => {
    let kw: Keyward;
    const apps: PrefixedApp[] = [];
    const users = staticUsers('alice:alice-password:read');
    beforeAll(async () => {
      kw = await createKeyward({
        store: createMemoryStore(),
        masterKey: MasterKey.generate().exportText(),
        logger: false,
        audit: false,
        scheduler: false,
        issuer: 'https://auth.example.com',
      });
    });
    afterAll(async () => {
      for (const app of apps.splice(0)) await app.close();
      await kw.close();
    });
    const launch = async (options: Omit<PrefixedAppOptions, 'users'>) => {
      const app = await start(kw, { users, ...options });
      apps.push(app);
      return app;
    };
    const login = (url: string, path: string) =>
      fetch(`${url}${path}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ username: 'alice', password: 'alice-password' }),
      });

    it('serves /api/auth/login and /api/me, the JWKS and discovery at the root, nothing doubled', async () => {
      const { url } = await launch({ prefix: '/api' });
      const ok = await login(url, '/api/auth/login');
      expect(ok.status).toBe(200);
      const { access_token } = (await ok.json()) as { access_token: string };
      const me = await fetch(`${url}/api/me`, { headers: { authorization: `Bearer ${access_token}` } });
      expect(me.status).toBe(200);
      expect(await me.json()).toMatchObject({ sub: 'alice' });
      expect((await fetch(`${url}/.well-known/jwks.json`)).status).toBe(200);
      const discovery = await fetch(`${url}/.well-known/openid-configuration`);
      expect(discovery.status).toBe(200);
      expect(await discovery.json()).toMatchObject({
        jwks_uri: 'https://auth.example.com/.well-known/jwks.json',
        token_endpoint: 'https://auth.example.com/api/auth/refresh',
        introspection_endpoint: 'https://auth.example.com/api/oauth/introspect',
        revocation_endpoint: 'https://auth.example.com/api/oauth/revoke',
      });
      for (const path of ['/auth/login', '/api/api/auth/login', '/api/auth/auth/login']) {
        expect((await login(url, path)).status, path).toBe(404);
      }
      for (const path of [
        '/me',
        '/api/.well-known/jwks.json',
        '/api/api/me',
        '/api/api/.well-known/jwks.json',
      ]) {
        expect((await fetch(`${url}${path}`)).status, path).toBe(404);
      }
    });

    it("moves the /.well-known routes under the prefix with wellKnown: 'prefixed'", async () => {
      const { url } = await launch({ prefix: '/api', wellKnown: 'prefixed' });
      expect((await fetch(`${url}/api/.well-known/jwks.json`)).status).toBe(200);
      expect((await fetch(`${url}/.well-known/jwks.json`)).status).toBe(404);
      const discovery = await fetch(`${url}/api/.well-known/oauth-authorization-server`);
      expect(await discovery.json()).toMatchObject({
        jwks_uri: 'https://auth.example.com/api/.well-known/jwks.json',
        token_endpoint: 'https://auth.example.com/api/auth/refresh',
      });
      expect((await login(url, '/api/auth/login')).status).toBe(200);
    });
  });
}
