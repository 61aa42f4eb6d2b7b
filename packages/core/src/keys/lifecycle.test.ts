import { describe, expect, it } from 'vitest';
import { expectKeywardError } from '../../../testing/src/errors.js';
import type { KeywardError } from '../errors.js';
import { DAY, key, MIN, T0 } from './__fixtures__/records.js';
import {
  assertTransition,
  checkKeyringInvariants,
  createKeyRecord,
  earliestPending,
  isPublishedStandby,
  prunable,
  retiringExpired,
  revokeKey,
  rotateNow,
  signingStandby,
  standbyActivateAt,
  transition,
  withStandby,
} from './lifecycle.js';
import { resolveRotationPolicy } from './rotation-policy.js';
import type { KeyState } from './types.js';

const policy = resolveRotationPolicy();

const stateError = (fn: () => unknown) => expectKeywardError<KeywardError>(fn, 'key_state_invalid');

describe('assertTransition', () => {
  const legal: [KeyState, KeyState][] = [
    ['pending', 'active'],
    ['active', 'retiring'],
    ['retiring', 'retired'],
    ['pending', 'revoked'],
    ['active', 'revoked'],
    ['retiring', 'revoked'],
    ['retired', 'revoked'],
  ];
  it.each(legal)('allows %s → %s', (from, to) => {
    expect(() => assertTransition(key('k1', from), to)).not.toThrow();
  });

  it.each([
    ['revoked', 'active', 'key "k1" cannot go from revoked to active: revoked is final'],
    ['revoked', 'revoked', 'key "k1" cannot go from revoked to revoked: revoked is final'],
    ['retired', 'active', 'key "k1" cannot go from retired to active: a retired key can only be revoked'],
    ['retired', 'retiring', 'key "k1" cannot go from retired to retiring: a retired key can only be revoked'],
    ['active', 'pending', 'key "k1" cannot go from active to pending: keys never move back in the lifecycle'],
    [
      'retiring',
      'active',
      'key "k1" cannot go from retiring to active: keys never move back in the lifecycle',
    ],
    ['pending', 'retiring', 'key "k1" cannot go from pending to retiring: it must pass through active first'],
    ['pending', 'retired', 'key "k1" cannot go from pending to retired: it must pass through active first'],
    ['active', 'retired', 'key "k1" cannot go from active to retired: it must pass through retiring first'],
    ['active', 'active', 'key "k1" cannot go from active to active: it is already in that state'],
  ] as const)('refuses %s → %s', (from, to, message) => {
    const err = stateError(() => assertTransition(key('k1', from), to));
    expect(err.message).toBe(message);
    expect(err.details).toEqual({ kid: 'k1', from, to });
  });
});

describe('transition', () => {
  const now = T0 + 10 * DAY;

  it('sets activatedAt on activation and returns a new record', () => {
    const pending = key('k1', 'pending', { activatedAt: now + DAY });
    const active = transition(pending, 'active', now);
    expect(active).toMatchObject({ state: 'active', activatedAt: now });
    expect(pending.state).toBe('pending');
  });

  it('sets retiringAt and verifyUntil when a signing key retires', () => {
    expect(transition(key('k1', 'active'), 'retiring', now, { verifyUntil: now + 31 * MIN })).toMatchObject({
      state: 'retiring',
      retiringAt: now,
      verifyUntil: now + 31 * MIN,
    });
  });

  it('refuses to retire a sig or enc key without a verifyUntil at or after now', () => {
    expect(stateError(() => transition(key('k1', 'active'), 'retiring', now)).message).toContain(
      'needs a verifyUntil',
    );
    stateError(() => transition(key('e1', 'active', { use: 'enc', alg: 'A256GCM' }), 'retiring', now));
    stateError(() => transition(key('k1', 'active'), 'retiring', now, { verifyUntil: now - 1 }));
  });

  it('retires a data key with no verifyUntil: rewrap decides when it is empty', () => {
    const data = key('d1', 'active', { use: 'data', alg: 'fernet' });
    const retiring = transition(data, 'retiring', now);
    expect(retiring).toMatchObject({ state: 'retiring', retiringAt: now });
    expect(retiring.verifyUntil).toBeUndefined();
  });

  it('sets retiredAt and revokedAt with the reason', () => {
    expect(transition(key('k1', 'retiring'), 'retired', now)).toMatchObject({
      state: 'retired',
      retiredAt: now,
    });
    expect(transition(key('k1', 'active'), 'revoked', now, { revokedReason: 'leaked' })).toMatchObject({
      state: 'revoked',
      revokedAt: now,
      revokedReason: 'leaked',
    });
  });

  it('refuses illegal moves and a non-finite time', () => {
    stateError(() => transition(key('k1', 'revoked'), 'active', now));
    stateError(() => transition(key('k1', 'pending'), 'active', Number.NaN));
  });
});

describe('checkKeyringInvariants', () => {
  it('accepts a sound keyring', () => {
    const keys = [
      key('s0', 'retired'),
      key('s1', 'retiring'),
      key('s2', 'active'),
      key('s3', 'pending'),
      key('d1', 'active', { use: 'data', alg: 'fernet' }),
      key('x', 'revoked', { use: 'enc', alg: 'A256GCM' }),
    ];
    expect(checkKeyringInvariants(keys)).toEqual([]);
  });

  it('reports each broken invariant', () => {
    const problems = checkKeyringInvariants([
      key('a', 'active'),
      key('b', 'active'),
      key('b', 'revoked', { revokedAt: undefined }),
      key('p', 'pending', { use: 'data', alg: 'fernet' }),
      key('r', 'retiring', { verifyUntil: T0 }),
      key('q', 'retiring', { verifyUntil: undefined }),
      key('e', 'active', { use: 'enc', alg: 'EdDSA' }),
      key('z', 'retired', { retiredAt: undefined }),
      key('y', 'active', { use: 'enc', alg: 'A256GCM', activatedAt: undefined }),
      key('w', 'active', { use: 'enc', alg: 'A256GCM', activatedAt: T0 - 1 }),
    ]);
    expect(problems).toEqual([
      'duplicate kid "b"',
      'key "b" is revoked with no revokedAt',
      'key "r" has verifyUntil before retiringAt',
      'key "q" is a retiring sig key with no verifyUntil',
      'key "e" has alg EdDSA, not valid for use "enc"',
      'key "z" is retired with no retiredAt',
      'key "y" is active with no activatedAt',
      'key "w" was activated before it was created',
      'use "sig" has 2 active keys (a, b), expected exactly one',
      'use "enc" has 3 active keys (e, y, w), expected exactly one',
      'use "data" has 0 active keys, expected exactly one',
    ]);
  });

  it('does not demand an active key for a use that only has retired or revoked keys', () => {
    expect(
      checkKeyringInvariants([key('a', 'active'), key('e', 'retired', { use: 'enc', alg: 'A256GCM' })]),
    ).toEqual([]);
  });
});

describe('rotateNow', () => {
  const now = T0 + 5 * DAY;
  let n = 0;
  const newKid = () => `new-${++n}`;

  it('with no standby, generates and activates a new key; the old one verifies until now + retainFor', () => {
    n = 0;
    const next = rotateNow([key('s1', 'active')], 'sig', { policy, now, newKid });
    expect(next).toEqual([
      { ...key('s1', 'active'), state: 'retiring', retiringAt: now, verifyUntil: now + 31 * MIN },
      {
        kid: 'new-1',
        use: 'sig',
        alg: 'ES256',
        state: 'active',
        origin: 'generated',
        createdAt: now,
        activatedAt: now,
        // keeps the replaced key's due time (T0 + the 90-day period)
        rotateAt: T0 + 90 * DAY,
      },
      // the next standby, published from now, due when the replaced key was
      {
        kid: 'new-2',
        use: 'sig',
        alg: 'ES256',
        state: 'pending',
        origin: 'generated',
        createdAt: now,
        activatedAt: T0 + 90 * DAY,
      },
    ]);
    expect(checkKeyringInvariants(next)).toEqual([]);
  });

  it('promotes the standby (already published) and appends the following standby', () => {
    const kids: string[] = [];
    const next = rotateNow([key('s1', 'active'), key('s2', 'pending', { activatedAt: now + DAY })], 'sig', {
      policy,
      now,
      newKid: (use) => {
        kids.push(use);
        return 's3';
      },
    });
    expect(kids).toEqual(['sig']);
    expect(next.map((k) => [k.kid, k.state, k.activatedAt, k.createdAt])).toEqual([
      ['s1', 'retiring', T0, T0],
      ['s2', 'active', now, T0],
      ['s3', 'pending', T0 + 90 * DAY, now],
    ]);
    expect(checkKeyringInvariants(next)).toEqual([]);
  });

  it('a standby made later than publishLead before the due time is due a full publishLead after it was made', () => {
    const late = T0 + 90 * DAY - MIN;
    const next = rotateNow([key('s1', 'active'), key('s2', 'pending')], 'sig', {
      policy,
      now: late,
      newKid: () => 's3',
    });
    expect(next.find((k) => k.kid === 's3')).toMatchObject({ state: 'pending', activatedAt: late + DAY });
  });

  it('leaves a data key retiring with no verifyUntil and touches no other use', () => {
    const keys = [key('s1', 'active'), key('d1', 'active', { use: 'data', alg: 'fernet' })];
    const next = rotateNow(keys, 'data', { policy, now, newKid: () => 'd2' });
    expect(next[0]).toBe(keys[0]);
    expect(next[1]).toMatchObject({ state: 'retiring', retiringAt: now });
    expect(next[1]?.verifyUntil).toBeUndefined();
    expect(next[2]).toMatchObject({ kid: 'd2', use: 'data', alg: 'fernet', state: 'active' });
  });

  it('refuses a newKid that collides with an existing kid', () => {
    stateError(() => rotateNow([key('s1', 'active')], 'sig', { policy, now, newKid: () => 's1' }));
  });
});

describe('revokeKey', () => {
  const now = T0 + 5 * DAY;

  it('revoking the active key promotes the standby and appends the following standby in the same step', () => {
    const next = revokeKey([key('s1', 'active'), key('s2', 'pending')], 's1', {
      policy,
      now,
      newKid: () => 's3',
      reason: 'leaked',
    });
    expect(next.map((k) => [k.kid, k.state])).toEqual([
      ['s1', 'revoked'],
      ['s2', 'active'],
      ['s3', 'pending'],
    ]);
    expect(next[2]).toMatchObject({ createdAt: now, activatedAt: now + policy.sigRotateEvery });
    expect(next[0]).toMatchObject({ revokedAt: now, revokedReason: 'leaked' });
    expect(checkKeyringInvariants(next)).toEqual([]);
  });

  it('revoking the active key with nothing pending generates an active replacement and a standby', () => {
    let i = 8;
    const next = revokeKey([key('s1', 'active')], 's1', { policy, now, newKid: () => `s${++i}` });
    expect(next.map((k) => [k.kid, k.state])).toEqual([
      ['s1', 'revoked'],
      ['s9', 'active'],
      ['s10', 'pending'],
    ]);
  });

  it('revoking a retiring key changes nothing else', () => {
    const keys = [key('s1', 'retiring'), key('s2', 'active'), key('s3', 'pending')];
    const next = revokeKey(keys, 's1', { policy, now, newKid: () => 'x' });
    expect(next.map((k) => k.state)).toEqual(['revoked', 'active', 'pending']);
    expect(next[1]).toBe(keys[1]);
    expect(next[2]).toBe(keys[2]);
  });

  it('revoking the standby replaces it with a new one', () => {
    const next = revokeKey([key('s1', 'active'), key('s2', 'pending')], 's2', {
      policy,
      now,
      newKid: () => 's3',
    });
    expect(next.map((k) => [k.kid, k.state])).toEqual([
      ['s1', 'active'],
      ['s2', 'revoked'],
      ['s3', 'pending'],
    ]);
  });

  it('is never refused by maxRetiringKeys', () => {
    const retiring = [1, 2, 3, 4, 5].map((i) => key(`r${i}`, 'retiring', { verifyUntil: now + DAY }));
    const next = revokeKey([...retiring, key('s1', 'active'), key('s2', 'pending')], 's1', {
      policy,
      now,
      newKid: () => 's3',
    });
    expect(next.find((k) => k.kid === 's2')?.state).toBe('active');
  });

  it('fails for an unknown kid and for a key already revoked', () => {
    expect(() => revokeKey([key('s1', 'active')], 'nope', { policy, now, newKid: () => 'x' })).toThrow(
      expect.objectContaining({ code: 'key_not_found' }),
    );
    stateError(() => revokeKey([key('s1', 'revoked')], 's1', { policy, now, newKid: () => 'x' }));
  });
});

describe('earliestPending and createKeyRecord', () => {
  it('picks the pending key due first, then the oldest, then by kid', () => {
    const keys = [
      key('b', 'pending', { activatedAt: T0 + 2 }),
      key('a', 'pending', { activatedAt: T0 + 2 }),
      key('c', 'pending', { activatedAt: T0 + 3 }),
      key('d', 'pending', { use: 'data', alg: 'fernet', activatedAt: T0 }),
    ];
    expect(earliestPending(keys, 'sig')?.kid).toBe('a');
    expect(earliestPending(keys, 'enc')).toBeUndefined();
  });

  it('creates a generated record', () => {
    expect(
      createKeyRecord({ kid: 'k', use: 'enc', alg: 'A256GCM', state: 'pending', now: 5, activatedAt: 9 }),
    ).toEqual({
      kid: 'k',
      use: 'enc',
      alg: 'A256GCM',
      state: 'pending',
      origin: 'generated',
      createdAt: 5,
      activatedAt: 9,
    });
  });
});

describe('on-demand rotation and the schedule', () => {
  it('does not move the schedule: the new key inherits the due time of the key it replaced', async () => {
    const { resolveRotationPolicy } = await import('./rotation-policy.js');
    const { planRotation } = await import('./rotation-plan.js');
    const policy = resolveRotationPolicy({ sigRotateEvery: '90d', publishLead: '1d', uses: ['sig'] });
    const day = 86_400_000;
    const t0 = Date.UTC(2026, 0, 1);
    const start = [
      {
        kid: 'a',
        use: 'sig',
        alg: 'EdDSA',
        state: 'active',
        origin: 'generated',
        createdAt: t0,
        activatedAt: t0,
      },
    ] as const;
    const kids = ['b', 'c'];
    const rotated = rotateNow([...start], 'sig', { policy, now: t0 + 30 * day, newKid: () => kids.shift()! });
    const b = rotated.find((k) => k.kid === 'b');
    expect(b).toMatchObject({ state: 'active', activatedAt: t0 + 30 * day, rotateAt: t0 + 90 * day });
    // The standby c takes over on day 90, not day 120.
    expect(rotated.find((k) => k.kid === 'c')).toMatchObject({
      state: 'pending',
      activatedAt: t0 + 90 * day,
    });
    const activates = (at: number) => planRotation(rotated, policy, at).filter((a) => a.type === 'activate');
    expect(activates(t0 + 90 * day - 1)).toEqual([]);
    expect(activates(t0 + 90 * day)).toMatchObject([{ type: 'activate', kid: 'c', demote: 'b' }]);
  });
});

describe('the signing standby', () => {
  const now = T0 + 5 * DAY;

  it('is published once it has been in the JWKS for jwksMaxAge, not a millisecond earlier', () => {
    const standby = key('s2', 'pending', { createdAt: now });
    expect(isPublishedStandby(standby, policy, now + policy.jwksMaxAge - 1)).toBe(false);
    expect(isPublishedStandby(standby, policy, now + policy.jwksMaxAge)).toBe(true);
    expect(isPublishedStandby({ ...standby, createdWithKeyring: true }, policy, now)).toBe(true);
    // Only pending signing keys are standbys.
    expect(isPublishedStandby({ ...standby, state: 'active' }, policy, now + DAY)).toBe(false);
    expect(isPublishedStandby({ ...standby, use: 'enc', alg: 'A256GCM' }, policy, now + DAY)).toBe(false);
  });

  it('signingStandby names the key a rotation would promote', () => {
    const keys = [key('s1', 'active'), key('s2', 'pending', { createdAt: now, activatedAt: now + DAY })];
    expect(signingStandby(keys, policy, now)).toEqual({ record: keys[1], published: false });
    expect(signingStandby(keys, policy, now + policy.jwksMaxAge)?.published).toBe(true);
    expect(signingStandby([key('s1', 'active')], policy, now)).toBeUndefined();
  });

  it('withStandby appends one only when an active signing key has none', () => {
    const opts = { policy, now, newKid: () => 's9' };
    const withOne = [key('s1', 'active'), key('s2', 'pending')];
    expect(withStandby(withOne, opts)).toBe(withOne);
    const onlyData = [key('d1', 'active', { use: 'data', alg: 'fernet' })];
    expect(withStandby(onlyData, opts)).toBe(onlyData);
    expect(withStandby([key('s1', 'active')], opts)[1]).toMatchObject({
      kid: 's9',
      state: 'pending',
      createdAt: now,
    });
    stateError(() => withStandby([key('s1', 'active')], { ...opts, newKid: () => 's1' }));
  });

  it('standbyActivateAt is the active key due time, never sooner than publishLead', () => {
    expect(standbyActivateAt(key('s1', 'active'), policy, now)).toBe(T0 + 90 * DAY);
    expect(standbyActivateAt(key('s1', 'active', { rotateAt: now + MIN }), policy, now)).toBe(now + DAY);
    expect(standbyActivateAt(undefined, policy, now)).toBe(now + 90 * DAY);
  });
});

describe('a bounded keyring', () => {
  const now = T0 + 5 * DAY;
  const retiring = (n: number, use: 'sig' | 'data' = 'sig', verifyUntil = now + DAY) =>
    Array.from({ length: n }, (_, i) =>
      key(
        `${use}-r${i}`,
        'retiring',
        use === 'data' ? { use, alg: 'fernet', verifyUntil: undefined } : { verifyUntil },
      ),
    );

  it('refuses an on-demand rotation while maxRetiringKeys retiring keys still verify', () => {
    const keys = [...retiring(5), key('s1', 'active'), key('s2', 'pending')];
    const err = expectKeywardError<KeywardError>(
      () => rotateNow(keys, 'sig', { policy, now, newKid: () => 's3' }),
      'rotation_limit',
    );
    expect(err.details).toMatchObject({ use: 'sig', retiring: 5, maxRetiringKeys: 5 });
    expect(err.message).toContain(new Date(now + DAY).toISOString());
    // One fewer is fine.
    expect(() => rotateNow(keys.slice(1), 'sig', { policy, now, newKid: () => 's3' })).not.toThrow();
    // A smaller limit refuses earlier.
    const tight = resolveRotationPolicy({ maxRetiringKeys: 1 });
    expectKeywardError(
      () => rotateNow(keys.slice(4), 'sig', { policy: tight, now, newKid: () => 's3' }),
      'rotation_limit',
    );
  });

  it('counts only the rotated use, and data keys until rewrap retires them', () => {
    const keys = [
      ...retiring(5, 'data'),
      key('d1', 'active', { use: 'data', alg: 'fernet' }),
      key('s1', 'active'),
    ];
    expectKeywardError(() => rotateNow(keys, 'data', { policy, now, newKid: () => 'd2' }), 'rotation_limit');
    let i = 0;
    expect(() => rotateNow(keys, 'sig', { policy, now, newKid: () => `s${++i + 1}` })).not.toThrow();
  });

  it('retires retiring keys past their verifyUntil in the same step, so they no longer count', () => {
    const keys = [...retiring(5, 'sig', now - 1), key('s1', 'active'), key('s2', 'pending')];
    const next = rotateNow(keys, 'sig', { policy, now, newKid: () => 's3' });
    expect(next.filter((k) => k.state === 'retired').map((k) => [k.kid, k.retiredAt])).toEqual(
      retiring(5).map((k) => [k.kid, now]),
    );
    expect(next.filter((k) => k.state === 'retiring').map((k) => k.kid)).toEqual(['s1']);
    expect(checkKeyringInvariants(next)).toEqual([]);
  });

  it('retiringExpired and prunable', () => {
    const r = key('r', 'retiring', { verifyUntil: now });
    expect(retiringExpired(r, policy, now)).toBe(false);
    expect(retiringExpired(r, policy, now + 1)).toBe(true);
    expect(retiringExpired({ ...r, use: 'data', alg: 'fernet' }, policy, now + DAY)).toBe(false);
    const old = key('o', 'retired', { retiredAt: now });
    expect(prunable(old, policy, now + 30 * DAY - 1)).toBe(false);
    expect(prunable(old, policy, now + 30 * DAY)).toBe(true);
    expect(prunable({ ...old, state: 'revoked', revokedAt: now }, policy, now + 90 * DAY)).toBe(false);
  });
});
