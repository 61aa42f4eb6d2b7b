import { decodeJwt } from 'jose';
import { afterEach, describe, expect, it } from 'vitest';
import { codeOf } from '../../../testing/src/errors.js';
import { MasterKey } from '../keys/master-key.js';
import { createKeyward, type Keyward, type KeywardServiceOptions } from '../keyward.js';
import { createMemoryStore } from '../store/memory.js';
import { createAuthenticator } from './authenticate.js';
import { handleRoute, type KeywardRoute, type KeywardRoutesOptions, keywardRoutes } from './routes.js';

const open: Keyward[] = [];
afterEach(async () => {
  for (const kw of open.splice(0)) await kw.close();
});

async function setup(options: Partial<KeywardServiceOptions> = {}, routeOptions: KeywardRoutesOptions = {}) {
  const kw = await createKeyward({
    store: createMemoryStore(),
    masterKey: MasterKey.generate().exportText(),
    logger: false,
    audit: false,
    scheduler: false,
    syncIntervalMs: 60_000,
    ...options,
  });
  open.push(kw);
  const routes = keywardRoutes(
    { ...kw, metrics: { text: async () => '', contentType: 'text/plain' } },
    routeOptions,
  );
  const auth = createAuthenticator(kw);
  const get = (name: string) =>
    handleRoute(routes.find((r) => r.name === name) as KeywardRoute, auth, {
      headers: {},
      params: {},
      body: undefined,
    });
  return { kw, get };
}

describe('discovery documents', () => {
  it('answers 404 not_found while no issuer is known, and serves both documents once the app gives its origin', async () => {
    const { kw, get } = await setup();
    for (const name of ['oauthMetadata', 'openidConfiguration']) {
      const r = await get(name);
      expect(r.status).toBe(404);
      expect(r.body).toMatchObject({ error: 'not_found' });
    }
    expect(decodeJwt(kw.jwt.sign({ sub: 'a' }))).not.toHaveProperty('iss');

    kw.setDefaultIssuer('http://127.0.0.1:4567/');
    expect(kw.issuer()).toBe('http://127.0.0.1:4567');
    const base = 'http://127.0.0.1:4567';
    const oauth = await get('oauthMetadata');
    expect(oauth.status).toBe(200);
    expect(oauth.headers['cache-control']).toBe('max-age=600');
    expect(oauth.body).toEqual({
      issuer: base,
      jwks_uri: `${base}/.well-known/jwks.json`,
      token_endpoint: `${base}/auth/refresh`,
      revocation_endpoint: `${base}/oauth/revoke`,
      introspection_endpoint: `${base}/oauth/introspect`,
      grant_types_supported: ['refresh_token'],
      token_endpoint_auth_methods_supported: ['none'],
    });
    const openid = await get('openidConfiguration');
    expect(openid.body).toEqual({
      ...(oauth.body as object),
      id_token_signing_alg_values_supported: ['ES256'],
      subject_types_supported: ['public'],
    });

    // Tokens carry the default issuer; keyward itself does not require it on verify.
    const token = kw.jwt.sign({ sub: 'a' });
    expect(decodeJwt(token).iss).toBe(base);
    expect(kw.jwt.verify(kw.jwt.sign({ sub: 'a', iss: 'http://elsewhere' })).payload.sub).toBe('a');
  });

  it('uses the configured issuer over any default, checks it on verify, and adds aud and client_id', async () => {
    const { kw, get } = await setup({
      issuer: 'https://auth.example.com',
      audience: 'https://api.example.com',
      clientId: 'web-app',
    });
    kw.setDefaultIssuer('http://127.0.0.1:1');
    expect(kw.issuer()).toBe('https://auth.example.com');
    expect((await get('oauthMetadata')).body).toMatchObject({
      issuer: 'https://auth.example.com',
      jwks_uri: 'https://auth.example.com/.well-known/jwks.json',
    });
    const { access_token } = await kw.tokens.issue({ sub: 'u1', scopes: ['read'] });
    expect(decodeJwt(access_token)).toMatchObject({
      iss: 'https://auth.example.com',
      aud: 'https://api.example.com',
      client_id: 'web-app',
      sub: 'u1',
      scope: 'read',
    });
    expect(codeOf(() => kw.jwt.verify(kw.jwt.sign({ sub: 'a', iss: 'http://elsewhere' })))).toBe(
      'token_claim_invalid',
    );
    // The service sets client_id itself: a caller's claim cannot override it.
    expect(await codeOf(kw.tokens.issue({ sub: 'u1', claims: { client_id: 'other' } }))).toBe(
      'invalid_request',
    );
  });

  it('refuses a default issuer that is not an http(s) URL, and an empty or oversized clientId', async () => {
    const { kw } = await setup();
    for (const bad of [
      '',
      'not a url',
      'ftp://x.example',
      'https://x.example/?q=1',
      'https://x.example/#f',
      'https://u:p@x.example',
    ])
      expect(codeOf(() => kw.setDefaultIssuer(bad))).toBe('config_invalid');
    expect(kw.issuer()).toBeUndefined();
    for (const clientId of ['', 'x'.repeat(257)])
      expect(await codeOf(setup({ clientId }))).toBe('config_invalid');
  });

  it('lists only the algorithms of published keys: never the HS256 key derived from JWT_SECRET', async () => {
    const { kw, get } = await setup({ jwtSecret: 'legacy-shared-secret-of-the-reference-system' });
    expect(kw.keys.list().some((r) => r.alg === 'HS256')).toBe(true);
    kw.setDefaultIssuer('http://127.0.0.1:4567');
    expect((await get('openidConfiguration')).body).toMatchObject({
      id_token_signing_alg_values_supported: ['ES256'],
    });
  });
});

describe('JWKS Cache-Control', () => {
  it('is private with max-age from jwksMaxAge, public only when shared caches are allowed', async () => {
    const { get } = await setup({ rotation: { jwksMaxAge: '5m' } });
    expect((await get('jwks')).headers['cache-control']).toBe('private, max-age=300');
    const shared = await setup({}, { jwksSharedCache: true });
    expect((await shared.get('jwks')).headers['cache-control']).toBe('public, max-age=600');
  });
});
