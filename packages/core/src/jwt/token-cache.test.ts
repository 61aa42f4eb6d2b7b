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
    cache.set('t.t.sig-000004x', 4);
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
  it('stays full and keeps answering through many evictions (every token a miss once)', () => {
    const cache = new VerifiedTokenCache<number>(100);
    const token = (i: number) => `h.p.${String(i).padStart(12, '0')}x`;
    for (let i = 0; i < 10_000; i++) {
      cache.set(token(i), i);
      expect(cache.get(token(i))).toBe(i);
    }
    expect(cache.size).toBeLessThanOrEqual(100);
    expect(cache.size).toBeGreaterThan(90);
    cache.deleteWhere((v) => v % 2 === 0);
    for (let i = 20_000; i < 20_100; i++) cache.set(token(i), i);
    expect(cache.size).toBeLessThanOrEqual(100);
    expect(cache.get(token(20_099))).toBe(20_099);
  });
});
