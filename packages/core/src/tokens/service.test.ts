import { afterEach, describe, expect, it } from 'vitest';
import { codeOf } from '../../../testing/src/errors.js';
import type { AuditEvent } from '../audit/events.js';
import { callbackSink } from '../audit/sinks.js';
import { createKeywardCore, type KeywardCore } from '../core.js';
import { MasterKey } from '../keys/master-key.js';
import { createMemoryStore } from '../store/memory.js';
import type { Store } from '../store/types.js';
import { createTokenService, type TokenServiceOptions } from './service.js';

const MASTER = MasterKey.generate().exportText();
const open: KeywardCore[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((core) => core.close()));
});

interface Clock {
  t: number;
  now: () => number;
}
function clock(): Clock {
  const c = { t: Date.UTC(2030, 0, 1), now: () => c.t };
  return c;
}

async function setup(store?: Store, c: Clock = clock(), options: TokenServiceOptions = {}) {
  const events: AuditEvent[] = [];
  const s = store ?? createMemoryStore({ now: c.now });
  const core = await createKeywardCore({
    store: s,
    masterKey: MASTER,
    logger: false,
    audit: { sinks: [callbackSink((e) => void events.push(e))], now: c.now },
    syncIntervalMs: 60_000,
    now: c.now,
  });
  open.push(core);
  return { core, store: s, clock: c, events, tokens: createTokenService(core, options) };
}

async function familyKeys(store: Store): Promise<string[]> {
  return (await store.scan('rt:fam:')).entries.map((e) => e.key);
}

describe('issue', () => {
  it('signs an access token with sub and scope and returns an opaque refresh token', async () => {
    const { core, tokens } = await setup();
    const pair = await tokens.issue({ sub: 'user_1', scopes: ['read', 'write'], claims: { tenant: 't1' } });
    expect(pair.token_type).toBe('Bearer');
    expect(pair.expires_in).toBe(core.options.accessTokenTtlSec);
    expect(pair.refresh_token).toMatch(/^rt_[A-Za-z0-9_-]{43}$/);
    const { payload } = core.jwt.verify(pair.access_token);
    expect(payload).toMatchObject({ sub: 'user_1', scope: 'read write', tenant: 't1' });
  });

  it('stores only hashes of the refresh token', async () => {
    const { store, tokens } = await setup();
    const pair = await tokens.issue({ sub: 'user_1' });
    const page = await store.scan('', { limit: 10_000 });
    const dump = page.entries.map((e) => `${e.key}=${e.value}`).join('\n');
    expect(dump).not.toContain(pair.refresh_token);
    expect(dump).not.toContain(pair.refresh_token.slice(3));
  });

  it.each(['exp', 'sub', 'jti', 'scope', 'iss', 'aud'])('refuses the reserved claim %s', async (claim) => {
    const { tokens } = await setup();
    expect(await codeOf(tokens.issue({ sub: 'u', claims: { [claim]: 'x' } }))).toBe('invalid_request');
  });

  it('refuses a bad sub or scope', async () => {
    const { tokens } = await setup();
    expect(await codeOf(tokens.issue({ sub: '' }))).toBe('invalid_request');
    expect(await codeOf(tokens.issue({ sub: 'u', scopes: ['a b'] }))).toBe('invalid_request');
    expect(await codeOf(tokens.issue({ sub: 'u', scopes: 'read' as unknown as string[] }))).toBe(
      'invalid_request',
    );
    expect(await codeOf(tokens.issue({ sub: 'u', claims: 'x' as unknown as Record<string, unknown> }))).toBe(
      'invalid_request',
    );
  });
});

describe('refresh', () => {
  it('rotates: the new pair works, the new access token verifies', async () => {
    const { core, tokens, events } = await setup();
    const first = await tokens.issue({ sub: 'user_1', scopes: ['read'] });
    const second = await tokens.refresh(first.refresh_token);
    expect(second.refresh_token).not.toBe(first.refresh_token);
    expect(core.jwt.verify(second.access_token).payload).toMatchObject({ sub: 'user_1', scope: 'read' });
    const third = await tokens.refresh(second.refresh_token);
    expect(third.refresh_token).not.toBe(second.refresh_token);
    expect(events.filter((e) => e.type === 'token.refreshed')).toHaveLength(2);
  });

  it('two tabs refreshing at once get the identical pair: one family, one successor', async () => {
    const { tokens, store } = await setup();
    const cas = store.compareAndSet.bind(store);
    let lost = 0;
    store.compareAndSet = async (...args) => {
      const ok = await cas(...args);
      if (!ok && args[0].startsWith('rt:tok:')) lost += 1;
      return ok;
    };
    const first = await tokens.issue({ sub: 'user_1' });
    const results = await Promise.all(Array.from({ length: 8 }, () => tokens.refresh(first.refresh_token)));
    for (const r of results) expect(r).toEqual(results[0]);
    expect(lost).toBeGreaterThan(0); // the race really happened
    expect(await familyKeys(store)).toHaveLength(1);
    const active = (await store.scan('rt:tok:')).entries.filter((e) => e.value.includes('"active"'));
    expect(active).toHaveLength(1);
    // The shared successor keeps working.
    await expect(tokens.refresh(results[0]?.refresh_token ?? '')).resolves.toBeDefined();
  });

  it('reuse after the interval revokes the family: the successor and its access token stop working', async () => {
    const { core, tokens, clock: c, events } = await setup();
    const first = await tokens.issue({ sub: 'user_1' });
    const second = await tokens.refresh(first.refresh_token);
    c.t += 1000;
    expect(await tokens.refresh(first.refresh_token)).toEqual(second); // inside the 2 s grace
    c.t += 1500;
    expect(await codeOf(tokens.refresh(first.refresh_token))).toBe('refresh_token_reused');
    expect(await codeOf(tokens.refresh(second.refresh_token))).toBe('refresh_token_invalid');
    expect(() => core.jwt.verify(second.access_token)).toThrow(
      expect.objectContaining({ code: 'token_revoked' }),
    );
    expect(await codeOf(tokens.refresh(first.refresh_token))).toBe('refresh_token_invalid');
    const reuse = events.filter((e) => e.type === 'token.reuse_detected');
    expect(reuse).toHaveLength(1);
    expect(await core.metrics.text()).toMatch(/token_reuse_detected_total 1/);
  });

  it('rejects unknown, malformed and expired refresh tokens without crashing', async () => {
    const { tokens, clock: c } = await setup(undefined, clock(), { refreshTtlSec: 60 });
    for (const bad of [
      '',
      'rt_',
      'rt_short',
      `rt_${'A'.repeat(43)}`,
      `xx_${'A'.repeat(43)}`,
      'é'.repeat(46),
    ]) {
      expect(await codeOf(tokens.refresh(bad))).toBe('refresh_token_invalid');
    }
    expect(await codeOf(tokens.refresh(42 as unknown as string))).toBe('refresh_token_invalid');
    const pair = await tokens.issue({ sub: 'u' });
    c.t += 61_000;
    expect(await codeOf(tokens.refresh(pair.refresh_token))).toBe('refresh_token_invalid');
  });

  it('two instances on one store refreshing one token mint one successor', async () => {
    const c = clock();
    const a = await setup(undefined, c);
    const b = await setup(a.store, c);
    const first = await a.tokens.issue({ sub: 'user_1' });
    const [x, y] = await Promise.all([
      a.tokens.refresh(first.refresh_token),
      b.tokens.refresh(first.refresh_token),
    ]);
    expect(x).toEqual(y);
    expect(b.core.jwt.verify(x.access_token).payload.sub).toBe('user_1');
  });
});

describe('logout', () => {
  it('revokes the access token and the family, seen by another instance after sync', async () => {
    const c = clock();
    const a = await setup(undefined, c);
    const b = await setup(a.store, c);
    const pair = await a.tokens.issue({ sub: 'user_1' });
    const claims = b.core.jwt.verify(pair.access_token).payload;
    await a.tokens.logout({
      access: { jti: claims.jti, exp: claims.exp, sub: 'user_1' },
      refreshToken: pair.refresh_token,
    });
    await b.core.sync.refresh();
    expect(() => b.core.jwt.verify(pair.access_token)).toThrow(
      expect.objectContaining({ code: 'token_revoked' }),
    );
    expect(await codeOf(b.tokens.refresh(pair.refresh_token))).toBe('refresh_token_invalid');
    // Logging out again is quiet.
    await expect(a.tokens.logout({ refreshToken: pair.refresh_token })).resolves.toBeUndefined();
  });

  it('leaves a family of another subject alone', async () => {
    const { core, tokens } = await setup();
    const mine = await tokens.issue({ sub: 'alice' });
    const theirs = await tokens.issue({ sub: 'bob' });
    const claims = core.jwt.verify(mine.access_token).payload;
    await tokens.logout({
      access: { jti: claims.jti, exp: claims.exp, sub: 'alice' },
      refreshToken: theirs.refresh_token,
    });
    await expect(tokens.refresh(theirs.refresh_token)).resolves.toBeDefined();
  });

  it('logoutEverywhere revokes every family and access token of the subject, only those', async () => {
    const { core, tokens, clock: c } = await setup();
    const sessions = await Promise.all([1, 2, 3].map(() => tokens.issue({ sub: 'alice' })));
    const other = await tokens.issue({ sub: 'alice:x' }); // a prefix-colliding id stays untouched
    c.t += 1000;
    await tokens.logoutEverywhere('alice');
    for (const s of sessions) {
      expect(await codeOf(tokens.refresh(s.refresh_token))).toBe('refresh_token_invalid');
      expect(() => core.jwt.verify(s.access_token)).toThrow(
        expect.objectContaining({ code: 'token_revoked' }),
      );
    }
    await expect(tokens.refresh(other.refresh_token)).resolves.toBeDefined();
    // Logging in again within the same second as "logout everywhere" works.
    const fresh = await tokens.issue({ sub: 'alice' });
    expect(core.jwt.verify(fresh.access_token).payload.sub).toBe('alice');
  });
});

describe('one-time tokens', () => {
  it('20 concurrent consumers on two instances: exactly one wins', async () => {
    const c = clock();
    const a = await setup(undefined, c);
    const b = await setup(a.store, c);
    const token = await a.tokens.oneTime({ sub: 'user_1', purpose: 'password-reset', data: { n: 1 } });
    const results = await Promise.allSettled(
      Array.from({ length: 20 }, (_, i) => (i % 2 ? a : b).tokens.consumeOneTime(token, 'password-reset')),
    );
    const won = results.filter((r) => r.status === 'fulfilled');
    expect(won).toHaveLength(1);
    expect(won[0]).toMatchObject({ value: { sub: 'user_1', purpose: 'password-reset', data: { n: 1 } } });
    for (const r of results.filter((r) => r.status === 'rejected')) {
      expect(r.reason).toMatchObject({ code: 'token_invalid' });
    }
  });

  it('checks purpose and expiry', async () => {
    const { tokens, clock: c } = await setup();
    const t1 = await tokens.oneTime({ sub: 'u', purpose: 'email-verification' });
    expect(await codeOf(tokens.consumeOneTime(t1, 'password-reset'))).toBe('token_invalid');
    expect(await codeOf(tokens.consumeOneTime(t1, 'email-verification'))).toBe('token_invalid'); // burnt
    const t2 = await tokens.oneTime({ sub: 'u', purpose: 'x', ttlSec: 10 });
    c.t += 9_000;
    const t3 = await tokens.oneTime({ sub: 'u', purpose: 'x', ttlSec: 10 });
    expect(await codeOf(tokens.consumeOneTime(t2, 'x'))).toBeUndefined();
    c.t += 11_000;
    expect(await codeOf(tokens.consumeOneTime(t3, 'x'))).toBe('token_invalid');
    expect(await codeOf(tokens.consumeOneTime('garbage', 'x'))).toBe('token_invalid');
    expect(await codeOf(tokens.oneTime({ sub: 'u', purpose: 'has space' }))).toBe('invalid_request');
  });
});

describe('audit', () => {
  it('no token value reaches an audit event', async () => {
    const { core, tokens, clock: c, events } = await setup();
    const seen: string[] = [];
    const p1 = await tokens.issue({ sub: 'u' });
    const p2 = await tokens.refresh(p1.refresh_token);
    c.t += 5000;
    await codeOf(tokens.refresh(p1.refresh_token));
    const p3 = await tokens.issue({ sub: 'u' });
    const claims = core.jwt.verify(p3.access_token).payload;
    await tokens.logout({
      access: { jti: claims.jti, exp: claims.exp, sub: 'u' },
      refreshToken: p3.refresh_token,
    });
    const ot = await tokens.oneTime({ sub: 'u', purpose: 'p' });
    for (const p of [p1, p2, p3]) seen.push(p.access_token, p.refresh_token, p.refresh_token.slice(3));
    seen.push(ot, ot.slice(3));
    const text = JSON.stringify(events);
    expect(events.map((e) => e.type)).toEqual(
      expect.arrayContaining(['token.issued', 'token.refreshed', 'token.reuse_detected', 'token.revoked']),
    );
    for (const secret of seen) expect(text).not.toContain(secret);
  });
});
