import { KeywardError } from '../errors.js';
import { algorithmFor, computeVerifyUntil, type RotationPolicy, rotationPeriod } from './rotation-policy.js';
import type { KeyAlgorithm, KeyRecord, KeyState, KeyUse } from './types.js';

/** Position of each state in the forward order; `revoked` is final and reachable from anywhere. */
const ORDER: Record<KeyState, number> = { pending: 0, active: 1, retiring: 2, retired: 3, revoked: 4 };

/** Extra fields a {@link transition} may set. */
export interface TransitionExtra {
  /** Required when a sig / enc key becomes `retiring`; must not be before `now`. */
  verifyUntil?: number;
  /** Stored with `revoked`. Not secret: never put key material here. */
  revokedReason?: string;
}

/**
 * Rank of a state in `pending → active → retiring → retired`, `revoked` last.
 *
 * @example
 * ```ts
 * stateRank('active') < stateRank('retiring') // true
 * ```
 */
export function stateRank(state: KeyState): number {
  return ORDER[state];
}

/**
 * Throws unless `record` may move to `to`: one step forward along `pending → active → retiring →
 * retired`, or to `revoked` from any state but `revoked`.
 *
 * @throws {KeywardError} `key_state_invalid` naming the kid, the current and the requested state.
 * @example
 * ```ts
 * assertTransition({ ...record, state: 'retired' }, 'active')
 * // KeywardError: key "k1" cannot go from retired to active: a retired key can only be revoked
 * ```
 */
export function assertTransition(record: KeyRecord, to: KeyState): void {
  const from = record.state;
  const why = illegalReason(from, to);
  if (why !== undefined) {
    throw new KeywardError(
      'key_state_invalid',
      `key "${record.kid}" cannot go from ${from} to ${to}: ${why}`,
      {
        details: { kid: record.kid, from, to },
      },
    );
  }
}

function illegalReason(from: KeyState, to: KeyState): string | undefined {
  if (!(from in ORDER) || !(to in ORDER)) return 'unknown state';
  if (from === 'revoked') return 'revoked is final';
  if (to === 'revoked') return undefined;
  if (from === 'retired') return 'a retired key can only be revoked';
  if (to === from) return 'it is already in that state';
  if (ORDER[to] < ORDER[from]) return 'keys never move back in the lifecycle';
  if (ORDER[to] > ORDER[from] + 1) return `it must pass through ${stateAfter(from)} first`;
  return undefined;
}

function stateAfter(state: KeyState): KeyState {
  return state === 'pending' ? 'active' : state === 'active' ? 'retiring' : 'retired';
}

/**
 * Returns a new record in state `to`, with the matching timestamp set to `now`: `activatedAt`,
 * `retiringAt` (+ `verifyUntil`), `retiredAt`, or `revokedAt` (+ `revokedReason`).
 *
 * @throws {KeywardError} `key_state_invalid` for an illegal move, or a sig / enc key retiring without a
 * `verifyUntil` at or after `now`.
 * @example
 * ```ts
 * const retiring = transition(active, 'retiring', now, { verifyUntil: now + 31 * 60_000 })
 * ```
 */
export function transition(
  record: KeyRecord,
  to: KeyState,
  now: number,
  extra: TransitionExtra = {},
): KeyRecord {
  assertTransition(record, to);
  if (!Number.isFinite(now)) {
    throw new KeywardError('key_state_invalid', `key "${record.kid}": transition time must be finite`, {
      details: { kid: record.kid },
    });
  }
  switch (to) {
    case 'active':
      return { ...record, state: to, activatedAt: now };
    case 'retiring': {
      const { verifyUntil } = extra;
      if (verifyUntil === undefined ? record.use !== 'data' : !(verifyUntil >= now)) {
        throw new KeywardError(
          'key_state_invalid',
          `key "${record.kid}" (${record.use}) needs a verifyUntil at or after the rotation time to retire`,
          { details: { kid: record.kid, from: record.state, to } },
        );
      }
      return verifyUntil === undefined
        ? { ...record, state: to, retiringAt: now }
        : { ...record, state: to, retiringAt: now, verifyUntil };
    }
    case 'retired':
      return { ...record, state: to, retiredAt: now };
    case 'revoked':
      return extra.revokedReason === undefined
        ? { ...record, state: to, revokedAt: now }
        : { ...record, state: to, revokedAt: now, revokedReason: extra.revokedReason };
    default:
      // assertTransition rejects every other target (`pending` is never entered by a transition).
      throw new KeywardError('key_state_invalid', `key "${record.kid}" cannot go to ${to}`);
  }
}

const ALGS_BY_USE: Record<KeyUse, readonly string[]> = {
  sig: ['ES256', 'EdDSA', 'Ed25519', 'RS256', 'PS256', 'HS256', 'HS384', 'HS512'],
  enc: ['A256GCM'],
  data: ['fernet'],
};

/**
 * Lists the invariants a keyring violates (empty when it is sound): exactly one active key for every use
 * that has a pending, active or retiring key; unique kids; each state's timestamp present; retiring sig /
 * enc keys carrying a `verifyUntil` not before `retiringAt`; an algorithm that fits the use; at most one
 * live (pending, active, retiring) sig key marked `defaultForKidless`.
 *
 * @example
 * ```ts
 * checkKeyringInvariants(records) // [] or ['use "sig" has 2 active keys (a, b), expected exactly one']
 * ```
 */
export function checkKeyringInvariants(records: readonly KeyRecord[]): string[] {
  const problems: string[] = [];
  const seen = new Set<string>();
  const activeByUse = new Map<KeyUse, string[]>();
  const liveUses = new Set<KeyUse>();
  for (const r of records) {
    const key = `key "${r.kid}"`;
    if (seen.has(r.kid)) problems.push(`duplicate kid "${r.kid}"`);
    seen.add(r.kid);
    if (!(r.use in ALGS_BY_USE)) {
      problems.push(`${key} has unknown use "${String(r.use)}"`);
      continue;
    }
    if (!ALGS_BY_USE[r.use].includes(r.alg))
      problems.push(`${key} has alg ${r.alg}, not valid for use "${r.use}"`);
    if (r.state === 'pending' || r.state === 'active' || r.state === 'retiring') liveUses.add(r.use);
    if (r.state === 'active') activeByUse.set(r.use, [...(activeByUse.get(r.use) ?? []), r.kid]);
    if (r.state === 'active' && r.activatedAt === undefined)
      problems.push(`${key} is active with no activatedAt`);
    if (r.state === 'retiring' && r.retiringAt === undefined)
      problems.push(`${key} is retiring with no retiringAt`);
    if (r.state === 'retired' && r.retiredAt === undefined)
      problems.push(`${key} is retired with no retiredAt`);
    if (r.state === 'revoked' && r.revokedAt === undefined)
      problems.push(`${key} is revoked with no revokedAt`);
    if (r.state === 'retiring' && r.use !== 'data' && r.verifyUntil === undefined)
      problems.push(`${key} is a retiring ${r.use} key with no verifyUntil`);
    if (r.verifyUntil !== undefined && r.retiringAt !== undefined && r.verifyUntil < r.retiringAt)
      problems.push(`${key} has verifyUntil before retiringAt`);
    if (
      r.state !== 'pending' &&
      r.state !== 'revoked' &&
      r.activatedAt !== undefined &&
      r.activatedAt < r.createdAt
    )
      problems.push(`${key} was activated before it was created`);
  }
  const kidless = records.filter(
    (r) =>
      r.defaultForKidless === true &&
      (r.state === 'pending' || r.state === 'active' || r.state === 'retiring'),
  );
  if (kidless.length > 1)
    problems.push(
      `${kidless.length} keys verify tokens without kid (${kidless.map((r) => r.kid).join(', ')}), expected at most one`,
    );
  if (records.some((r) => r.defaultForKidless === true && r.use !== 'sig'))
    problems.push('only a sig key may verify tokens without kid');
  for (const use of (['sig', 'enc', 'data'] as const).filter((u) => liveUses.has(u))) {
    const active = activeByUse.get(use) ?? [];
    if (active.length !== 1)
      problems.push(
        `use "${use}" has ${active.length} active keys${active.length > 0 ? ` (${active.join(', ')})` : ''}, expected exactly one`,
      );
  }
  return problems;
}

/**
 * A fresh `generated` key record. `activatedAt` is when it starts (pending) or started (active) signing.
 *
 * @example
 * ```ts
 * createKeyRecord({ kid: 'k2', use: 'sig', alg: 'EdDSA', state: 'pending', now, activatedAt: now + day })
 * ```
 */
export function createKeyRecord(input: {
  kid: string;
  use: KeyUse;
  alg: KeyAlgorithm;
  state: 'pending' | 'active';
  now: number;
  activatedAt: number;
}): KeyRecord {
  return {
    kid: input.kid,
    use: input.use,
    alg: input.alg,
    state: input.state,
    origin: 'generated',
    createdAt: input.now,
    activatedAt: input.activatedAt,
  };
}

/** Options of {@link rotateNow} and {@link revokeKey}. */
export interface OnDemandOptions {
  policy: RotationPolicy;
  now: number;
  /** Returns a fresh, unique kid for a key of `use`. */
  newKid: (use: KeyUse) => string;
}

/**
 * Rotates `use` at once: the earliest pending key of that use is promoted (for `sig` this is the standby,
 * already published), or else a new key is generated and activated; the previous active key becomes
 * `retiring` with `verifyUntil = now + retainFor` (data keys: until rewrap empties them). Retiring sig /
 * enc keys of `use` past their `verifyUntil` are retired in the same step. For `sig`, a new standby
 * (pending, published from now) is appended, so the next rotation again promotes a published key.
 * Pure: returns a new array.
 *
 * @throws {KeywardError} `rotation_limit` when `use` already holds `policy.maxRetiringKeys` retiring keys.
 * @example
 * ```ts
 * keys = rotateNow(keys, 'sig', { policy, now: Date.now(), newKid: () => randomUUID() })
 * ```
 */
export function rotateNow(keys: readonly KeyRecord[], use: KeyUse, options: OnDemandOptions): KeyRecord[] {
  const { policy, now } = options;
  const verifyUntil = use === 'data' ? undefined : computeVerifyUntil(now, policy);
  const settled = keys.map((k) =>
    k.use === use && retiringExpired(k, policy, now) ? transition(k, 'retired', now) : k,
  );
  const previous = settled.find((k) => k.use === use && k.state === 'active');
  const retiring = settled.filter((k) => k.use === use && k.state === 'retiring');
  if (previous !== undefined && retiring.length >= policy.maxRetiringKeys) {
    const until = Math.min(...retiring.map((k) => k.verifyUntil ?? Number.POSITIVE_INFINITY));
    const when = Number.isFinite(until)
      ? `the oldest stops verifying at ${new Date(until).toISOString()}`
      : 'rewrap retires data keys';
    throw new KeywardError(
      'rotation_limit',
      `refusing to rotate ${use}: it already has ${retiring.length} retiring keys (maxRetiringKeys ${policy.maxRetiringKeys}); ${when}`,
      { details: { use, retiring: retiring.length, maxRetiringKeys: policy.maxRetiringKeys } },
    );
  }
  const next = settled.map((k) => (k === previous ? transition(k, 'retiring', now, { verifyUntil }) : k));
  const promoted = promoteReplacement(next, use, options);
  if (previous === undefined) return use === 'sig' ? withStandby(promoted, options) : promoted;
  // An on-demand rotation does not move the schedule: the new key inherits the due time of the
  // key it replaced, so scheduled rotations keep their cadence.
  const rotateAt =
    previous.rotateAt ?? (previous.activatedAt ?? previous.createdAt) + rotationPeriod(policy, use);
  const rotated = promoted.map((k) => (k.use === use && k.state === 'active' ? { ...k, rotateAt } : k));
  return use === 'sig' ? withStandby(rotated, options) : rotated;
}

/**
 * True when `record` is a retiring sig / enc key past its `verifyUntil` (or, stored without one,
 * `retiringAt + retainFor`): it no longer verifies and is due to retire. Data keys never expire by time.
 *
 * @example
 * ```ts
 * retiringExpired(record, policy, Date.now())
 * ```
 */
export function retiringExpired(record: KeyRecord, policy: RotationPolicy, now: number): boolean {
  return (
    record.state === 'retiring' &&
    record.use !== 'data' &&
    now > (record.verifyUntil ?? computeVerifyUntil(record.retiringAt ?? record.createdAt, policy))
  );
}

/**
 * True when `record` is a `retired` record older than `policy.retiredRetention`: it is pruned from the
 * keyring document (its audit events stay).
 *
 * @example
 * ```ts
 * keys.filter((k) => !prunable(k, policy, Date.now()))
 * ```
 */
export function prunable(record: KeyRecord, policy: RotationPolicy, now: number): boolean {
  return (
    record.state === 'retired' &&
    record.retiredAt !== undefined &&
    now >= record.retiredAt + policy.retiredRetention
  );
}

/**
 * True when `record` is a pending signing key that verifiers caching the JWKS already know: it has been
 * in the JWKS at least `policy.jwksMaxAge`, or it was created with the keyring itself
 * (`createdWithKeyring`: no verifier can hold an older JWKS). Such a key may start signing at once.
 *
 * @example
 * ```ts
 * isPublishedStandby(standby, policy, Date.now()) // false for jwksMaxAge after it was generated
 * ```
 */
export function isPublishedStandby(record: KeyRecord, policy: RotationPolicy, now: number): boolean {
  return (
    record.use === 'sig' &&
    record.state === 'pending' &&
    (record.createdWithKeyring === true || now - record.createdAt >= policy.jwksMaxAge)
  );
}

/**
 * The signing standby: the pending `sig` key an on-demand rotation or an emergency revocation would
 * promote, and whether it is published yet ({@link isPublishedStandby}). `undefined` when there is none.
 *
 * @example
 * ```ts
 * const standby = signingStandby(keys, policy, Date.now())
 * if (!standby?.published) console.warn('the next signing key is not published yet')
 * ```
 */
export function signingStandby(
  keys: readonly KeyRecord[],
  policy: RotationPolicy,
  now: number,
): { record: KeyRecord; published: boolean } | undefined {
  const record = earliestPending(keys, 'sig');
  return record === undefined ? undefined : { record, published: isPublishedStandby(record, policy, now) };
}

/**
 * When a new signing standby should start signing on schedule: the active key's due time
 * (`rotateAt`, else activation + `sigRotateEvery`), but never before `now + publishLead`.
 *
 * @example
 * ```ts
 * standbyActivateAt(active, policy, now)
 * ```
 */
export function standbyActivateAt(
  active: KeyRecord | undefined,
  policy: RotationPolicy,
  now: number,
): number {
  const rotateAt =
    active === undefined
      ? now + policy.sigRotateEvery
      : (active.rotateAt ?? (active.activatedAt ?? active.createdAt) + policy.sigRotateEvery);
  return Math.max(now + policy.publishLead, rotateAt);
}

/**
 * Appends a signing standby (a pending `sig` key, published from `now`) when the keyring has an active
 * signing key and no pending one. Pure: returns `keys` itself when nothing is needed.
 *
 * @throws {KeywardError} `key_state_invalid` when `newKid` returns an existing kid.
 * @example
 * ```ts
 * keys = withStandby(keys, { policy, now, newKid: () => randomUUID() })
 * ```
 */
export function withStandby(keys: KeyRecord[], { policy, now, newKid }: OnDemandOptions): KeyRecord[] {
  const active = keys.find((k) => k.use === 'sig' && k.state === 'active');
  if (active === undefined || keys.some((k) => k.use === 'sig' && k.state === 'pending')) return keys;
  const kid = newKid('sig');
  if (keys.some((k) => k.kid === kid))
    throw new KeywardError('key_state_invalid', `newKid returned kid "${kid}", which already exists`, {
      details: { kid },
    });
  const activatedAt = standbyActivateAt(active, policy, now);
  return [
    ...keys,
    createKeyRecord({
      kid,
      use: 'sig',
      alg: algorithmFor('sig', policy),
      state: 'pending',
      now,
      activatedAt,
    }),
  ];
}

/**
 * Revokes `kid`. When it was the active key of its use, a replacement is promoted in the same step: the
 * earliest pending key of that use (for `sig`, the standby), or else a newly generated active key. For
 * `sig`, a new standby is appended when none is left. Never refused by `maxRetiringKeys`.
 * Pure: returns a new array.
 *
 * @throws {KeywardError} `key_not_found` for an unknown kid; `key_state_invalid` if it is already revoked.
 * @example
 * ```ts
 * keys = revokeKey(keys, 'k1', { policy, now: Date.now(), newKid: () => randomUUID(), reason: 'leaked' })
 * ```
 */
export function revokeKey(
  keys: readonly KeyRecord[],
  kid: string,
  options: OnDemandOptions & { reason?: string },
): KeyRecord[] {
  const target = keys.find((k) => k.kid === kid);
  if (target === undefined)
    throw new KeywardError('key_not_found', `no key with kid "${kid}"`, { details: { kid } });
  const extra = options.reason === undefined ? {} : { revokedReason: options.reason };
  const next = keys.map((k) => (k === target ? transition(k, 'revoked', options.now, extra) : k));
  const replaced = target.state === 'active' ? promoteReplacement(next, target.use, options) : next;
  // Whatever was revoked, signing keeps a standby (a promoted or revoked standby is replaced).
  return target.use === 'sig' ? withStandby(replaced, options) : replaced;
}

/** Activates the earliest-due pending key of `use`, or appends a new active key. */
function promoteReplacement(
  keys: KeyRecord[],
  use: KeyUse,
  { policy, now, newKid }: OnDemandOptions,
): KeyRecord[] {
  const pending = earliestPending(keys, use);
  if (pending !== undefined) return keys.map((k) => (k === pending ? transition(k, 'active', now) : k));
  const kid = newKid(use);
  if (keys.some((k) => k.kid === kid))
    throw new KeywardError('key_state_invalid', `newKid returned kid "${kid}", which already exists`, {
      details: { kid },
    });
  return [
    ...keys,
    createKeyRecord({ kid, use, alg: algorithmFor(use, policy), state: 'active', now, activatedAt: now }),
  ];
}

/**
 * The pending key of `use` due first (by `activatedAt`, then `createdAt`, then kid), if any.
 *
 * @example
 * ```ts
 * earliestPending(keys, 'sig')?.kid
 * ```
 */
export function earliestPending(keys: readonly KeyRecord[], use: KeyUse): KeyRecord | undefined {
  let best: KeyRecord | undefined;
  for (const k of keys) {
    if (k.use !== use || k.state !== 'pending') continue;
    if (best === undefined || compareDue(k, best) < 0) best = k;
  }
  return best;
}

function compareDue(a: KeyRecord, b: KeyRecord): number {
  const due = (k: KeyRecord) => k.activatedAt ?? k.createdAt;
  return due(a) - due(b) || a.createdAt - b.createdAt || (a.kid < b.kid ? -1 : a.kid > b.kid ? 1 : 0);
}
