import { afterEach, describe, expect, it } from 'vitest';
import { codeOf } from '../../../testing/src/errors.js';
import { MasterKey } from '../keys/master-key.js';
import { createKeyward, type Keyward } from '../keyward.js';
import { createMemoryStore } from '../store/memory.js';
import { createAuthenticator } from './authenticate.js';
import {
  handleRoute,
  type KeywardRoutesOptions,
  keywardRoutes,
  ROUTE_GROUPS,
  type RouteDeps,
  type RouteSet,
  routeTableOptions,
} from './routes.js';

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

const seen: Array<{ group: string; users: unknown }> = [];
const extra: RouteSet = {
  group: 'extra',
  routes: (_kw, options) => {
    seen.push({ group: 'extra', users: options.users });
    return [
      {
        name: 'extraPing',
        method: 'GET',
        path: '/extra/ping',
        auth: { scopes: ['admin'] },
        handle: async () => ({ status: 200, headers: { 'content-type': 'text/plain' }, body: 'pong' }),
      },
    ];
  },
};

describe('route sets', () => {
  it('serve an extra group only when include names it, authenticated like core routes', async () => {
    const kw = await deps();
    expect(keywardRoutes(kw, { routeSets: [extra] }).some((r) => r.name === 'extraPing')).toBe(false);
    const routes = keywardRoutes(kw, { routeSets: [extra], include: ['jwks', 'extra'] });
    expect(routes.map((r) => r.name)).toContain('extraPing');
    expect(routes.some((r) => r.name === 'login')).toBe(false);
    const ping = routes.find((r) => r.name === 'extraPing');
    if (!ping) throw new Error('extraPing missing');
    const auth = createAuthenticator(kw);
    const anonymous = await handleRoute(ping, auth, { headers: {}, params: {}, body: undefined });
    expect(anonymous.status).toBe(401);
    const { access_token: token } = await kw.tokens.issue({ sub: 'ops', scopes: ['admin'] });
    const answer = await handleRoute(ping, auth, {
      headers: { authorization: `Bearer ${token}` },
      params: {},
      body: undefined,
    });
    expect(answer).toMatchObject({ status: 200, body: 'pong' });
  });

  it('refuse an include that names no known group, and a set that reuses a core group name', async () => {
    const kw = await deps();
    expect(codeOf(() => keywardRoutes(kw, { include: ['consol'] }))).toBe('config_invalid');
    expect(codeOf(() => keywardRoutes(kw, { routeSets: [{ ...extra, group: 'admin' }] }))).toBe(
      'config_invalid',
    );
    expect(ROUTE_GROUPS).toContain('metrics');
  });

  it('routeTableOptions picks every route-table option out of an adapter options object', () => {
    const users = { verify: async () => undefined };
    const isShuttingDown = () => false;
    const adapterOptions: KeywardRoutesOptions & { bodyLimit: number; cookie: string } = {
      users,
      include: ['extra'],
      routeSets: [extra],
      jwksSharedCache: true,
      isShuttingDown,
      bodyLimit: 10,
      cookie: 'kw',
    };
    expect(routeTableOptions(adapterOptions)).toEqual({
      users,
      include: ['extra'],
      routeSets: [extra],
      jwksSharedCache: true,
      isShuttingDown,
    });
  });
});
