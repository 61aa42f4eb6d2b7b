import { createKeyward, createMemoryStore, type Keyward, MasterKey } from '@keyward/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/** An app of the adapter under test, listening, with keyward's middleware in cookie mode. */
export interface CookieModeApp {
  /** Base URL of the listening server. */
  url: string;
  close(): void | Promise<void>;
}

/**
 * The cookie options every {@link describeCookieModeAppRoutes} app registers keyward with: the
 * `kw_at` cookie, and one allowed cross-origin caller.
 */
export const COOKIE_MODE_TEST_OPTIONS = Object.freeze({
  cookie: 'kw_at',
  allowedOrigins: ['https://app.example.com'],
});

/**
 * Cookie mode on an app's OWN routes behind an adapter's middleware (issue #11): the same-origin
 * rule for state changes, reads from anywhere, and the `Authorization` header winning over the
 * cookie. `start(kw)` builds and starts the app with {@link COOKIE_MODE_TEST_OPTIONS} and these
 * routes: `POST /orders` (authenticated, answers `{by: sub}`), `DELETE /orders/:id` (scope `write`,
 * 204), `GET /orders` (optional auth, answers `{by: sub}`), with the adapter's error handling.
 *
 * @example
 * ```ts
 * describeCookieModeAppRoutes('Express', async (kw) => { ...; return { url, close } })
 * ```
 */
export function describeCookieModeAppRoutes(
  name: string,
  start: (kw: Keyward) => Promise<CookieModeApp>,
): void {
  describe(`cookie mode on the app’s own ${name} routes`, () => {
    let kw: Keyward;
    let app: CookieModeApp;
    beforeAll(async () => {
      kw = await createKeyward({
        store: createMemoryStore(),
        masterKey: MasterKey.generate().exportText(),
        logger: false,
        audit: false,
      });
      app = await start(kw);
    });
    afterAll(async () => {
      await app?.close();
      await kw?.close();
    });

    const cookie = () => `kw_at=${kw.jwt.sign({ sub: 'alice', scope: 'read write' })}`;
    const crossSite = { 'sec-fetch-site': 'cross-site', origin: 'https://evil.example' };

    it('regression #11: the middleware on a POST / DELETE route refuses a cross-site cookie with 403 csrf_rejected', async () => {
      for (const [method, path] of [
        ['POST', '/orders'],
        ['DELETE', '/orders/1'],
      ] as const) {
        const r = await fetch(app.url + path, { method, headers: { cookie: cookie(), ...crossSite } });
        expect(r.status).toBe(403);
        expect(((await r.json()) as { error: string }).error).toBe('csrf_rejected');
        expect(r.headers.get('www-authenticate')).toBeNull();
      }
    });

    it('passes same-origin and allowed-origin writes, cross-site reads and header credentials', async () => {
      const same = await fetch(`${app.url}/orders`, {
        method: 'POST',
        headers: { cookie: cookie(), 'sec-fetch-site': 'same-origin' },
      });
      expect(await same.json()).toEqual({ by: 'alice' });
      const allowed = await fetch(`${app.url}/orders/1`, {
        method: 'DELETE',
        headers: { cookie: cookie(), origin: 'https://app.example.com' },
      });
      expect(allowed.status).toBe(204);
      const read = await fetch(`${app.url}/orders`, { headers: { cookie: cookie(), ...crossSite } });
      expect(await read.json()).toEqual({ by: 'alice' });
      const header = await fetch(`${app.url}/orders`, {
        method: 'POST',
        headers: { authorization: `Bearer ${kw.jwt.sign({ sub: 'bob' })}`, cookie: cookie(), ...crossSite },
      });
      expect(await header.json()).toEqual({ by: 'bob' });
    });
  });
}
