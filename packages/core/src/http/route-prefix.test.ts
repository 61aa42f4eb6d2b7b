import { afterEach, describe, expect, it } from 'vitest';
import { codeOf } from '../../../testing/src/errors.js';
import { MasterKey } from '../keys/master-key.js';
import { createKeyward, type Keyward } from '../keyward.js';
import { createMemoryStore } from '../store/memory.js';
import { createAuthenticator } from './authenticate.js';
import {
  handleRoute,
  type KeywardRoute,
  type KeywardRoutesOptions,
  keywardRoutes,
  ROUTE_GROUPS,
  type RouteDeps,
  type RouteSet,
  routePrefix,
} from './routes.js';
import { staticUsers } from './users.js';

const open: Keyward[] = [];
afterEach(async () => {
  for (const kw of open.splice(0)) await kw.close();
});

async function deps(): Promise<RouteDeps & Keyward> {
  const kw = await createKeyward({
    store: createMemoryStore(),
    masterKey: MasterKey.generate().exportText(),
    logger: false,
    audit: false,
    scheduler: false,
    syncIntervalMs: 60_000,
  });
  open.push(kw);
  return Object.assign(kw, { metrics: { text: async () => '', contentType: 'text/plain' } });
}

const users = staticUsers('alice:alice-password:read');
const paths = (routes: KeywardRoute[]) => Object.fromEntries(routes.map((r) => [r.name, r.path]));
const extra: RouteSet = {
  group: 'extra',
  routes: () => [
    {
      name: 'extraPage',
      method: 'GET',
      path: '/extra',
      auth: 'none',
      handle: async () => ({ status: 200, headers: {}, body: 'x' }),
    },
  ],
};

describe('route prefix', () => {
  it('prefixes every route but the /.well-known ones, route sets included', async () => {
    const kw = await deps();
    const plain = keywardRoutes(kw, { users, routeSets: [extra], include: [...ROUTE_GROUPS, 'extra'] });
    const routes = keywardRoutes(kw, {
      users,
      routeSets: [extra],
      include: [...ROUTE_GROUPS, 'extra'],
      prefix: '/api/v1',
    });
    expect(routes.map((r) => r.name)).toEqual(plain.map((r) => r.name));
    const served = paths(routes);
    expect(served).toMatchObject({
      login: '/api/v1/auth/login',
      refresh: '/api/v1/auth/refresh',
      me: '/api/v1/me',
      revokeKey: '/api/v1/admin/keys/:kid/revoke',
      live: '/api/v1/health/live',
      metrics: '/api/v1/metrics',
      introspectToken: '/api/v1/oauth/introspect',
      extraPage: '/api/v1/extra',
      jwks: '/.well-known/jwks.json',
      oauthMetadata: '/.well-known/oauth-authorization-server',
      openidConfiguration: '/.well-known/openid-configuration',
    });
    // No route is served twice under the prefix, and none but the well-known ones outside it.
    for (const route of routes) {
      expect(route.path.startsWith('/api/v1/api/')).toBe(false);
      expect(route.path.startsWith('/api/v1/') || route.path.startsWith('/.well-known/')).toBe(true);
    }
    const prefixed = paths(keywardRoutes(kw, { prefix: '/api', wellKnown: 'prefixed' }));
    expect(prefixed).toMatchObject({
      jwks: '/api/.well-known/jwks.json',
      openidConfiguration: '/api/.well-known/openid-configuration',
      refresh: '/api/auth/refresh',
    });
    // Without a prefix, wellKnown changes nothing.
    expect(paths(keywardRoutes(kw, { wellKnown: 'prefixed' }))).toEqual(paths(keywardRoutes(kw)));
  });

  it('reports the prefixed endpoints in the discovery documents', async () => {
    const kw = await deps();
    kw.setDefaultIssuer('https://auth.example.com');
    const auth = createAuthenticator(kw);
    const discover = async (options: KeywardRoutesOptions) => {
      const route = keywardRoutes(kw, options).find((r) => r.name === 'openidConfiguration');
      if (!route) throw new Error('no discovery route');
      return (await handleRoute(route, auth, { headers: {}, params: {}, body: undefined })).body;
    };
    const base = 'https://auth.example.com';
    expect(await discover({ prefix: '/api' })).toMatchObject({
      issuer: base,
      jwks_uri: `${base}/.well-known/jwks.json`,
      token_endpoint: `${base}/api/auth/refresh`,
      revocation_endpoint: `${base}/api/oauth/revoke`,
      introspection_endpoint: `${base}/api/oauth/introspect`,
    });
    expect(await discover({ prefix: '/api', wellKnown: 'prefixed' })).toMatchObject({
      jwks_uri: `${base}/api/.well-known/jwks.json`,
      token_endpoint: `${base}/api/auth/refresh`,
    });
    expect(await discover({})).toMatchObject({
      jwks_uri: `${base}/.well-known/jwks.json`,
      token_endpoint: `${base}/auth/refresh`,
    });
  });

  it('refuses a prefix that is not a plain absolute path, and an unknown wellKnown', async () => {
    const kw = await deps();
    for (const prefix of [
      'api',
      '/api/',
      '/',
      '',
      '/a//b',
      '/a/../b',
      '/..',
      '/./a',
      '/:tenant',
      '/a/*',
      '/a b',
      '/a?x',
      7,
    ]) {
      expect(
        codeOf(() => keywardRoutes(kw, { prefix: prefix as string })),
        String(prefix),
      ).toBe('config_invalid');
    }
    expect(() => routePrefix('/a/../b')).toThrow(/"prefix"/);
    expect(routePrefix('/api/v1.2_x~y-z')).toBe('/api/v1.2_x~y-z');
    expect(routePrefix(undefined)).toBe('');
    expect(codeOf(() => keywardRoutes(kw, { wellKnown: 'moved' as 'root' }))).toBe('config_invalid');
  });
});
