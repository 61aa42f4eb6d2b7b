import { KeywardError } from '../errors.js';
import {
  createKeyRecord,
  earliestPending,
  prunable,
  retiringExpired,
  standbyActivateAt,
  transition,
} from './lifecycle.js';
import { algorithmFor, computeVerifyUntil, type RotationPolicy, rotationPeriod } from './rotation-policy.js';
import type { KeyAlgorithm, KeyRecord, KeyState, KeyUse } from './types.js';

/** One step the scheduler takes; {@link planRotation} decides, {@link applyRotationActions} applies. */
export type RotationAction =
  /** `use` has no key at all: create one, active at once. */
  | { readonly type: 'bootstrap'; readonly use: KeyUse; readonly alg: KeyAlgorithm }
  /** Create a pending key (published now) that becomes active at `activateAt`. */
  | {
      readonly type: 'generate';
      readonly use: KeyUse;
      readonly alg: KeyAlgorithm;
      readonly activateAt: number;
    }
  /** Activate pending `kid`; `demote` (the previous active key) becomes retiring until `verifyUntil`. */
  | {
      readonly type: 'activate';
      readonly kid: string;
      readonly use: KeyUse;
      readonly demote: string | undefined;
      /** `undefined` for data keys: they retire when rewrap leaves nothing under them. */
      readonly verifyUntil: number | undefined;
    }
  /** A retiring sig / enc key is past its `verifyUntil`. */
  | { readonly type: 'retire'; readonly kid: string }
  /** A `retired` record is older than `retiredRetention`: drop it from the keyring document. */
  | { readonly type: 'prune'; readonly kid: string };

/**
 * Decides what rotation needs to happen at `now`. Pure and deterministic; applying the result and
 * planning again at the same `now` yields no action.
 *
 * - no active key for a use in `policy.uses`: activate its pending key at once, or `bootstrap` one;
 * - a pending key published for at least `publishLead` and due: `activate` it, demote the active key;
 * - the active key's age + `publishLead` reaches the rotation period and nothing is pending: `generate`;
 * - `sig` always keeps a standby: whenever the signing keys would be left with an active key and no
 *   pending one (after bootstrap, after an activation, or on a keyring without one), `generate` it, due
 *   at the active key's rotation time, so every scheduled or on-demand rotation promotes a key that has
 *   been in the JWKS for a while;
 * - a retiring sig / enc key past `verifyUntil`: `retire`. Data keys never retire by time
 *   (see {@link retireDataKey});
 * - a `retired` record older than `retiredRetention`: `prune`.
 *
 * @example
 * ```ts
 * const actions = planRotation(keys, resolveRotationPolicy(), Date.now())
 * keys = applyRotationActions(keys, actions, now, () => randomUUID())
 * ```
 */
export function planRotation(
  keys: readonly KeyRecord[],
  policy: RotationPolicy,
  now: number,
): RotationAction[] {
  const actions: RotationAction[] = [];
  for (const use of policy.uses) {
    const active = currentActive(keys, use);
    const pending = earliestPending(keys, use);
    const pendingCount = keys.filter((k) => k.use === use && k.state === 'pending').length;
    /** A standby for the key that is active after this step's actions. */
    const standby = (activateAt: number) => {
      if (use === 'sig') actions.push({ type: 'generate', use, alg: algorithmFor(use, policy), activateAt });
    };
    if (active === undefined) {
      if (pending === undefined) actions.push({ type: 'bootstrap', use, alg: algorithmFor(use, policy) });
      else
        actions.push({ type: 'activate', kid: pending.kid, use, demote: undefined, verifyUntil: undefined });
      if (pendingCount <= 1) standby(standbyActivateAt(undefined, policy, now));
      continue;
    }
    if (pending !== undefined) {
      if (now >= activationDue(pending, policy)) {
        const verifyUntil = use === 'data' ? undefined : computeVerifyUntil(now, policy);
        actions.push({ type: 'activate', kid: pending.kid, use, demote: active.kid, verifyUntil });
        if (pendingCount === 1) standby(standbyActivateAt(undefined, policy, now));
      }
      continue;
    }
    const rotateAt =
      active.rotateAt ?? (active.activatedAt ?? active.createdAt) + rotationPeriod(policy, use);
    if (use === 'sig' || now >= rotateAt - policy.publishLead) {
      const activateAt = Math.max(now + policy.publishLead, rotateAt);
      actions.push({ type: 'generate', use, alg: algorithmFor(use, policy), activateAt });
    }
  }
  const byKid = (a: KeyRecord, b: KeyRecord) => (a.kid < b.kid ? -1 : a.kid > b.kid ? 1 : 0);
  for (const k of keys.filter((k) => retiringExpired(k, policy, now)).sort(byKid))
    actions.push({ type: 'retire', kid: k.kid });
  for (const k of keys.filter((k) => prunable(k, policy, now)).sort(byKid))
    actions.push({ type: 'prune', kid: k.kid });
  return actions;
}

/** When a pending key may start signing: its planned time, but never before `publishLead` in the JWKS. */
function activationDue(pending: KeyRecord, policy: RotationPolicy): number {
  return Math.max(pending.activatedAt ?? Number.NEGATIVE_INFINITY, pending.createdAt + policy.publishLead);
}

/** The active key of `use`; should a broken keyring hold several, the latest activated one. */
function currentActive(keys: readonly KeyRecord[], use: KeyUse): KeyRecord | undefined {
  let best: KeyRecord | undefined;
  for (const k of keys) {
    if (k.use !== use || k.state !== 'active') continue;
    if (best === undefined || (k.activatedAt ?? k.createdAt) > (best.activatedAt ?? best.createdAt)) best = k;
  }
  return best;
}

/**
 * Applies `actions` (from {@link planRotation}) at `now`. Pure: returns a new array; new keys are appended
 * with kids from `newKid`. Key material is the caller's business: this only moves records.
 *
 * @throws {KeywardError} `key_not_found` when an action names an unknown kid; `key_state_invalid` when
 * the keyring changed since the plan (a stale action), or `newKid` returns an existing kid.
 * @example
 * ```ts
 * const next = applyRotationActions(keys, planRotation(keys, policy, now), now, (use) => `${use}-${now}`)
 * ```
 */
export function applyRotationActions(
  keys: readonly KeyRecord[],
  actions: readonly RotationAction[],
  now: number,
  newKid: (use: KeyUse) => string,
): KeyRecord[] {
  let next = [...keys];
  const replace = (kid: string, update: (k: KeyRecord) => KeyRecord) => {
    const i = next.findIndex((k) => k.kid === kid);
    const found = next[i];
    if (found === undefined)
      throw new KeywardError('key_not_found', `rotation action names unknown kid "${kid}"`, {
        details: { kid },
      });
    next[i] = update(found);
  };
  const append = (use: KeyUse, make: (kid: string) => KeyRecord) => {
    const kid = newKid(use);
    if (next.some((k) => k.kid === kid))
      throw new KeywardError('key_state_invalid', `newKid returned kid "${kid}", which already exists`, {
        details: { kid },
      });
    next = [...next, make(kid)];
  };
  for (const action of actions) {
    switch (action.type) {
      case 'bootstrap':
        append(action.use, (kid) =>
          createKeyRecord({ kid, use: action.use, alg: action.alg, state: 'active', now, activatedAt: now }),
        );
        break;
      case 'generate':
        append(action.use, (kid) =>
          createKeyRecord({
            kid,
            use: action.use,
            alg: action.alg,
            state: 'pending',
            now,
            activatedAt: action.activateAt,
          }),
        );
        break;
      case 'activate':
        if (action.demote !== undefined)
          replace(action.demote, (k) => transition(k, 'retiring', now, { verifyUntil: action.verifyUntil }));
        replace(action.kid, (k) => transition(k, 'active', now));
        break;
      case 'retire':
        replace(action.kid, (k) => transition(k, 'retired', now));
        break;
      case 'prune':
        replace(action.kid, (k) => {
          if (k.state !== 'retired')
            throw new KeywardError(
              'key_state_invalid',
              `key "${k.kid}" is ${k.state}; only retired records are pruned`,
              {
                details: { kid: k.kid },
              },
            );
          return k;
        });
        next = next.filter((k) => k.kid !== action.kid);
        break;
    }
  }
  return next;
}

/**
 * Data keys waiting for rewrap: retiring `data` keys. The rewrap job re-encrypts everything under them
 * with the active data key, then calls {@link retireDataKey}.
 *
 * @example
 * ```ts
 * for (const key of retirableDataKeys(keys)) await rewrapAll(key.kid)
 * ```
 */
export function retirableDataKeys(keys: readonly KeyRecord[]): KeyRecord[] {
  return keys.filter((k) => k.use === 'data' && k.state === 'retiring');
}

/**
 * Retires a retiring data key once rewrap reports `remaining === 0` ciphertexts under it. Pure.
 *
 * @throws {KeywardError} `key_not_found`; `key_state_invalid` when it is not a retiring data key or
 * ciphertexts remain.
 * @example
 * ```ts
 * keys = retireDataKey(keys, { kid: 'd1', remaining: 0, now: Date.now() })
 * ```
 */
export function retireDataKey(
  keys: readonly KeyRecord[],
  event: { kid: string; remaining: number; now: number },
): KeyRecord[] {
  const { kid, remaining, now } = event;
  const key = keys.find((k) => k.kid === kid);
  if (key === undefined)
    throw new KeywardError('key_not_found', `no key with kid "${kid}"`, { details: { kid } });
  if (key.use !== 'data' || key.state !== 'retiring')
    throw new KeywardError(
      'key_state_invalid',
      `key "${kid}" is a ${key.state} ${key.use} key, not a retiring data key`,
      {
        details: { kid },
      },
    );
  if (remaining !== 0)
    throw new KeywardError('key_state_invalid', `key "${kid}" still has ${remaining} ciphertexts to rewrap`, {
      details: { kid, remaining },
    });
  return keys.map((k) => (k === key ? transition(k, 'retired', now) : k));
}

/**
 * The kids a JWKS publishes: pending, active and retiring asymmetric signing keys (active first, then
 * pending, then retiring, each oldest first). HMAC keys are secret and never published.
 *
 * @example
 * ```ts
 * publishedKids(keys) // ['sig-2', 'sig-3', 'sig-1']
 * ```
 */
export function publishedKids(keys: readonly KeyRecord[]): string[] {
  const published = keys.filter(
    (k) =>
      k.use === 'sig' &&
      !k.alg.startsWith('HS') &&
      (k.state === 'active' || k.state === 'pending' || k.state === 'retiring'),
  );
  const rank: Record<KeyState, number> = { active: 0, pending: 1, retiring: 2, retired: 3, revoked: 4 };
  return published
    .sort((a, b) => rank[a.state] - rank[b.state] || a.createdAt - b.createdAt)
    .map((k) => k.kid);
}

/** One moment of a {@link simulateRotation} timeline. */
export interface RotationStep {
  readonly at: number;
  readonly actions: readonly RotationAction[];
  /** Kids in the JWKS after the actions. */
  readonly jwksKids: readonly string[];
  /** The keyring after the actions. */
  readonly keys: readonly KeyRecord[];
}

const DAY = 24 * 60 * 60 * 1000;
const MAX_STEPS = 1_000_000;

/**
 * Plays {@link planRotation} + {@link applyRotationActions} every `stepMs` (default 1 hour) for `days`
 * from `from`, as `keyward keys plan --days N` shows it. Returns the first step and every step that
 * acted. New kids are `sim-<use>-<n>`. Data keys stay retiring: rewrap is not simulated.
 *
 * @throws {KeywardError} `config_invalid` for non-finite or negative `days`, a non-positive `stepMs`, or
 * more than 1,000,000 steps.
 * @example
 * ```ts
 * for (const step of simulateRotation(keys, policy, Date.now(), 180))
 *   console.log(new Date(step.at).toISOString(), step.actions.map((a) => a.type), step.jwksKids)
 * ```
 */
export function simulateRotation(
  keys: readonly KeyRecord[],
  policy: RotationPolicy,
  from: number,
  days: number,
  stepMs: number = DAY / 24,
): RotationStep[] {
  if (!Number.isFinite(days) || days < 0)
    throw new KeywardError('config_invalid', `days must be a finite, non-negative number, got ${days}`, {
      details: { option: 'days' },
    });
  if (!Number.isFinite(stepMs) || stepMs <= 0 || (days * DAY) / stepMs > MAX_STEPS)
    throw new KeywardError('config_invalid', `stepMs must be positive and give at most ${MAX_STEPS} steps`, {
      details: { option: 'stepMs' },
    });
  const counters = new Map<KeyUse, number>();
  let current: readonly KeyRecord[] = keys;
  const newKid = (use: KeyUse): string => {
    let kid: string;
    do {
      const n = (counters.get(use) ?? 0) + 1;
      counters.set(use, n);
      kid = `sim-${use}-${n}`;
    } while (current.some((k) => k.kid === kid));
    return kid;
  };
  const steps: RotationStep[] = [];
  const end = from + days * DAY;
  for (let i = 0; from + i * stepMs <= end; i++) {
    const at = from + i * stepMs;
    const actions = planRotation(current, policy, at);
    if (actions.length > 0) current = applyRotationActions(current, actions, at, newKid);
    if (actions.length > 0 || i === 0)
      steps.push({ at, actions, jwksKids: publishedKids(current), keys: current });
  }
  return steps;
}
