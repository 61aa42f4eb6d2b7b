import { describe, expect, it } from 'vitest';
import { KeywardError } from '../errors.js';
import { createMemoryStore } from '../store/memory.js';
import type { Store } from '../store/types.js';
import {
  createRateLimiter,
  DEFAULT_RATE_LIMITS,
  type RateLimitDecision,
  resolveRateLimits,
} from './limiter.js';

function setup(limits = { login: { perUser: 3, perAddress: 5, windowSec: 60 }, refresh: { perAddress: 2 } }) {
  let t = 1_000_000 * 60_000; // the start of a window
  const now = () => t;
  const store = createMemoryStore({ now });
  const limiter = createRateLimiter({ store, limits, now });
  return {
    store,
    limiter,
    advance: (ms: number) => {
      t += ms;
    },
    fail: (username: string, address = '10.0.0.1') => limiter.attempt('login', { username, address }),
  };
}

const allowed = (d: RateLimitDecision) => d.allowed;

describe('rate limiter (regression #11: brute force on login and refresh)', () => {
  it('refuses the attempt after perUser failures of one username, with Retry-After, and counts no refusal', async () => {
    const { fail } = setup();
    for (let i = 0; i < 3; i++) expect(allowed(await fail('alice'))).toBe(true);
    const refused = await fail('alice');
    expect(refused).toEqual({ allowed: false, limit: 'user', retryAfterSec: expect.any(Number) });
    // Refusals are not counted: the answer stays the same, not a growing lock-out.
    expect(await fail('alice')).toEqual(refused);
    // Another username from the same address still gets through (until the address limit).
    expect(allowed(await fail('bob'))).toBe(true);
  });

  it('lets exactly perUser of 50 concurrent wrong attempts through (no check-then-count race)', async () => {
    const { fail } = setup();
    const decisions = await Promise.all(Array.from({ length: 50 }, () => fail('alice')));
    expect(decisions.filter(allowed)).toHaveLength(3);
  });

  it('counts a username in any case and spacing as one', async () => {
    const { fail } = setup();
    await fail('Alice');
    await fail('alice ');
    await fail('ALICE');
    expect(allowed(await fail('alice'))).toBe(false);
  });

  it('refuses every username from an address past perAddress', async () => {
    const { fail } = setup();
    for (const user of ['u1', 'u2', 'u3', 'u4', 'u5']) expect(allowed(await fail(user))).toBe(true);
    expect(await fail('u6')).toMatchObject({ allowed: false, limit: 'address' });
    expect(allowed(await fail('u6', '10.0.0.2'))).toBe(true);
  });

  it('counts only failures: a success gives its attempt back', async () => {
    const { fail } = setup();
    for (let i = 0; i < 10; i++) {
      const d = await fail('alice');
      expect(d.allowed).toBe(true);
      if (d.allowed) await d.succeeded();
    }
    for (let i = 0; i < 3; i++) expect(allowed(await fail('alice'))).toBe(true);
    expect(allowed(await fail('alice'))).toBe(false);
  });

  it('slides: the previous window weighs in by the part of it still inside the window', async () => {
    const { fail, advance } = setup();
    for (let i = 0; i < 3; i++) await fail('alice'); // 3 failures at the start of bucket 0
    advance(60_000); // start of bucket 1: the previous bucket still counts in full (3 * 1.0)
    expect(await fail('alice')).toMatchObject({ allowed: false, retryAfterSec: 20 });
    // 3 * (1 - 1/3) + 1 = 3 fits once 20 s of the bucket have passed: not before.
    advance(19_000);
    expect(await fail('alice')).toMatchObject({ allowed: false, retryAfterSec: 1 });
    advance(1_000);
    expect(allowed(await fail('alice'))).toBe(true);
    expect(allowed(await fail('alice'))).toBe(false); // 3 * (2/3) + 1 + 1 > 3
    advance(120_000); // two windows later nothing is left
    for (let i = 0; i < 3; i++) expect(allowed(await fail('alice'))).toBe(true);
  });

  it('says how long to wait when the current bucket alone is full', async () => {
    const { fail, advance } = setup();
    advance(30_000); // half-way through bucket 0
    for (let i = 0; i < 3; i++) await fail('alice');
    // Into bucket 1 (30 s) and then until 3 * (1 - f) + 1 <= 3, f = 1/3 (20 s): 50 s.
    expect(await fail('alice')).toMatchObject({ allowed: false, retryAfterSec: 50 });
    advance(49_999);
    expect(allowed(await fail('alice'))).toBe(false);
    advance(1);
    expect(allowed(await fail('alice'))).toBe(true);
  });

  it('expires its counters in the store (no key outlives two windows) and stores no username', async () => {
    const { store, fail, advance } = setup();
    await fail('alice@example.com', '192.0.2.7');
    const keys = (await store.scan('')).entries.map((e) => e.key);
    expect(keys).toHaveLength(2);
    for (const key of keys) {
      expect(key).toMatch(/^ratelimit:login:(user|address):[\w-]{22}:\d+$/);
      expect(key).not.toContain('alice');
      expect(key).not.toContain('192.0.2.7');
    }
    advance(120_001);
    expect((await store.scan('')).entries).toEqual([]);
  });

  it('limits refresh per address only', async () => {
    const { limiter } = setup();
    const refresh = (address: string) => limiter.attempt('refresh', { address });
    expect(allowed(await refresh('10.0.0.1'))).toBe(true);
    expect(allowed(await refresh('10.0.0.1'))).toBe(true);
    expect(await refresh('10.0.0.1')).toMatchObject({ allowed: false, limit: 'address' });
    expect(allowed(await refresh('10.0.0.2'))).toBe(true);
  });

  it('lets everything through when off, and counts no address the adapter did not give', async () => {
    const off = createRateLimiter({ store: createMemoryStore(), limits: false });
    for (let i = 0; i < 20; i++) expect(allowed(await off.attempt('login', { username: 'a' }))).toBe(true);
    const { limiter } = setup({
      login: { perUser: 0, perAddress: 1, windowSec: 60 },
      refresh: { perAddress: 1 },
    });
    for (let i = 0; i < 5; i++) expect(allowed(await limiter.attempt('login', { username: 'a' }))).toBe(true);
    expect(allowed(await limiter.attempt('login', { username: 'a', address: '10.0.0.1' }))).toBe(true);
    expect(allowed(await limiter.attempt('login', { username: 'a', address: '10.0.0.1' }))).toBe(false);
  });

  it('falls back to counting in memory when the store fails: never an error, still limited', async () => {
    let t = 0;
    const inner = createMemoryStore({ now: () => t });
    let down = false;
    const failing: Store = {
      ...inner,
      driver: inner.driver,
      increment: (...args) =>
        down ? Promise.reject(new KeywardError('store_unavailable', 'down')) : inner.increment(...args),
      get: (key) => (down ? Promise.reject(new KeywardError('store_unavailable', 'down')) : inner.get(key)),
    };
    const errors: unknown[] = [];
    const limiter = createRateLimiter({
      store: failing,
      limits: { login: { perUser: 2, perAddress: 0, windowSec: 60 } },
      now: () => t,
      onStoreError: (e) => errors.push(e),
    });
    down = true;
    expect(allowed(await limiter.attempt('login', { username: 'a' }))).toBe(true);
    expect(allowed(await limiter.attempt('login', { username: 'a' }))).toBe(true);
    expect(allowed(await limiter.attempt('login', { username: 'a' }))).toBe(false);
    expect(errors).toHaveLength(1); // then the fallback is used without asking the store each time
    // Once the store answers again (tried again after 5 s), counting goes back to it.
    down = false;
    t += 5000;
    expect(allowed(await limiter.attempt('login', { username: 'a' }))).toBe(true);
    expect(await inner.scan('ratelimit:')).toMatchObject({ entries: [expect.anything()] });
  });

  it('rejects bad limits with config_invalid and fills in defaults', () => {
    expect(() => resolveRateLimits({ login: { perUser: -1 } })).toThrow(
      expect.objectContaining({ code: 'config_invalid' }),
    );
    expect(() => resolveRateLimits({ login: { windowSec: 0 } })).toThrow(
      expect.objectContaining({ code: 'config_invalid' }),
    );
    expect(() => resolveRateLimits({ refresh: { perAddress: 1.5 } })).toThrow(
      expect.objectContaining({ code: 'config_invalid' }),
    );
    expect(resolveRateLimits(undefined)).toEqual(DEFAULT_RATE_LIMITS);
    expect(resolveRateLimits({ login: false, refresh: { perAddress: 7 } })).toEqual({
      refresh: { perUser: 0, perAddress: 7, windowSec: 60 },
    });
    expect(resolveRateLimits(false)).toEqual({});
  });
});
