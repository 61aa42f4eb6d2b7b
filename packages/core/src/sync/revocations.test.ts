import { describe, expect, it } from 'vitest';
import { createMemoryStore } from '../store/memory.js';
import {
  encodeJtiKey,
  encodeSubjectKey,
  persistRevocation,
  REVOCATION_GENERATION_KEY,
  REVOCATION_JTI_PREFIX,
  REVOCATION_SUB_PREFIX,
  type RevocationEvent,
  RevocationSet,
  SUBJECT_ACK_CLAIM,
} from './revocations.js';

const T0 = Date.UTC(2030, 0, 1);

async function keysOf(store: ReturnType<typeof createMemoryStore>, prefix: string): Promise<string[]> {
  return (await store.list(prefix)).entries.map((e) => e.key).sort();
}

describe('revocation store layout', () => {
  it('writes jtis under revoked:jti/ and subjects under revoked:sub/, ids encoded so they never contain "/"', async () => {
    const t = { now: T0 };
    const store = createMemoryStore({ now: () => t.now });
    const odd = ['plain-JTI_1', 'a/b', '~x', 'é/ü', ''];
    for (const jti of odd)
      await persistRevocation(store, { type: 'revoke-jti', jti, until: T0 + 60_000 }, T0);
    await persistRevocation(
      store,
      { type: 'revoke-subject', sub: 'tenant/alice', notBefore: T0, until: T0 + 120_000 },
      T0,
    );
    const jtiKeys = await keysOf(store, REVOCATION_JTI_PREFIX);
    expect(jtiKeys).toHaveLength(odd.length);
    for (const key of jtiKeys) expect(key.slice(REVOCATION_JTI_PREFIX.length)).not.toContain('/');
    expect(jtiKeys).toContain(`${REVOCATION_JTI_PREFIX}plain-JTI_1`); // keyward's own jtis stay readable
    expect(await keysOf(store, REVOCATION_SUB_PREFIX)).toEqual([
      `${REVOCATION_SUB_PREFIX}${Buffer.from('tenant/alice').toString('base64url')}`,
    ]);
    expect(encodeJtiKey('a/b')).not.toBe(encodeJtiKey('~YS9i')); // one-to-one
    expect(encodeSubjectKey('a/b')).toBe('YS9i');

    const set = new RevocationSet();
    await set.load(store, T0);
    expect(new Set([...set.entries()].map((e) => (e.type === 'revoke-jti' ? e.jti : e.sub)))).toEqual(
      new Set([...odd, 'tenant/alice']),
    );
    expect(set.generation).toBe(odd.length + 1);
  });

  it('gives subject revocations a TTL, and keeps every record for the grace past its until', async () => {
    const t = { now: T0 };
    const store = createMemoryStore({ now: () => t.now });
    await persistRevocation(
      store,
      { type: 'revoke-subject', sub: 's', notBefore: T0, until: T0 + 10_000 },
      T0,
      {
        graceMs: 5_000,
      },
    );
    await persistRevocation(store, { type: 'revoke-jti', jti: 'j', until: T0 + 3_000 }, T0, {
      graceMs: 5_000,
    });
    t.now = T0 + 7_999;
    expect([
      ...(await keysOf(store, REVOCATION_JTI_PREFIX)),
      ...(await keysOf(store, REVOCATION_SUB_PREFIX)),
    ]).toHaveLength(2);
    t.now = T0 + 8_000;
    expect(await keysOf(store, REVOCATION_JTI_PREFIX)).toEqual([]);
    t.now = T0 + 14_999;
    expect(await keysOf(store, REVOCATION_SUB_PREFIX)).toHaveLength(1);
    t.now = T0 + 15_000;
    expect(await keysOf(store, REVOCATION_SUB_PREFIX)).toEqual([]);
  });

  it('reads a subject record of an older version (a bare not-before) with the retention it is given', async () => {
    const store = createMemoryStore({ now: () => T0 });
    await store.set(`${REVOCATION_SUB_PREFIX}${encodeSubjectKey('old')}`, String(T0 - 1000));
    await store.set(`${REVOCATION_SUB_PREFIX}!!`, '1'); // not base64url: ignored
    await store.set(`${REVOCATION_JTI_PREFIX}x`, 'garbage'); // not a number: ignored
    const set = new RevocationSet({ subjectRetainMs: 30_000 });
    await set.load(store, T0);
    expect([...set.entries()]).toEqual([
      { type: 'revoke-subject', sub: 'old', notBefore: T0 - 1000, until: T0 + 29_000 },
    ]);
  });
});

describe('RevocationSet', () => {
  it('exports what it holds, prunes in expiry order, and keeps an entry a later revocation extended', () => {
    const set = new RevocationSet({ graceMs: 1000 });
    set.apply({ type: 'revoke-jti', jti: 'a', until: T0 + 5000 });
    set.apply({ type: 'revoke-jti', jti: 'b', until: T0 + 1000 });
    set.apply({ type: 'revoke-subject', sub: 's', notBefore: T0, until: T0 + 3000 });
    set.apply({ type: 'revoke-subject', sub: 's', notBefore: T0 + 500, until: T0 + 8000 }); // extends
    expect(set.apply({ type: 'revoke-jti', jti: 'a', until: T0 + 5000 })).toBe(false); // duplicate
    expect([...set.entries()]).toEqual<RevocationEvent[]>([
      { type: 'revoke-jti', jti: 'a', until: T0 + 5000 },
      { type: 'revoke-jti', jti: 'b', until: T0 + 1000 },
      { type: 'revoke-subject', sub: 's', notBefore: T0 + 500, until: T0 + 8000 },
    ]);
    set.prune(T0 + 1999);
    expect(set.size).toEqual({ jti: 2, subjects: 1 });
    set.prune(T0 + 2000);
    expect(set.size).toEqual({ jti: 1, subjects: 1 });
    set.prune(T0 + 4000); // the subject's first expiry is due, but it was extended
    expect(set.check({ sub: 's', iat: Math.floor(T0 / 1000) })).toBe('token_revoked');
    set.prune(T0 + 6000);
    expect(set.size).toEqual({ jti: 0, subjects: 1 });
    set.prune(T0 + 9000);
    expect(set.size).toEqual({ jti: 0, subjects: 0 });
    expect([...set.entries()]).toEqual([]);
  });

  it('advances its generation over announcements that arrive out of order, and never back', () => {
    const set = new RevocationSet();
    const jti = (n: number): RevocationEvent => ({ type: 'revoke-jti', jti: `j${n}`, until: T0 + 60_000 });
    set.apply(jti(3), 3);
    set.apply(jti(2), 2);
    expect(set.generation).toBe(0); // 1 is missing
    set.apply(jti(1), 1);
    expect(set.generation).toBe(3);
    set.apply(jti(2), 2); // duplicate
    set.apply(jti(5), 5);
    expect(set.generation).toBe(3);
    set.rebase(7); // never forward through rebase
    expect(set.generation).toBe(3);
  });

  it('merges a reload with what was applied meanwhile and moves to the generation read before listing', async () => {
    const store = createMemoryStore({ now: () => T0 });
    await persistRevocation(store, { type: 'revoke-jti', jti: 'stored', until: T0 + 60_000 }, T0);
    const set = new RevocationSet();
    const original = store.list.bind(store);
    let landed = false;
    store.list = async (prefix, options) => {
      const page = await original(prefix, options);
      if (!landed) {
        landed = true;
        // Lands while the reload lists: its jti page was already read, its announcement is applied.
        const event = { type: 'revoke-jti' as const, jti: 'meanwhile', until: T0 + 60_000 };
        set.apply(event, await persistRevocation(store, event, T0));
      }
      return page;
    };
    await set.load(store, T0);
    expect(set.check({ jti: 'meanwhile' })).toBe('token_revoked');
    expect(set.check({ jti: 'stored' })).toBe('token_revoked');
    expect(set.generation).toBe(2);
    expect(await store.get(REVOCATION_GENERATION_KEY)).toBe('2');
  });

  it('revokes a subject token issued up to the clock skew after the not-before, unless its issuer knew the not-before', () => {
    const set = new RevocationSet({ clockSkewMs: 2000 });
    const notBefore = T0 + 10_500;
    set.apply({ type: 'revoke-subject', sub: 'u', notBefore, until: T0 + 60_000 });
    const sec = (ms: number) => Math.floor(ms / 1000);
    expect(set.check({ sub: 'u', iat: sec(notBefore) })).toBe('token_revoked');
    expect(set.check({ sub: 'u', iat: sec(notBefore) + 2 })).toBe('token_revoked'); // clock 2 s ahead
    expect(set.check({ sub: 'u', iat: sec(notBefore) + 3 })).toBeUndefined();
    expect(set.check({ sub: 'u' })).toBe('token_revoked');
    // Issued by an instance that knew it: past the not-before, inside the skew window.
    expect(set.check({ sub: 'u', iat: sec(notBefore) + 1, [SUBJECT_ACK_CLAIM]: notBefore })).toBeUndefined();
    expect(set.check({ sub: 'u', iat: sec(notBefore), [SUBJECT_ACK_CLAIM]: notBefore })).toBe(
      'token_revoked',
    );
    // It knew an older not-before only.
    expect(set.check({ sub: 'u', iat: sec(notBefore) + 1, [SUBJECT_ACK_CLAIM]: notBefore - 1 })).toBe(
      'token_revoked',
    );
    expect(set.check({ sub: 'other', iat: sec(notBefore) })).toBeUndefined();
  });
});
