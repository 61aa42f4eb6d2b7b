import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { VerifiedTokenCache } from './token-cache.js';

describe('VerifiedTokenCache', () => {
  it('answers only for the exact token, also when another token shares its slot', () => {
    const cache = new VerifiedTokenCache<number>(10);
    // Same length and same characters where the slot is read: same slot, different token.
    const a = 'aaaa.bbbb.XYZ123456z';
    const b = 'aaaa.cccc.XYZ123456z';
    cache.set(a, 1);
    expect(cache.get(a)).toBe(1);
    expect(cache.get(b)).toBeUndefined();
    cache.set(b, 2);
    expect(cache.get(b)).toBe(2);
    expect(cache.get(a)).toBeUndefined();
    cache.delete(a); // not the slot's holder: nothing happens
    expect(cache.get(b)).toBe(2);
    cache.delete(b);
    expect(cache.size).toBe(0);
  });

  it('holds at most max entries and keeps an entry that was hit over one that was not', () => {
    const cache = new VerifiedTokenCache<number>(3);
    cache.set('t.t.sig-000001x', 1);
    cache.set('t.t.sig-000002x', 2);
    cache.set('t.t.sig-000003x', 3);
    expect(cache.get('t.t.sig-000001x')).toBe(1); // second chance for the oldest
    cache.set('t.t.sig-000004x', 4); // full: a first sighting is only noted
    expect(cache.get('t.t.sig-000004x')).toBeUndefined();
    expect(cache.size).toBe(3);
    cache.set('t.t.sig-000004x', 4); // the second one takes the place of an entry not hit since
    expect(cache.get('t.t.sig-000004x')).toBe(4);
    expect(cache.size).toBe(3);
    expect(cache.get('t.t.sig-000001x')).toBe(1);
    expect(cache.get('t.t.sig-000002x')).toBeUndefined();
    cache.deleteWhere((v) => v === 3);
    expect(cache.get('t.t.sig-000003x')).toBeUndefined();
    cache.clear();
    expect(cache.size).toBe(0);
  });

  it('never answers a value set for another token (fast-check against a Map model)', () => {
    const token = fc.stringMatching(/^[A-Za-z0-9_-]{0,12}(\.[A-Za-z0-9_-]{0,6}){0,2}$/);
    const op = fc.oneof(
      fc.record({ kind: fc.constant('set' as const), token, value: fc.integer({ min: -3, max: 3 }) }),
      fc.record({ kind: fc.constant('get' as const), token }),
      fc.record({ kind: fc.constant('delete' as const), token }),
      fc.record({ kind: fc.constant('deleteWhere' as const), value: fc.integer({ min: -3, max: 3 }) }),
    );
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 8 }), fc.array(op, { maxLength: 200 }), (max, ops) => {
        const cache = new VerifiedTokenCache<number>(max);
        const model = new Map<string, number>();
        for (const o of ops) {
          if (o.kind === 'set') {
            cache.set(o.token, o.value);
            model.set(o.token, o.value);
          } else if (o.kind === 'delete') {
            cache.delete(o.token);
            model.delete(o.token);
          } else if (o.kind === 'deleteWhere') {
            cache.deleteWhere((v) => v === o.value);
            for (const [t, v] of model) if (v === o.value) model.delete(t);
          } else {
            const got = cache.get(o.token);
            // A cache may forget (eviction, a shared slot); it may never invent or mix up values.
            if (got !== undefined) expect(got).toBe(model.get(o.token));
          }
          expect(cache.size).toBeLessThanOrEqual(max);
        }
      }),
    );
  });
});

describe('VerifiedTokenCache eviction', () => {
  const token = (i: number) => `h.p.${String(i).padStart(12, '0')}x`;

  it('stays full and keeps answering through many evictions (every token admitted on its second miss)', () => {
    const cache = new VerifiedTokenCache<number>(100);
    for (let i = 0; i < 10_000; i++) {
      cache.set(token(i), i);
      if (i >= 100) expect(cache.get(token(i))).toBeUndefined();
      cache.set(token(i), i);
      expect(cache.get(token(i))).toBe(i);
    }
    expect(cache.size).toBeLessThanOrEqual(100);
    expect(cache.size).toBeGreaterThan(90);
    cache.deleteWhere((v) => v % 2 === 0);
    for (let i = 20_000; i < 20_100; i++) {
      cache.set(token(i), i);
      cache.set(token(i), i);
    }
    expect(cache.size).toBeLessThanOrEqual(100);
    expect(cache.get(token(20_099))).toBe(20_099);
  });

  /** Sends `tokens` in turn `passes` times, caching each miss as the verifier does; the last pass's hits. */
  function cycle(cache: VerifiedTokenCache<number>, tokens: number, passes: number): number {
    let hits = 0;
    for (let pass = 0; pass < passes; pass++) {
      hits = 0;
      for (let i = 0; i < tokens; i++) {
        if (cache.get(token(i)) === i) hits++;
        else cache.set(token(i), i);
      }
    }
    return hits;
  }

  it('keeps what it holds when more tokens than it holds come in turn (no churn, about half hit)', () => {
    const cache = new VerifiedTokenCache<number>(1000);
    // CLOCK alone would miss every one of these: each token is evicted before it comes round again.
    const hits = cycle(cache, 2000, 10);
    expect(hits).toBeGreaterThanOrEqual(900);
    expect(cache.size).toBe(1000);
    for (let i = 0; i < 1000; i++) expect(cache.get(token(i))).toBe(i);
  });

  it('caches every token of a set that fits, whatever the order', () => {
    const cache = new VerifiedTokenCache<number>(1000);
    expect(cycle(cache, 1000, 3)).toBe(1000);
  });

  it('admits a new token seen again soon, and forgets a first sighting after max / 2 others', () => {
    const cache = new VerifiedTokenCache<number>(100);
    for (let i = 0; i < 100; i++) cache.set(token(i), i);
    cache.set(token(500), 500);
    for (let i = 1000; i < 1010; i++) cache.set(token(i), i); // other first sightings
    cache.set(token(500), 500);
    expect(cache.get(token(500))).toBe(500);
    cache.set(token(600), 600);
    for (let i = 2000; i < 2050; i++) cache.set(token(i), i); // max / 2 of them: forgotten
    cache.set(token(600), 600);
    expect(cache.get(token(600))).toBeUndefined();
    cache.set(token(600), 600);
    expect(cache.get(token(600))).toBe(600);
  });

  it('a cache of one still admits a token on its second sighting', () => {
    const cache = new VerifiedTokenCache<number>(1);
    cache.set(token(1), 1);
    cache.set(token(2), 2);
    expect(cache.get(token(1))).toBe(1);
    cache.set(token(2), 2);
    expect(cache.get(token(2))).toBe(2);
  });
});
