import { createKeyward, createMemoryStore, type Keyward, MasterKey } from '@keyward/core';
import { type RouteSet, staticUsers, type UserDirectory } from '@keyward/core/http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/** An app of the adapter under test, listening, with keyward's routes and {@link PROBE_ROUTE_SET}. */
export interface RouteSetApp {
  /** Base URL of the listening server. */
  url: string;
  close(): void | Promise<void>;
}

/** What {@link describeRouteSetServed} asks the adapter to mount: the route-table options to pass. */
export interface RouteSetAppOptions {
  users: UserDirectory;
  include: string[];
  routeSets: RouteSet[];
  prefix?: string;
}

/** The HTML page of {@link PROBE_ROUTE_SET}, and the headers it must arrive with, unchanged. */
export const PROBE_PAGE = '<!doctype html><title>probe</title><p>served as is</p>';
export const PROBE_PAGE_HEADERS = Object.freeze({
  'content-type': 'text/html; charset=utf-8',
  'content-security-policy': "default-src 'none'; style-src 'self'; frame-ancestors 'none'",
  'cache-control': 'no-cache',
});

/**
 * A route set (group `probe`) as a package outside core would add one (the console): a public HTML
 * page with its own headers, and an authenticated JSON route with a path parameter and a body.
 */
export const PROBE_ROUTE_SET: RouteSet = {
  group: 'probe',
  routes: () => [
    {
      name: 'probePage',
      method: 'GET',
      path: '/probe',
      auth: 'none',
      handle: async () => ({ status: 200, headers: { ...PROBE_PAGE_HEADERS }, body: PROBE_PAGE }),
    },
    {
      name: 'probeEcho',
      method: 'POST',
      path: '/probe/echo/:id',
      auth: { scopes: ['read'] },
      handle: async (request, principal) => ({
        status: 201,
        headers: { 'cache-control': 'no-store', 'x-probe': 'yes' },
        body: { id: request.params.id, body: request.body, sub: principal?.sub },
      }),
    },
  ],
};

/**
 * A route added to core's table through `routeSets` is served by the adapter with no adapter code
 * of its own (issue #13), through a real listening server: `start(kw, options)` passes the
 * route-table options to the adapter's routes and listens. Checks the HTML body and its headers
 * (`content-type`, `content-security-policy`) arrive as the route wrote them, the JSON route
 * authenticates, reads its parameter and body, and the set is off unless `include` names it.
 *
 * @example
 * ```ts
 * describeRouteSetServed('Express', async (kw, options) => { ...; return { url, close } })
 * ```
 */
export function describeRouteSetServed(
  name: string,
  start: (kw: Keyward, options: RouteSetAppOptions) => Promise<RouteSetApp>,
): void {
  describe(`${name}: a route set from outside core`, () => {
    let kw: Keyward;
    const apps: RouteSetApp[] = [];
    const users = staticUsers('alice:alice-password:read');
    beforeAll(async () => {
      kw = await createKeyward({
        store: createMemoryStore(),
        masterKey: MasterKey.generate().exportText(),
        logger: false,
        audit: false,
        scheduler: false,
      });
    });
    afterAll(async () => {
      for (const app of apps.splice(0)) await app.close();
      await kw.close();
    });
    const launch = async (options: Omit<RouteSetAppOptions, 'users' | 'routeSets'>) => {
      const app = await start(kw, { users, routeSets: [PROBE_ROUTE_SET], ...options });
      apps.push(app);
      return app.url;
    };

    it('serves its HTML page with the headers it set, and its authenticated JSON route', async () => {
      const url = await launch({ include: ['auth', 'probe'] });
      const page = await fetch(`${url}/probe`);
      expect(page.status).toBe(200);
      expect(await page.text()).toBe(PROBE_PAGE);
      for (const [header, value] of Object.entries(PROBE_PAGE_HEADERS))
        expect(page.headers.get(header), header).toBe(value);

      const echo = (headers: Record<string, string>) =>
        fetch(`${url}/probe/echo/42`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', ...headers },
          body: JSON.stringify({ hello: 'world' }),
        });
      const anonymous = await echo({});
      expect(anonymous.status).toBe(401);
      expect(anonymous.headers.get('www-authenticate')).toBe('Bearer realm="keyward"');
      const { access_token } = (await kw.tokens.issue({ sub: 'alice', scopes: ['read'] })) as {
        access_token: string;
      };
      const answer = await echo({ authorization: `Bearer ${access_token}` });
      expect(answer.status).toBe(201);
      expect(answer.headers.get('x-probe')).toBe('yes');
      expect(answer.headers.get('content-type')).toMatch(/^application\/json/);
      expect(await answer.json()).toEqual({ id: '42', body: { hello: 'world' }, sub: 'alice' });
    });

    it('is served under the prefix like core routes, and not at all unless include names it', async () => {
      const prefixed = await launch({ include: ['probe', 'jwks'], prefix: '/api' });
      expect((await fetch(`${prefixed}/api/probe`)).status).toBe(200);
      expect((await fetch(`${prefixed}/probe`)).status).toBe(404);
      const off = await launch({ include: ['health'] });
      expect((await fetch(`${off}/probe`)).status).toBe(404);
      expect((await fetch(`${off}/health/live`)).status).toBe(200);
    });
  });
}
