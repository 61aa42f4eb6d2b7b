import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { KeywardError } from '../errors.js';
import { DAY, HOUR, key, MIN, T0 } from './__fixtures__/records.js';
import {
  checkKeyringInvariants,
  prunable,
  retiringExpired,
  revokeKey,
  rotateNow,
  signingStandby,
  stateRank,
} from './lifecycle.js';
import {
  applyRotationActions,
  planRotation,
  publishedKids,
  retirableDataKeys,
  retireDataKey,
  simulateRotation,
} from './rotation-plan.js';
import { type RotationPolicy, resolveRotationPolicy } from './rotation-policy.js';
import type { KeyRecord, KeyUse } from './types.js';

const policy = resolveRotationPolicy();
const sigOnly = resolveRotationPolicy({ uses: ['sig'] });
const encOnly = resolveRotationPolicy({ uses: ['enc'] });
const kidOf = (use: string) => `new-${use}`;
/** A `newKid` handing out `new-<use>`, then `new-<use>-2`, `new-<use>-3`… */
const counterKids = () => {
  const n = new Map<string, number>();
  return (use: string) => {
    const i = (n.get(use) ?? 0) + 1;
    n.set(use, i);
    return i === 1 ? `new-${use}` : `new-${use}-${i}`;
  };
};
const enc = (kid: string, state: KeyRecord['state'], over: Partial<KeyRecord> = {}) =>
  key(kid, state, { use: 'enc', alg: 'A256GCM', ...over });
/** The signing standby of a keyring whose active key was activated at T0. */
const standby = () => key('sb', 'pending', { activatedAt: T0 + 90 * DAY });

describe('planRotation', () => {
  it('bootstraps every configured use of an empty keyring', () => {
    expect(planRotation([], resolveRotationPolicy({ signingAlg: 'ES256' }), T0)).toEqual([
      { type: 'bootstrap', use: 'sig', alg: 'ES256' },
      { type: 'generate', use: 'sig', alg: 'ES256', activateAt: T0 + 90 * DAY },
      { type: 'bootstrap', use: 'enc', alg: 'A256GCM' },
      { type: 'bootstrap', use: 'data', alg: 'fernet' },
    ]);
  });

  it('with no active key, activates a pending key at once rather than bootstrapping', () => {
    expect(planRotation([key('p', 'pending', { activatedAt: T0 + DAY })], sigOnly, T0)).toEqual([
      { type: 'activate', kid: 'p', use: 'sig', demote: undefined, verifyUntil: undefined },
      // and the signing keys get their next standby at once
      { type: 'generate', use: 'sig', alg: 'ES256', activateAt: T0 + 90 * DAY },
    ]);
    expect(planRotation([enc('p', 'pending', { activatedAt: T0 + DAY })], encOnly, T0)).toEqual([
      { type: 'activate', kid: 'p', use: 'enc', demote: undefined, verifyUntil: undefined },
    ]);
  });

  it('does nothing for a young active key with its standby', () => {
    expect(planRotation([key('s1', 'active'), standby()], sigOnly, T0 + 30 * DAY)).toEqual([]);
    expect(planRotation([enc('e1', 'active')], encOnly, T0 + 30 * DAY)).toEqual([]);
  });

  it('gives an active signing key without a standby one at once, due at its rotation time', () => {
    expect(planRotation([key('s1', 'active')], sigOnly, T0 + 30 * DAY)).toEqual([
      { type: 'generate', use: 'sig', alg: 'ES256', activateAt: T0 + 90 * DAY },
    ]);
  });

  it('generates a pending enc key publishLead before the rotation is due, not a millisecond earlier', () => {
    const keys = [enc('e1', 'active')];
    const due = T0 + 90 * DAY - DAY;
    expect(planRotation(keys, encOnly, due - 1)).toEqual([]);
    expect(planRotation(keys, encOnly, due)).toEqual([
      { type: 'generate', use: 'enc', alg: 'A256GCM', activateAt: T0 + 90 * DAY },
    ]);
  });

  it('when the scheduler runs late, the new key still waits a full publishLead', () => {
    const now = T0 + 100 * DAY;
    expect(planRotation([key('s1', 'active')], sigOnly, now)).toEqual([
      { type: 'generate', use: 'sig', alg: 'ES256', activateAt: now + DAY },
    ]);
  });

  it('activates a due pending key and demotes the active one until now + retainFor', () => {
    const keys = [
      key('s1', 'active'),
      key('s2', 'pending', { createdAt: T0 + 89 * DAY, activatedAt: T0 + 90 * DAY }),
    ];
    expect(planRotation(keys, sigOnly, T0 + 90 * DAY - 1)).toEqual([]);
    const now = T0 + 90 * DAY + 5;
    expect(planRotation(keys, sigOnly, now)).toEqual([
      { type: 'activate', kid: 's2', use: 'sig', demote: 's1', verifyUntil: now + 31 * MIN },
      // the following standby, due one period after this activation
      { type: 'generate', use: 'sig', alg: 'ES256', activateAt: now + 90 * DAY },
    ]);
  });

  it('generates no second standby when another pending signing key remains', () => {
    const keys = [
      key('s1', 'active'),
      key('s2', 'pending', { activatedAt: T0 + 90 * DAY }),
      key('s3', 'pending', { activatedAt: T0 + 180 * DAY }),
    ];
    expect(planRotation(keys, sigOnly, T0 + 90 * DAY).map((a) => a.type)).toEqual(['activate']);
  });

  it('never activates a key published less than publishLead ago, whatever its planned time', () => {
    const keys = [key('s1', 'active'), key('s2', 'pending', { createdAt: T0 + 10 * DAY, activatedAt: T0 })];
    expect(planRotation(keys, sigOnly, T0 + 11 * DAY - 1)).toEqual([]);
    expect(planRotation(keys, sigOnly, T0 + 11 * DAY).map((a) => a.type)).toEqual(['activate', 'generate']);
  });

  it('retires a retiring signing key only after verifyUntil', () => {
    const keys = [key('s1', 'retiring'), key('s2', 'active', { activatedAt: T0 + DAY }), standby()];
    const verifyUntil = T0 + DAY + 31 * MIN;
    expect(planRotation(keys, sigOnly, verifyUntil)).toEqual([]);
    expect(planRotation(keys, sigOnly, verifyUntil + 1)).toEqual([{ type: 'retire', kid: 's1' }]);
  });

  it('falls back to retiringAt + retainFor for a retiring key stored without verifyUntil', () => {
    const keys = [
      key('s1', 'retiring', { verifyUntil: undefined }),
      key('s2', 'active', { activatedAt: T0 + DAY }),
      standby(),
    ];
    expect(planRotation(keys, sigOnly, T0 + DAY + 31 * MIN)).toEqual([]);
    expect(planRotation(keys, sigOnly, T0 + DAY + 31 * MIN + 1)).toEqual([{ type: 'retire', kid: 's1' }]);
  });

  it('never retires a data key by time', () => {
    const keys = [
      key('d1', 'retiring', { use: 'data', alg: 'fernet', verifyUntil: undefined }),
      key('d2', 'active', { use: 'data', alg: 'fernet', activatedAt: T0 + 500 * DAY }),
    ];
    expect(planRotation(keys, resolveRotationPolicy({ uses: ['data'] }), T0 + 501 * DAY)).toEqual([]);
  });

  it('demotes a data key with no verifyUntil', () => {
    const data = resolveRotationPolicy({ uses: ['data'] });
    const keys = [
      key('d1', 'active', { use: 'data', alg: 'fernet' }),
      key('d2', 'pending', { use: 'data', alg: 'fernet', activatedAt: T0 + 30 * DAY }),
    ];
    const actions = planRotation(keys, data, T0 + 30 * DAY);
    expect(actions).toEqual([
      { type: 'activate', kid: 'd2', use: 'data', demote: 'd1', verifyUntil: undefined },
    ]);
    const next = applyRotationActions(keys, actions, T0 + 30 * DAY, kidOf);
    expect(next[0]).toMatchObject({ state: 'retiring', retiringAt: T0 + 30 * DAY });
    expect(next[0]?.verifyUntil).toBeUndefined();
  });

  it('uses the configured signing algorithm for the next key (algorithm migration)', () => {
    const actions = planRotation(
      [key('s1', 'active', { alg: 'HS256' })],
      resolveRotationPolicy({ uses: ['sig'] }),
      T0 + 89 * DAY,
    );
    expect(actions).toEqual([{ type: 'generate', use: 'sig', alg: 'ES256', activateAt: T0 + 90 * DAY }]);
  });
});

describe('pruning retired records', () => {
  it('prunes a retired record once retiredRetention has passed since it retired, of any use', () => {
    const retiredAt = T0 + 2 * DAY;
    const keys = [
      key('s1', 'retired', { retiredAt }),
      key('s0', 'retired', { retiredAt: retiredAt + 1 }),
      key('d1', 'retired', { use: 'data', alg: 'fernet', retiredAt }),
      key('gone', 'revoked'),
      key('s2', 'active', { activatedAt: T0 + DAY }),
      standby(),
    ];
    const both = resolveRotationPolicy({ uses: ['sig', 'data'] });
    const data = key('d2', 'active', { use: 'data', alg: 'fernet', activatedAt: T0 + 31 * DAY });
    const at = retiredAt + both.retiredRetention;
    expect(planRotation([...keys, data], both, at - 1)).toEqual([]);
    const actions = planRotation([...keys, data], both, at);
    expect(actions).toEqual([
      { type: 'prune', kid: 'd1' },
      { type: 'prune', kid: 's1' },
    ]);
    const next = applyRotationActions([...keys, data], actions, at, kidOf);
    expect(next.map((k) => k.kid)).toEqual(['s0', 'gone', 's2', 'sb', 'd2']);
    expect(planRotation(next, both, at)).toEqual([]);
  });

  it('refuses to prune anything but a retired record', () => {
    expect(() =>
      applyRotationActions([key('s1', 'revoked')], [{ type: 'prune', kid: 's1' }], T0, kidOf),
    ).toThrow(expect.objectContaining({ code: 'key_state_invalid' }));
    expect(() => applyRotationActions([], [{ type: 'prune', kid: 'nope' }], T0, kidOf)).toThrow(
      expect.objectContaining({ code: 'key_not_found' }),
    );
  });
});

describe('applyRotationActions', () => {
  it('applies a generate, then an activate with the next standby, the way the scheduler would', () => {
    let keys: KeyRecord[] = [key('s1', 'active')];
    const kidOf = counterKids();
    const t1 = T0 + 89 * DAY;
    keys = applyRotationActions(keys, planRotation(keys, sigOnly, t1), t1, kidOf);
    expect(keys[1]).toEqual({
      kid: 'new-sig',
      use: 'sig',
      alg: 'ES256',
      state: 'pending',
      origin: 'generated',
      createdAt: t1,
      activatedAt: T0 + 90 * DAY,
    });
    const t2 = T0 + 90 * DAY;
    keys = applyRotationActions(keys, planRotation(keys, sigOnly, t2), t2, kidOf);
    expect(keys.map((k) => [k.kid, k.state, k.verifyUntil])).toEqual([
      ['s1', 'retiring', t2 + 31 * MIN],
      ['new-sig', 'active', undefined],
      ['new-sig-2', 'pending', undefined],
    ]);
  });

  it('bootstraps active keys, and the signing standby', () => {
    const keys = applyRotationActions([], planRotation([], policy, T0), T0, counterKids());
    expect(keys.map((k) => [k.kid, k.use, k.state, k.activatedAt])).toEqual([
      ['new-sig', 'sig', 'active', T0],
      ['new-sig-2', 'sig', 'pending', T0 + 90 * DAY],
      ['new-enc', 'enc', 'active', T0],
      ['new-data', 'data', 'active', T0],
    ]);
  });

  it('refuses a stale plan, an unknown kid and a colliding new kid', () => {
    const keys = [key('s1', 'retiring'), key('s2', 'active')];
    expect(() => applyRotationActions(keys, [{ type: 'retire', kid: 's2' }], T0, kidOf)).toThrow(
      expect.objectContaining({ code: 'key_state_invalid' }),
    );
    expect(() => applyRotationActions(keys, [{ type: 'retire', kid: 'gone' }], T0, kidOf)).toThrow(
      expect.objectContaining({ code: 'key_not_found' }),
    );
    expect(() =>
      applyRotationActions(keys, [{ type: 'bootstrap', use: 'sig', alg: 'EdDSA' }], T0, () => 's1'),
    ).toThrow(expect.objectContaining({ code: 'key_state_invalid' }));
  });

  it('does not mutate its input', () => {
    const keys = Object.freeze([Object.freeze(key('s1', 'retiring'))]);
    const next = applyRotationActions(keys, [{ type: 'retire', kid: 's1' }], T0 + 3 * DAY, kidOf);
    expect(keys[0]?.state).toBe('retiring');
    expect(next[0]?.state).toBe('retired');
  });
});

describe('data keys and rewrap', () => {
  const d1 = key('d1', 'retiring', { use: 'data', alg: 'fernet', verifyUntil: undefined });
  const keys = [d1, key('d2', 'active', { use: 'data', alg: 'fernet' }), key('s1', 'retiring')];

  it('lists retiring data keys as the ones rewrap must empty', () => {
    expect(retirableDataKeys(keys).map((k) => k.kid)).toEqual(['d1']);
  });

  it('retires a data key once rewrap reports nothing left', () => {
    const next = retireDataKey(keys, { kid: 'd1', remaining: 0, now: T0 + 40 * DAY });
    expect(next[0]).toMatchObject({ state: 'retired', retiredAt: T0 + 40 * DAY });
    expect(retirableDataKeys(next)).toEqual([]);
  });

  it('refuses while ciphertexts remain, for non-data keys, and for unknown kids', () => {
    expect(() => retireDataKey(keys, { kid: 'd1', remaining: 3, now: T0 })).toThrow(
      'still has 3 ciphertexts',
    );
    expect(() => retireDataKey(keys, { kid: 'd2', remaining: 0, now: T0 })).toThrow(
      'key "d2" is a active data key, not a retiring data key',
    );
    expect(() => retireDataKey(keys, { kid: 's1', remaining: 0, now: T0 })).toThrow(KeywardError);
    expect(() => retireDataKey(keys, { kid: 'nope', remaining: 0, now: T0 })).toThrow(
      expect.objectContaining({ code: 'key_not_found' }),
    );
  });
});

describe('publishedKids', () => {
  it('publishes pending, active and retiring asymmetric signing keys only, active first', () => {
    const keys = [
      key('old', 'retiring'),
      key('gone', 'retired'),
      key('bad', 'revoked'),
      key('next', 'pending'),
      key('cur', 'active'),
      key('hmac', 'retiring', { alg: 'HS256' }),
      key('enc', 'active', { use: 'enc', alg: 'A256GCM' }),
      key('data', 'active', { use: 'data', alg: 'fernet' }),
    ];
    expect(publishedKids(keys)).toEqual(['cur', 'next', 'old']);
  });
});

describe('simulateRotation', () => {
  it('shows a 200-day timeline of signing rotations, hourly steps', () => {
    const steps = simulateRotation([key('s1', 'active')], sigOnly, T0, 200);
    expect(
      steps.map((s) => [(s.at - T0) / HOUR, s.actions.map((a) => a.type).join('+'), s.jwksKids.join(',')]),
    ).toEqual([
      // the standby is published from the start, and replaced whenever it takes over
      [0, 'generate', 's1,sim-sig-1'],
      [90 * 24, 'activate+generate', 'sim-sig-1,sim-sig-2,s1'],
      [90 * 24 + 1, 'retire', 'sim-sig-1,sim-sig-2'],
      // s1 retired 30 days ago (retiredRetention): its record leaves the keyring
      [120 * 24 + 1, 'prune', 'sim-sig-1,sim-sig-2'],
      [180 * 24, 'activate+generate', 'sim-sig-2,sim-sig-3,sim-sig-1'],
      [180 * 24 + 1, 'retire', 'sim-sig-2,sim-sig-3'],
    ]);
    expect(steps.at(-1)?.keys.map((k) => [k.kid, k.state])).toEqual([
      ['sim-sig-1', 'retired'],
      ['sim-sig-2', 'active'],
      ['sim-sig-3', 'pending'],
    ]);
  });

  it('prunes retired records after retiredRetention, so a long horizon keeps the keyring short', () => {
    const steps = simulateRotation(
      [key('s1', 'active')],
      resolveRotationPolicy({ uses: ['sig'], sigRotateEvery: '10d' }),
      T0,
      400,
    );
    const last = steps.at(-1)?.keys ?? [];
    // 40 rotations in 400 days; only the records retired within the last 30 days remain.
    expect(last.filter((k) => k.state === 'retired').length).toBeLessThanOrEqual(3);
    expect(last.filter((k) => k.state === 'active' || k.state === 'pending')).toHaveLength(2);
    expect(steps.some((s) => s.actions.some((a) => a.type === 'prune'))).toBe(true);
  });

  it('rejects a bad horizon or step', () => {
    for (const [days, step] of [
      [-1, HOUR],
      [Number.NaN, HOUR],
      [10, 0],
      [10_000, 1],
    ] as const)
      expect(() => simulateRotation([], policy, T0, days, step)).toThrow(
        expect.objectContaining({ code: 'config_invalid' }),
      );
  });
});

describe('rotation properties (fast-check)', () => {
  const USES = ['sig', 'enc', 'data'] as const;
  const SIG_ALGS = ['EdDSA', 'ES256', 'RS256', 'PS256', 'HS256', 'HS384', 'HS512'] as const;
  const ALG = { enc: 'A256GCM', data: 'fernet' } as const;

  const policyArb = fc
    .record({
      jwksMaxAgeMin: fc.integer({ min: 1, max: 60 }),
      extraLeadMin: fc.integer({ min: 0, max: 2 * 24 * 60 }),
      maxTokenTtlMin: fc.integer({ min: 1, max: 24 * 60 }),
      clockSkewS: fc.integer({ min: 0, max: 300 }),
      graceMin: fc.integer({ min: 0, max: 60 }),
      sigDays: fc.integer({ min: 3, max: 120 }),
      dataDays: fc.integer({ min: 3, max: 60 }),
      uses: fc.subarray([...USES], { minLength: 1 }),
      signingAlg: fc.constantFrom(...SIG_ALGS),
    })
    .map((p) =>
      resolveRotationPolicy({
        jwksMaxAge: p.jwksMaxAgeMin * MIN,
        publishLead: (p.jwksMaxAgeMin + p.extraLeadMin) * MIN,
        maxTokenTtl: p.maxTokenTtlMin * MIN,
        clockSkew: p.clockSkewS * 1000,
        grace: p.graceMin * MIN,
        sigRotateEvery: `${p.sigDays}d`,
        dataRotateEvery: `${p.dataDays}d`,
        uses: p.uses,
        signingAlg: p.signingAlg,
      }),
    );

  /** A valid keyring for the policy's uses: one active key, maybe a pending one, and some history. */
  const keyringArb = (p: RotationPolicy) =>
    fc
      .tuple(
        ...p.uses.map((use) =>
          fc.record({
            use: fc.constant(use),
            alg: use === 'sig' ? fc.constantFrom(...SIG_ALGS) : fc.constant(ALG[use]),
            activeAgeMin: fc.integer({ min: 0, max: 200 * 24 * 60 }),
            pendingInMin: fc.option(fc.integer({ min: -3 * 24 * 60, max: 3 * 24 * 60 })),
            retiring: fc.array(fc.integer({ min: 0, max: 3 * 24 * 60 }), { maxLength: 2 }),
            retired: fc.nat({ max: 2 }),
            revoked: fc.nat({ max: 2 }),
          }),
        ),
      )
      .map((specs) => {
        const keys: KeyRecord[] = [];
        for (const s of specs) {
          const base = { use: s.use, alg: s.alg, origin: 'generated' as const };
          const activatedAt = T0 - s.activeAgeMin * MIN;
          keys.push({
            ...base,
            kid: `${s.use}-active`,
            state: 'active',
            createdAt: activatedAt - HOUR,
            activatedAt,
          });
          if (s.pendingInMin !== null)
            keys.push({
              ...base,
              kid: `${s.use}-pending`,
              state: 'pending',
              createdAt: T0 - HOUR,
              activatedAt: T0 + s.pendingInMin * MIN,
            });
          s.retiring.forEach((agoMin, i) => {
            const retiringAt = T0 - agoMin * MIN;
            const k: KeyRecord = {
              ...base,
              kid: `${s.use}-retiring-${i}`,
              state: 'retiring',
              createdAt: retiringAt - DAY,
            };
            keys.push({
              ...k,
              activatedAt: k.createdAt,
              retiringAt,
              ...(s.use === 'data' ? {} : { verifyUntil: retiringAt + p.retainFor }),
            });
          });
          for (let i = 0; i < s.retired; i++)
            keys.push({
              ...base,
              kid: `${s.use}-retired-${i}`,
              state: 'retired',
              createdAt: T0 - 400 * DAY,
              retiredAt: T0 - 300 * DAY,
            });
          for (let i = 0; i < s.revoked; i++) {
            keys.push({
              ...base,
              kid: `${s.use}-revoked-${i}`,
              state: 'revoked',
              createdAt: T0 - 10 * DAY,
              revokedAt: T0 - DAY,
            });
          }
        }
        return keys;
      });

  type Op =
    | { kind: 'advance'; ms: number }
    | { kind: 'rotate'; use: KeyUse }
    | { kind: 'revoke'; pick: number };
  const opArb: fc.Arbitrary<Op> = fc.oneof(
    {
      weight: 6,
      arbitrary: fc.record({
        kind: fc.constant('advance' as const),
        ms: fc.integer({ min: MIN, max: 2 * DAY }),
      }),
    },
    {
      weight: 2,
      arbitrary: fc.record({
        kind: fc.constant('advance' as const),
        ms: fc.integer({ min: MIN, max: 200 * DAY }),
      }),
    },
    {
      weight: 1,
      arbitrary: fc.record({ kind: fc.constant('rotate' as const), use: fc.constantFrom(...USES) }),
    },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('revoke' as const), pick: fc.nat() }) },
  );

  const scenarioArb = policyArb.chain((p) =>
    fc.record({ policy: fc.constant(p), keys: keyringArb(p), ops: fc.array(opArb, { maxLength: 40 }) }),
  );

  function checkStep(
    p: RotationPolicy,
    before: readonly KeyRecord[],
    after: readonly KeyRecord[],
    at: number,
  ): void {
    expect(checkKeyringInvariants(after)).toEqual([]);
    for (const use of p.uses)
      expect(after.filter((k) => k.use === use && k.state === 'active')).toHaveLength(1);
    // Signing always keeps a standby; the JWKS stays bounded (active + standby + the retiring keys,
    // at most one over maxRetiringKeys when a scheduled activation follows on-demand rotations).
    if (p.uses.includes('sig')) {
      expect(after.filter((k) => k.use === 'sig' && k.state === 'pending').length).toBeGreaterThanOrEqual(1);
      expect(publishedKids(after).length).toBeLessThanOrEqual(p.maxRetiringKeys + 3);
    }
    const byKid = new Map(after.map((k) => [k.kid, k]));
    for (const old of before) {
      const now = byKid.get(old.kid);
      if (now === undefined && prunable(old, p, at)) continue;
      expect(now, `key ${old.kid} disappeared`).toBeDefined();
      if (old.state === 'revoked') expect(now?.state).toBe('revoked');
      expect(stateRank(now!.state)).toBeGreaterThanOrEqual(stateRank(old.state));
    }
    for (const k of after)
      if (k.state === 'retiring' && k.use === 'sig')
        expect(k.verifyUntil).toBeGreaterThanOrEqual((k.retiringAt ?? 0) + p.maxTokenTtl);
  }

  it('keeps every invariant through random time, rotations and revocations', () => {
    fc.assert(
      fc.property(scenarioArb, ({ policy: p, keys: initial, ops }) => {
        expect(checkKeyringInvariants(initial)).toEqual([]);
        let keys: readonly KeyRecord[] = initial;
        let now = T0;
        let n = 0;
        const newKid = (use: KeyUse) => `${use}-gen-${++n}`;
        // When each kid first entered the keyring (and so the JWKS): initial keys at their createdAt.
        const firstSeen = new Map(initial.map((k) => [k.kid, k.createdAt]));
        const see = () => {
          for (const k of keys) if (!firstSeen.has(k.kid)) firstSeen.set(k.kid, now);
        };
        const options = () => ({ policy: p, now, newKid });
        // Bring the arbitrary keyring up to date first, as the scheduler does at start.
        const scheduled = () => {
          const actions = planRotation(keys, p, now);
          for (const a of actions) {
            if (a.type !== 'activate') continue;
            const pending = keys.find((k) => k.kid === a.kid)!;
            // A scheduled activation only follows a full publishLead in the JWKS.
            expect(now - pending.createdAt).toBeGreaterThanOrEqual(p.publishLead);
          }
          const next = applyRotationActions(keys, actions, now, newKid);
          checkStep(p, keys, next, now);
          expect(planRotation(next, p, now)).toEqual([]);
          keys = next;
          see();
        };
        scheduled();
        for (const op of ops) {
          if (op.kind === 'advance') {
            now += op.ms;
            scheduled();
            continue;
          }
          let next: readonly KeyRecord[];
          const standbyBefore = signingStandby(keys, p, now);
          const activeSig = keys.find((k) => k.use === 'sig' && k.state === 'active')?.kid;
          if (op.kind === 'rotate') {
            const live = keys.filter(
              (k) => k.use === op.use && k.state === 'retiring' && !retiringExpired(k, p, now),
            ).length;
            if (live >= p.maxRetiringKeys && keys.some((k) => k.use === op.use && k.state === 'active')) {
              expect(() => rotateNow(keys, op.use, options())).toThrow(
                expect.objectContaining({ code: 'rotation_limit' }),
              );
              continue;
            }
            next = rotateNow(keys, op.use, options());
          } else {
            const target = keys[op.pick % keys.length]!;
            if (target.state === 'revoked') {
              expect(() => revokeKey(keys, target.kid, options())).toThrow(KeywardError);
              continue;
            }
            next = revokeKey(keys, target.kid, options());
            expect(next.find((k) => k.kid === target.kid)?.state).toBe('revoked');
          }
          checkStep(p, keys, next, now);
          const newSig = next.find((k) => k.use === 'sig' && k.state === 'active')?.kid;
          // A new signing key that replaced one while a published standby existed had been in the
          // JWKS for at least jwksMaxAge.
          if (
            newSig !== undefined &&
            newSig !== activeSig &&
            activeSig !== undefined &&
            standbyBefore?.published
          )
            expect(now - (firstSeen.get(newSig) ?? now)).toBeGreaterThanOrEqual(p.jwksMaxAge);
          keys = next;
          see();
        }
      }),
      { numRuns: 300 },
    );
  });

  it('plans deterministically, whatever the order of the records', () => {
    fc.assert(
      fc.property(
        scenarioArb.chain((s) =>
          fc.record({ s: fc.constant(s), order: fc.shuffledSubarray(s.keys, { minLength: s.keys.length }) }),
        ),
        fc.integer({ min: 0, max: 300 * DAY }),
        ({ s, order }, dt) => {
          expect(planRotation(order, s.policy, T0 + dt)).toEqual(planRotation(s.keys, s.policy, T0 + dt));
        },
      ),
      { numRuns: 200 },
    );
  });
});
