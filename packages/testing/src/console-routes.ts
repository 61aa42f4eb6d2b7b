import { createKeyward, createMemoryStore, type Keyward, MasterKey } from '@keyward/core';
import type { KeywardRoutesOptions, RouteSet } from '@keyward/core/http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/** A running app of one adapter with the given route-table options. */
export interface ConsoleApp {
  url: string;
  close(): Promise<void>;
}

/** Starts an app of the adapter under test on `kw`, its keyward routes built with `options`. */
export type ConsoleAppFactory = (
  kw: Keyward,
  options: Pick<KeywardRoutesOptions, 'include' | 'routeSets'>,
) => Promise<ConsoleApp>;

/**
 * The console's route set through one adapter, over real HTTP: the page, its script and its
 * stylesheet with their types and the security headers (CSP without inline, `X-Frame-Options:
 * DENY`, `nosniff`), a 304 on a matching `If-None-Match`, and nothing served unless `include`
 * names `console`. `consoleRoutes` is `@keyward/console`'s (passed in: this package does not
 * depend on it).
 *
 * @example
 * ```ts
 * describeConsoleRouteSet('express', consoleRoutes(), async (kw, options) => { … return { url, close } })
 * ```
 */
export function describeConsoleRouteSet(name: string, routeSet: RouteSet, start: ConsoleAppFactory): void {
  describe(`console route set on ${name}`, () => {
    let kw: Keyward;
    let on: ConsoleApp;
    let off: ConsoleApp;
    const groups = ['auth', 'me', 'admin', 'health', 'console'] as const;
    beforeAll(async () => {
      kw = await createKeyward({
        store: createMemoryStore(),
        masterKey: MasterKey.generate().exportText(),
        logger: false,
        audit: { sinks: [] },
        scheduler: false,
        syncIntervalMs: 60_000,
      });
      on = await start(kw, { include: [...groups], routeSets: [routeSet] });
      off = await start(kw, { routeSets: [routeSet] });
    });
    afterAll(async () => {
      await on?.close();
      await off?.close();
      await kw?.close();
    });

    it('serves the page, its script and its stylesheet with their types and the security headers', async () => {
      const wanted: Array<[string, RegExp]> = [
        ['/admin/console', /^text\/html/],
        ['/admin/console/app.js', /^text\/javascript/],
        ['/admin/console/app.css', /^text\/css/],
      ];
      for (const [path, type] of wanted) {
        const res = await fetch(`${on.url}${path}`);
        const body = await res.text();
        expect(res.status, path).toBe(200);
        expect(res.headers.get('content-type'), path).toMatch(type);
        const csp = res.headers.get('content-security-policy') ?? '';
        expect(csp, path).toContain("script-src 'self'");
        expect(csp, path).toContain("style-src 'self'");
        expect(csp, path).toContain("frame-ancestors 'none'");
        expect(csp, path).not.toContain('unsafe-inline');
        expect(res.headers.get('x-frame-options'), path).toBe('DENY');
        expect(res.headers.get('x-content-type-options'), path).toBe('nosniff');
        expect(body.length, path).toBeGreaterThan(100);
        const etag = res.headers.get('etag');
        expect(etag, path).toBeTruthy();
        const again = await fetch(`${on.url}${path}`, { headers: { 'if-none-match': etag as string } });
        expect(again.status, path).toBe(304);
      }
      const page = await (await fetch(`${on.url}/admin/console`)).text();
      // No inline script or style: the page only links its two assets.
      expect(page).toMatch(/<script type="module" src="\/admin\/console\/app\.js"><\/script>/);
      expect(page).not.toMatch(/<script>|<style|style=/);
    });

    it('passes the query string to the admin read routes the console calls (a repeated parameter is a 400)', async () => {
      const { access_token: token } = await kw.tokens.issue({ sub: 'ops', scopes: ['admin'] });
      const get = async (path: string) => {
        const res = await fetch(`${on.url}${path}`, { headers: { authorization: `Bearer ${token}` } });
        return { status: res.status, body: (await res.json()) as Record<string, unknown> };
      };
      expect((await get('/admin/keys/plan?horizon=7d')).body.horizonDays).toBe(7);
      expect((await get('/admin/keys/plan')).body.horizonDays).toBe(120);
      expect((await get('/admin/keys/plan?horizon=soon')).status).toBe(400);
      const one = await get('/admin/audit?limit=1&type=token.issued');
      expect(one.status).toBe(200);
      expect(one.body.events).toEqual([expect.objectContaining({ type: 'token.issued' })]);
      expect((await get('/admin/audit?type=token.issued&type=key.revoked')).status).toBe(400);
      expect((await get('/admin/instances')).status).toBe(200);
    });

    it('is off unless include names console: 404 for the page and its assets, the API still served', async () => {
      for (const path of ['/admin/console', '/admin/console/app.js', '/admin/console/app.css']) {
        const res = await fetch(`${off.url}${path}`);
        expect(res.status, path).toBe(404);
        // Express's own 404 page has a CSP too, but not the console's.
        expect(res.headers.get('content-security-policy') ?? '').not.toContain("script-src 'self'");
        await res.arrayBuffer();
      }
      const live = await fetch(`${off.url}/health/live`);
      expect(live.status).toBe(200);
      await live.arrayBuffer();
    });
  });
}
