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
  sig: ['EdDSA', 'ES256', 'RS256', 'PS256', 'HS256', 'HS384', 'HS512'],
  enc: ['A256GCM'],
  data: ['fernet'],
};

/**
 * Lists the invariants a keyring violates (empty when it is sound): exactly one active key for every use
 * that has a pending, active or retiring key; unique kids; each state's timestamp present; retiring sig /
 * enc keys carrying a `verifyUntil` not before `retiringAt`; an algorithm that fits the use.
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
 * Rotates `use` at once: the earliest pending key of that use is promoted (it is already published), or
 * else a new key is generated and activated; the previous active key becomes `retiring` with
 * `verifyUntil = now + retainFor` (data keys: until rewrap empties them). Pure: returns a new array.
 *
 * @example
 * ```ts
 * keys = rotateNow(keys, 'sig', { policy, now: Date.now(), newKid: () => randomUUID() })
 * ```
 */
export function rotateNow(keys: readonly KeyRecord[], use: KeyUse, options: OnDemandOptions): KeyRecord[] {
  const { policy, now } = options;
  const verifyUntil = use === 'data' ? undefined : computeVerifyUntil(now, policy);
  const previous = keys.find((k) => k.use === use && k.state === 'active');
  const next = keys.map((k) => (k === previous ? transition(k, 'retiring', now, { verifyUntil }) : k));
  const promoted = promoteReplacement(next, use, options);
  if (previous === undefined) return promoted;
  // An on-demand rotation does not move the schedule: the new key inherits the due time of the
  // key it replaced, so scheduled rotations keep their cadence.
  const rotateAt =
    previous.rotateAt ?? (previous.activatedAt ?? previous.createdAt) + rotationPeriod(policy, use);
  return promoted.map((k) => (k.use === use && k.state === 'active' ? { ...k, rotateAt } : k));
}

/**
 * Revokes `kid`. When it was the active key of its use, a replacement is promoted in the same step: the
 * earliest pending key of that use, or else a newly generated active key. Pure: returns a new array.
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
  return target.state === 'active' ? promoteReplacement(next, target.use, options) : next;
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
