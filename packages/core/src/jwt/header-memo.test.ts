// The verifier's header memo: one parse per distinct protected header, never a header taken for
// another (the last one is matched by a compare of the whole segment, the others by a map).
import { describe, expect, it } from 'vitest';
import { codeOf } from '../../../testing/src/errors.js';
import { HeaderMemo } from './header.js';

const segment = (header: object) => Buffer.from(JSON.stringify(header)).toString('base64url');
const token = (header: object) => `${segment(header)}.e30.c2ln`;
const get = (memo: HeaderMemo, t: string) => memo.get(t, t.indexOf('.'));

describe('HeaderMemo', () => {
  it('parses a header once and returns the same result for every token that carries it', () => {
    const memo = new HeaderMemo();
    const first = get(memo, token({ alg: 'HS256', kid: 'k1', typ: 'at+jwt' }));
    expect(first).toMatchObject({ alg: 'HS256', kid: 'k1', typ: 'application/at+jwt' });
    // A new string with the same header: the same frozen result.
    expect(get(memo, `${segment({ alg: 'HS256', kid: 'k1', typ: 'at+jwt' })}.eyJhIjoxfQ.eA`)).toBe(first);
  });

  it('never takes a header of the same length for the last one', () => {
    const memo = new HeaderMemo();
    const a = get(memo, token({ alg: 'HS256', kid: 'k1' }));
    const b = get(memo, token({ alg: 'HS256', kid: 'k2' }));
    expect(segment({ alg: 'HS256', kid: 'k1' }).length).toBe(segment({ alg: 'HS256', kid: 'k2' }).length);
    expect([a.kid, b.kid]).toEqual(['k1', 'k2']);
    // Alternating: each comes back from the map, still the right one.
    for (let i = 0; i < 4; i++) {
      expect(get(memo, token({ alg: 'HS256', kid: 'k1' }))).toBe(a);
      expect(get(memo, token({ alg: 'HS256', kid: 'k2' }))).toBe(b);
    }
  });

  it('refuses an invalid header every time (only valid headers are remembered)', () => {
    const memo = new HeaderMemo();
    const none = token({ alg: 'none' });
    expect(codeOf(() => get(memo, none))).toBe('token_invalid');
    expect(codeOf(() => get(memo, none))).toBe('token_invalid');
    expect(codeOf(() => get(memo, 'bm90LWpzb24.e30.c2ln'))).toBe('token_malformed');
  });

  it('stays right when more distinct headers come than it holds', () => {
    const memo = new HeaderMemo(4);
    for (let round = 0; round < 3; round++) {
      for (let i = 0; i < 10; i++) expect(get(memo, token({ alg: 'HS256', kid: `k${i}` })).kid).toBe(`k${i}`);
    }
    memo.clear();
    expect(get(memo, token({ alg: 'ES256', kid: 'k0' })).alg).toBe('ES256');
  });
});
