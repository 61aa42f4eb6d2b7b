import { afterEach, describe, expect, it } from 'vitest';
import type { AuditEvent } from '../audit/events.js';
import { callbackSink } from '../audit/sinks.js';
import { KeywardError } from '../errors.js';
import { MasterKey } from '../keys/master-key.js';
import { createKeyward, type Keyward, type KeywardServiceOptions } from '../keyward.js';
import { createMemoryStore } from '../store/memory.js';
import type { Store } from '../store/types.js';
import { createAuthenticator } from './authenticate.js';
import { handleRoute, type KeywardRoute, keywardRoutes } from './routes.js';
import { staticUsers } from './users.js';

const open: Keyward[] = [];
afterEach(async () => {
  for (const kw of open.splice(0)) await kw.close();
});

async function setup(options: Partial<KeywardServiceOptions> = {}, store: Store = createMemoryStore()) {
  let t = Date.now();
  const events: AuditEvent[] = [];
  const warnings: string[] = [];
  const kw = await createKeyward({
    store,
    masterKey: MasterKey.generate().exportText(),
    logger: { info() {}, error() {}, warn: (_o, msg) => warnings.push(String(msg)) },
    audit: { sinks: [callbackSink((e) => void events.push(e))] },
    scheduler: false,
    syncIntervalMs: 60_000,
    now: () => t,
    rateLimit: {
      login: { perUser: 3, perAddress: 5, windowSec: 60 },
      refresh: { perAddress: 2, windowSec: 60 },
    },
    ...options,
  });
  open.push(kw);
  const routes = keywardRoutes(kw, { users: staticUsers('alice:alice-pw:read,bob:bob-pw:read') });
  const auth = createAuthenticator(kw);
  const route = (name: string) => routes.find((r) => r.name === name) as KeywardRoute;
  const login = (username: string, password: string, remoteAddress = '192.0.2.1') =>
    handleRoute(route('login'), auth, {
      headers: {},
      params: {},
      body: { username, password },
      remoteAddress,
    });
  const refresh = (refresh_token: string, remoteAddress = '192.0.2.1') =>
    handleRoute(route('refresh'), auth, { headers: {}, params: {}, body: { refresh_token }, remoteAddress });
  const advance = (ms: number) => {
    t += ms;
  };
  return { kw, events, warnings, login, refresh, advance };
}

describe('HTTP: login and refresh limiter (regression #11: brute force)', () => {
  it('answers 429 too_many_requests with Retry-After after perUser wrong passwords, audited without the username', async () => {
    const { kw, events, login } = await setup();
    for (let i = 0; i < 3; i++) expect((await login('alice', 'wrong')).status).toBe(401);
    const refused = await login('alice', 'wrong');
    expect(refused.status).toBe(429);
    expect(refused.body).toEqual({ error: 'too_many_requests', message: expect.any(String) });
    expect(refused.headers['retry-after']).toMatch(/^[1-9]\d*$/);
    expect(refused.headers['www-authenticate']).toBeUndefined();
    // The right password is refused too while the limit holds: that is what stops the guessing.
    expect((await login('alice', 'alice-pw')).status).toBe(429);
    // Another username from the same address still logs in.
    expect((await login('bob', 'bob-pw')).status).toBe(200);

    const throttled = events.filter((e) => e.type === 'access.throttled');
    expect(throttled).toHaveLength(2);
    expect(throttled[0]).toMatchObject({
      type: 'access.throttled',
      outcome: 'denied',
      route: 'login',
      limit: 'user',
      address: '192.0.2.1',
      userFingerprint: expect.stringMatching(/^sha256:[0-9a-f]{16}$/),
      retryAfterSec: Number(refused.headers['retry-after']),
    });
    expect(JSON.stringify(throttled)).not.toContain('alice');
    expect(await kw.metrics.text()).toMatch(/keyward_rate_limited_total\{route="login",limit="user"\} 2/);
  });

  it('limits the address across usernames, and the window slides open again', async () => {
    const { login, advance } = await setup();
    for (const user of ['u1', 'u2', 'u3', 'u4', 'u5']) expect((await login(user, 'x')).status).toBe(401);
    const refused = await login('alice', 'alice-pw');
    expect(refused.status).toBe(429);
    expect((await login('alice', 'alice-pw', '192.0.2.99')).status).toBe(200);
    advance(Number(refused.headers['retry-after']) * 1000);
    expect((await login('alice', 'alice-pw')).status).toBe(200);
  });

  it('counts only failures: logins that succeed never use up the limit', async () => {
    const { login } = await setup();
    for (let i = 0; i < 10; i++) expect((await login('alice', 'alice-pw')).status).toBe(200);
    for (let i = 0; i < 3; i++) expect((await login('alice', 'wrong')).status).toBe(401);
    expect((await login('alice', 'wrong')).status).toBe(429);
  });

  it('limits failed refreshes per address; a valid refresh is not counted', async () => {
    const { login, refresh, events } = await setup();
    const pair = (await login('alice', 'alice-pw')).body as { refresh_token: string };
    const next = await refresh(pair.refresh_token);
    expect(next.status).toBe(200);
    expect((await refresh('no-such-token')).status).toBe(400);
    expect((await refresh('no-such-token')).status).toBe(400);
    const refused = await refresh((next.body as { refresh_token: string }).refresh_token);
    expect(refused.status).toBe(429);
    expect(refused.headers['retry-after']).toMatch(/^[1-9]\d*$/);
    expect(events.filter((e) => e.type === 'access.throttled')).toEqual([
      expect.objectContaining({ route: 'refresh', limit: 'address' }),
    ]);
    expect((await refresh((next.body as { refresh_token: string }).refresh_token, '192.0.2.2')).status).toBe(
      200,
    );
  });

  it('a store outage in the limiter is a warning, never a 5xx or a 401 for a right password', async () => {
    const inner = createMemoryStore();
    let down = false;
    const store: Store = {
      ...inner,
      driver: 'memory',
      increment: (...args) =>
        down && String(args[0]).startsWith('ratelimit:')
          ? Promise.reject(new KeywardError('store_unavailable', 'down'))
          : inner.increment(...args),
    };
    const { kw, login, warnings } = await setup({}, store);
    down = true;
    expect((await login('alice', 'alice-pw')).status).toBe(200);
    expect(warnings.some((w) => w.includes('keyward rate limit'))).toBe(true);
    // Still limited, in this instance's memory.
    for (let i = 0; i < 3; i++) expect((await login('alice', 'wrong')).status).toBe(401);
    expect((await login('alice', 'wrong')).status).toBe(429);
    expect(await kw.metrics.text()).toMatch(/keyward_rate_limit_store_errors_total 1/);
  });

  it('is on by default and off with rateLimit: false', async () => {
    const { kw } = await setup({ rateLimit: undefined });
    expect(kw.rateLimit?.rules).toEqual({
      login: { perUser: 10, perAddress: 100, windowSec: 60 },
      refresh: { perUser: 0, perAddress: 60, windowSec: 60 },
    });
    const off = await setup({ rateLimit: false });
    expect(off.kw.rateLimit).toBeUndefined();
    for (let i = 0; i < 20; i++) expect((await off.login('alice', 'wrong')).status).toBe(401);
  });
});
