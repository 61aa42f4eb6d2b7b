import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AdapterContractTarget, RunningApp } from './adapter-contract.js';

/** The cookie of the cookie-mode app, and the one origin its allow-list holds. */
const COOKIE = 'kw_at';
const ALLOWED = 'https://app.example.com';
const CROSS_SITE = { 'sec-fetch-site': 'cross-site', origin: 'https://evil.example' };
const SAME_ORIGIN = { 'sec-fetch-site': 'same-origin' };

interface Answer {
  status: number;
  headers: Headers;
  text: string;
  // biome-ignore lint/suspicious/noExplicitAny: test assertions read arbitrary JSON
  json: any;
}

async function send(
  base: string,
  method: string,
  path: string,
  o: { headers?: Record<string, string>; json?: unknown; body?: string } = {},
): Promise<Answer> {
  const headers: Record<string, string> = { ...o.headers };
  const body = o.json !== undefined ? JSON.stringify(o.json) : o.body;
  if (o.json !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(base + path, { method, headers, ...(body !== undefined ? { body } : {}) });
  const text = await res.text();
  let json: unknown;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    json = undefined;
  }
  return { status: res.status, headers: res.headers, text, json };
}

function expectCsrfRejected(answer: Answer): void {
  expect(answer.status, answer.text).toBe(403);
  expect(answer.json?.error).toBe('csrf_rejected');
  expect(typeof answer.json?.message).toBe('string');
  // The credential is fine: no bearer challenge for the client to act on.
  expect(answer.headers.get('www-authenticate')).toBeNull();
}

/**
 * Cookie mode of the HTTP contract (docs/contract.md "Cookie mode"): starts a second app with
 * `KEYWARD_COOKIE` and `KEYWARD_ALLOWED_ORIGINS` and checks the same-origin rule for
 * state-changing requests, the header's precedence over the cookie, the session cookie of login
 * and logout, and that a bodyless POST is never read as `{}`. Called by `describeAdapterContract`.
 */
export function describeCookieModeContract(
  name: string,
  target: AdapterContractTarget,
  envFor: (extra?: Record<string, string>) => Record<string, string>,
): void {
  describe(`adapter contract, cookie mode: ${name}`, () => {
    let app: RunningApp;
    const req = (method: string, path: string, o?: Parameters<typeof send>[3]) =>
      send(app.url, method, path, o);
    const login = async (user: 'alice' | 'admin') => {
      const r = await req('POST', '/auth/login', { json: { username: user, password: `${user}-password` } });
      expect(r.status, r.text).toBe(200);
      return r;
    };
    const cookieOf = (access: string) => `${COOKIE}=${access}`;
    beforeAll(async () => {
      app = await target.start(envFor({ KEYWARD_COOKIE: COOKIE, KEYWARD_ALLOWED_ORIGINS: ALLOWED }));
    });
    afterAll(async () => app?.stop());

    it('login sets the access token as an HttpOnly, Secure, SameSite=Strict cookie for Path=/', async () => {
      const r = await login('alice');
      const setCookie = r.headers.get('set-cookie') ?? '';
      expect(setCookie.startsWith(`${COOKIE}=${r.json.access_token};`), setCookie).toBe(true);
      const attributes = setCookie.split(';').map((a) => a.trim().toLowerCase());
      expect(attributes).toEqual(
        expect.arrayContaining([
          'httponly',
          'secure',
          'samesite=strict',
          'path=/',
          `max-age=${r.json.expires_in}`,
        ]),
      );
      // The cookie alone authenticates.
      const me = await req('GET', '/me', { headers: { cookie: cookieOf(r.json.access_token) } });
      expect(me.status, me.text).toBe(200);
      expect(me.json).toEqual({ sub: 'alice', scopes: ['read'], auth: 'jwt' });
    });

    it('regression #11: a cross-site bodyless POST /admin/keys/rotate with only the admin cookie is csrf_rejected and rotates nothing', async () => {
      const admin = (await login('admin')).json.access_token as string;
      const keys = async () =>
        (await req('GET', '/admin/keys', { headers: { authorization: `Bearer ${admin}` } })).json;
      const before = await keys();
      expectCsrfRejected(
        await req('POST', '/admin/keys/rotate', { headers: { cookie: cookieOf(admin), ...CROSS_SITE } }),
      );
      expectCsrfRejected(
        await req('POST', '/admin/keys/rotate', {
          headers: { cookie: cookieOf(admin), ...CROSS_SITE },
          json: {},
        }),
      );
      // Neither fetch metadata nor an Origin (an old browser, a form from a data: page): refused too.
      expectCsrfRejected(
        await req('POST', '/admin/keys/rotate', { headers: { cookie: cookieOf(admin) }, json: {} }),
      );
      expect(await keys()).toEqual(before);
    });

    it('regression #11: a cross-site POST /auth/logout with only the cookie is csrf_rejected and logs nobody out', async () => {
      const access = (await login('alice')).json.access_token as string;
      expectCsrfRejected(
        await req('POST', '/auth/logout', { headers: { cookie: cookieOf(access), ...CROSS_SITE } }),
      );
      expect((await req('GET', '/me', { headers: { authorization: `Bearer ${access}` } })).status).toBe(200);
    });

    it('regression #11: a cross-site PUT /secrets/:name and DELETE /api-keys/:id with only the cookie are csrf_rejected', async () => {
      const access = (await login('alice')).json.access_token as string;
      const bearer = { authorization: `Bearer ${access}` };
      const cookie = { cookie: cookieOf(access), ...CROSS_SITE };
      expectCsrfRejected(await req('PUT', '/secrets/csrf-probe', { headers: cookie, json: { value: 'x' } }));
      expect((await req('GET', '/secrets/csrf-probe', { headers: bearer })).status).toBe(404);
      const created = await req('POST', '/api-keys', { headers: bearer, json: { name: 'csrf-probe' } });
      expect(created.status, created.text).toBe(201);
      expectCsrfRejected(await req('DELETE', `/api-keys/${created.json.id}`, { headers: cookie }));
      const listed = (await req('GET', '/api-keys', { headers: bearer })).json as Array<{
        id: string;
        revoked: boolean;
      }>;
      expect(listed.find((k) => k.id === created.json.id)?.revoked).toBe(false);
    });

    it('reads with the cookie work cross-site: a GET changes nothing', async () => {
      const access = (await login('alice')).json.access_token as string;
      const r = await req('GET', '/me', { headers: { cookie: cookieOf(access), ...CROSS_SITE } });
      expect(r.status, r.text).toBe(200);
      expect(r.json.sub).toBe('alice');
    });

    it('same-origin requests (Sec-Fetch-Site: same-origin) with the cookie work; logout clears the cookie', async () => {
      const access = (await login('alice')).json.access_token as string;
      const cookie = { cookie: cookieOf(access), ...SAME_ORIGIN };
      expect(
        (await req('PUT', '/secrets/same-origin', { headers: cookie, json: { value: 'v' } })).status,
      ).toBe(204);
      expect((await req('GET', '/secrets/same-origin', { headers: cookie })).json).toEqual({
        name: 'same-origin',
        value: 'v',
      });
      const created = await req('POST', '/api-keys', { headers: cookie, json: { name: 'same-origin' } });
      expect(created.status, created.text).toBe(201);
      expect((await req('DELETE', `/api-keys/${created.json.id}`, { headers: cookie })).status).toBe(204);
      const out = await req('POST', '/auth/logout', { headers: cookie });
      expect(out.status, out.text).toBe(204);
      const cleared = out.headers.get('set-cookie') ?? '';
      expect(cleared.startsWith(`${COOKIE}=;`), cleared).toBe(true);
      expect(cleared.toLowerCase()).toContain('max-age=0');
      expectProblemCode(
        await req('GET', '/me', { headers: { cookie: cookieOf(access) } }),
        401,
        'token_revoked',
      );
    });

    it('an admin rotation from the same origin, and from an allowed Origin, works', async () => {
      const admin = (await login('admin')).json.access_token as string;
      const same = await req('POST', '/admin/keys/rotate', {
        headers: { cookie: cookieOf(admin), ...SAME_ORIGIN },
        json: {},
      });
      expect(same.status, same.text).toBe(200);
      const allowed = await req('POST', '/admin/keys/rotate', {
        headers: { cookie: cookieOf(admin), 'sec-fetch-site': 'cross-site', origin: ALLOWED },
        json: { use: 'enc' },
      });
      expect(allowed.status, allowed.text).toBe(200);
      const alice = (await login('alice')).json.access_token as string;
      const put = await req('PUT', '/secrets/allowed-origin', {
        headers: { cookie: cookieOf(alice), origin: ALLOWED },
        json: { value: 'v' },
      });
      expect(put.status, put.text).toBe(204);
    });

    it('regression #11: cookie + Authorization is the header principal, not invalid_request', async () => {
      const alice = (await login('alice')).json.access_token as string;
      const admin = (await login('admin')).json.access_token as string;
      const both = { cookie: cookieOf(alice), authorization: `Bearer ${admin}` };
      const me = await req('GET', '/me', { headers: both });
      expect(me.status, me.text).toBe(200);
      expect(me.json.sub).toBe('admin');
      // The header is no ambient credential: no same-origin check for it, even cross-site.
      const r = await req('POST', '/admin/keys/rotate', { headers: { ...both, ...CROSS_SITE }, json: {} });
      expect(r.status, r.text).toBe(200);
      // A header and an API key at once stay a malformed request.
      const twice = await req('GET', '/me', {
        headers: { authorization: `Bearer ${admin}`, 'x-api-key': 'kw_x' },
      });
      expectProblemCode(twice, 400, 'invalid_request');
    });

    it('regression #11: a bodyless POST / PUT to a route that needs a body is a 400, never read as {}', async () => {
      const admin = (await login('admin')).json.access_token as string;
      const keysBefore = (await req('GET', '/admin/keys', { headers: { authorization: `Bearer ${admin}` } }))
        .json;
      const kid = (keysBefore as Array<{ kid: string; use: string; state: string }>).find(
        (k) => k.use === 'sig' && k.state === 'active',
      )?.kid;
      const routes: Array<[string, string]> = [
        ['POST', '/admin/keys/rotate'],
        ['POST', `/admin/keys/${kid}/revoke`],
        ['POST', '/api-keys'],
        ['PUT', '/secrets/bodyless'],
        ['POST', '/auth/refresh'],
        ['POST', '/auth/login'],
      ];
      const variants: Array<Record<string, string>> = [
        { authorization: `Bearer ${admin}` },
        { cookie: cookieOf(admin), ...SAME_ORIGIN },
        { authorization: `Bearer ${admin}`, 'content-type': 'application/json' },
      ];
      for (const headers of variants) {
        for (const [method, path] of routes) {
          const r = await req(method, path, { headers, ...(headers['content-type'] ? { body: '' } : {}) });
          expectProblemCode(r, 400, 'invalid_request', `${method} ${path}`);
        }
      }
      const keysAfter = (await req('GET', '/admin/keys', { headers: { authorization: `Bearer ${admin}` } }))
        .json;
      expect(keysAfter).toEqual(keysBefore);
    });
  });
}

function expectProblemCode(answer: Answer, status: number, code: string, what = ''): void {
  expect([what, answer.status, answer.json?.error], answer.text).toEqual([what, status, code]);
}
