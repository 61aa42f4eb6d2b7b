import { KeywardError } from '../errors.js';
import { generateKey, type KeyMaterial } from './generate.js';
import { type ImportKeyOptions, prepareImport } from './import.js';
import type { KeyringDocument, KeyringRepository, StoredKey } from './keyring-store.js';
import {
  checkKeyringInvariants,
  prunable,
  retiringExpired,
  revokeKey,
  rotateNow,
  signingStandby,
  transition,
  withStandby,
} from './lifecycle.js';
import { applyRotationActions, planRotation, type RotationAction, retireDataKey } from './rotation-plan.js';
import { algorithmFor, computeVerifyUntil, type RotationPolicy, rotationPeriod } from './rotation-policy.js';
import type { KeyRecord, KeyUse } from './types.js';

/** Options of {@link KeyService.rotate}. */
export interface RotateOptions {
  /** Which key to rotate. Default `sig`. */
  use?: KeyUse;
  /** Why (kept in the audit log). */
  reason?: string;
  /** Two calls with the same key make one rotation; the second returns the first's result. */
  idempotencyKey?: string;
}

/** Result of {@link KeyService.rotate}. */
export interface RotateResult {
  kid: string;
  previousKid: string | undefined;
  /**
   * `true` when the new signing key started signing without having been in the JWKS for `jwksMaxAge`
   * (no published standby existed, e.g. two rotations or emergencies within `jwksMaxAge`): verifiers
   * with a cached JWKS may reject its tokens until they refetch. Always `false` for `enc` / `data`.
   */
  unpublished: boolean;
}

/** Result of {@link KeyService.revoke}. */
export interface RevokeResult {
  revoked: string;
  /** The key that took over, when the revoked key was active. */
  replacement: string | undefined;
  /**
   * Data keys only, set by `createKeyward`: how many records were still under the revoked key when
   * it was revoked (they stay readable; a background rewrap moves them, then its material is destroyed).
   */
  toRewrap?: number;
  /**
   * `true` when the replacement signing key started signing without having been in the JWKS for
   * `jwksMaxAge` (see {@link RotateResult.unpublished}).
   */
  unpublished: boolean;
}

/** Result of {@link KeyService.import}. */
export interface ImportKeyResult {
  /** The imported keys, in the order given (a JWKS may hold several). */
  imported: Array<{ kid: string; alg: KeyRecord['alg']; state: 'active' | 'verify-only' }>;
  /** The signing key an active import replaced (now verify-only until its `verifyUntil`). */
  previousKid: string | undefined;
  /** Verify-only imports: the `verifyUntil` they were given (epoch ms). */
  verifyUntil: number | undefined;
  /**
   * `true` for an active asymmetric import: the key signs at once without having been in the JWKS,
   * so verifiers with a cached JWKS reject its tokens until they refetch (see {@link RotateResult.unpublished}).
   */
  unpublished: boolean;
}

/** Extra options of {@link KeyService.import}. */
export interface ImportKeyContext {
  /** Kids the stored keyring does not hold that are taken anyway (the legacy `JWT_SECRET` keys). */
  reservedKids?: readonly string[];
}

/** How a rotation came about (audit `rotationType`, metric label). */
export type RotationKind = 'scheduled' | 'on_demand' | 'emergency';

/** A lifecycle event the key service reports after a commit. */
export type KeyServiceEvent =
  | { type: 'key.generated'; record: KeyRecord }
  | { type: 'key.activated'; kid: string; use: KeyUse }
  | {
      type: 'key.rotated';
      use: KeyUse;
      kid: string;
      previousKid: string | undefined;
      reason?: string;
      rotationType: RotationKind;
      /** The new signing key was not published for `jwksMaxAge` before it signed. */
      unpublished?: boolean;
    }
  | { type: 'key.revoked'; kid: string; reason: string; replacement: string | undefined }
  | { type: 'key.retired'; kid: string; use: KeyUse }
  | { type: 'key.destroyed'; kid: string; use: 'data' }
  | { type: 'key.imported'; kid: string; alg: KeyRecord['alg']; state: 'active' | 'verify-only' };

/** Result of {@link KeyService.runSchedule}. */
export interface ScheduledRotationResult {
  /** The actions committed (empty when nothing was due, or another writer did them first). */
  actions: RotationAction[];
  /** Generation of the keyring after the run. */
  generation: number;
}

/** Hooks through which the key service reports committed changes. */
export interface KeyServiceHooks {
  /** A new document was committed (or read); swap the in-memory snapshot. */
  applied(doc: KeyringDocument): Promise<void> | void;
  /** Lifecycle events for the audit log; `by` tells a scheduled run from an operator's call. */
  event?(event: KeyServiceEvent, by: 'operator' | 'scheduler'): void;
}

/**
 * Lifecycle operations on the stored keyring: bootstrap, on-demand rotation, emergency
 * revocation. Each operation is one compare-and-set of the keyring document, so it commits
 * whole or not at all, and exactly one of several concurrent writers wins each round.
 */
export class KeyService {
  readonly #repo: KeyringRepository;
  readonly #policy: RotationPolicy;
  readonly #now: () => number;
  readonly #hooks: KeyServiceHooks;

  constructor(
    repo: KeyringRepository,
    policy: RotationPolicy,
    hooks: KeyServiceHooks,
    now: () => number = Date.now,
  ) {
    this.#repo = repo;
    this.#policy = policy;
    this.#hooks = hooks;
    this.#now = now;
  }

  /**
   * Pre-generates one key per entry of `uses` (a use may repeat) that a mutation may need (generation is
   * async; CAS retries must not regenerate).
   */
  async #fresh(uses: readonly KeyUse[]): Promise<FreshKeys> {
    const out: FreshKeys = [];
    for (const use of uses)
      out.push(await generateKey({ use, alg: algorithmFor(use, this.#policy), state: 'active' }));
    return out;
  }

  /**
   * Makes sure `fresh` holds at least `count` keys of `use` (kept across CAS retries). A signing change
   * needs one key for the following standby, and one more when no standby exists to promote.
   */
  async #topUp(fresh: FreshKeys, use: KeyUse, count: number): Promise<void> {
    while (fresh.filter((f) => f.record.use === use).length < count)
      fresh.push(await generateKey({ use, alg: algorithmFor(use, this.#policy), state: 'active' }));
  }

  #added(records: readonly KeyRecord[], fresh: FreshKeys) {
    return fresh.filter((f) => records.some((r) => r.kid === f.record.kid));
  }

  /** `key.generated` for every pre-generated key the committed document holds, with its stored record. */
  #generatedEvents(doc: KeyringDocument, fresh: FreshKeys, by: 'operator' | 'scheduler'): void {
    for (const f of fresh) {
      const stored = doc.keys.find((k) => k.kid === f.record.kid);
      if (!stored) continue;
      const { sealed: _sealed, ...record } = stored;
      this.#hooks.event?.({ type: 'key.generated', record }, by);
    }
  }

  /**
   * Makes sure a keyring exists and every configured use has an active key (creating them on
   * first start). Safe when many instances start at once: one creates, the others read it.
   */
  async bootstrap(): Promise<KeyringDocument> {
    const missing = (doc: KeyringDocument | null) =>
      this.#policy.uses.filter(
        (use) => !(doc?.keys ?? []).some((k) => k.use === use && k.state === 'active'),
      );
    // Signing keeps a published standby from the start (see withStandby).
    const noStandby = (doc: KeyringDocument | null) =>
      this.#policy.uses.includes('sig') &&
      !(doc?.keys ?? []).some((k) => k.use === 'sig' && k.state === 'pending');
    const initial = await this.#repo.read();
    let needed = missing(initial);
    if (initial && needed.length === 0 && !noStandby(initial)) {
      await this.#hooks.applied(initial);
      return initial;
    }
    const fresh = await this.#fresh([
      ...needed,
      ...(this.#policy.uses.includes('sig') ? ['sig' as const] : []),
    ]);
    const now = this.#now();
    const { doc, changed } = await this.#repo.update(
      async (current) => {
        needed = missing(current);
        if (needed.length === 0 && !noStandby(current)) return undefined;
        const newKid = kidsFrom(fresh);
        let records = recordsOf(current);
        for (const use of needed) {
          const kid = newKid(use);
          const created = fresh.find((f) => f.record.kid === kid)!;
          records.push({ ...created.record, createdAt: now, activatedAt: now });
        }
        records = withStandby(records, { policy: this.#policy, now, newKid });
        // At the very first bootstrap no verifier can have cached a JWKS, so every JWKS ever served lists
        // the standby: it counts as published at once.
        if (current === null)
          records = records.map((r) =>
            r.use === 'sig' && r.state === 'pending' ? { ...r, createdWithKeyring: true } : r,
          );
        assertInvariants(records);
        return { records, added: this.#added(records, fresh) };
      },
      { create: true },
    );
    if (changed) this.#generatedEvents(doc, fresh, 'operator');
    await this.#hooks.applied(doc);
    return doc;
  }

  /**
   * Rotates a key now: a pending key of that use is promoted (it is already published), else a new
   * key is generated and activated; the previous active key turns verify-only until its
   * `verifyUntil`. Does not move the rotation schedule of other keys.
   */
  async rotate(options: RotateOptions = {}): Promise<RotateResult> {
    const use = options.use ?? 'sig';
    if (use !== 'sig' && use !== 'enc' && use !== 'data') {
      throw new KeywardError('invalid_request', 'use must be one of sig, enc, data');
    }
    const fresh = await this.#fresh([use]);
    const idem = options.idempotencyKey ? `rotate:${use}:${options.idempotencyKey}` : undefined;
    let computed: Record<string, string | undefined> | undefined;
    let retired: KeyRecord[] = [];
    const { doc, remembered, changed } = await this.#repo.update(async (current) => {
      if (!current) throw new KeywardError('key_not_found', 'no keyring exists yet');
      const previous = current.operations.find((op) => op.key === idem);
      if (idem && previous) return undefined;
      const records = recordsOf(current);
      // sig: the following standby, plus a fresh active key should no standby exist.
      if (use === 'sig') await this.#topUp(fresh, use, hasPendingSig(records) ? 1 : 2);
      const now = this.#now();
      const previousKid = records.find((r) => r.use === use && r.state === 'active')?.kid;
      const unpublished = use === 'sig' && !signingStandby(records, this.#policy, now)?.published;
      const next = pruneRetired(
        rotateNow(records, use, { policy: this.#policy, now, newKid: kidsFrom(fresh) }),
        this.#policy,
        now,
      );
      assertInvariants(next);
      const kid = next.find((r) => r.use === use && r.state === 'active')!.kid;
      retired = records.filter(
        (r) => r.state === 'retiring' && next.find((n) => n.kid === r.kid)?.state === 'retired',
      );
      const result = { kid, previousKid, ...(unpublished ? { unpublished: 'true' } : {}) };
      computed = result;
      return {
        records: next,
        added: this.#added(next, fresh),
        ...(idem ? { remember: { key: idem, at: this.#now(), result } } : {}),
      };
    });
    await this.#hooks.applied(doc);
    const result = changed
      ? (remembered?.result ?? computed)
      : doc.operations.find((op) => op.key === idem)?.result;
    const kid = result?.kid ?? doc.keys.find((k) => k.use === use && k.state === 'active')!.kid;
    const out: RotateResult = {
      kid,
      previousKid: result?.previousKid,
      unpublished: result?.unpublished === 'true',
    };
    if (changed) {
      this.#generatedEvents(doc, fresh, 'operator');
      for (const r of retired)
        this.#hooks.event?.({ type: 'key.retired', kid: r.kid, use: r.use }, 'operator');
      this.#hooks.event?.(
        {
          type: 'key.rotated',
          use,
          kid: out.kid,
          previousKid: out.previousKid,
          ...(options.reason ? { reason: options.reason } : {}),
          rotationType: 'on_demand',
          ...(out.unpublished ? { unpublished: true } : {}),
        },
        'operator',
      );
    }
    return out;
  }

  /**
   * Emergency revocation in one store transaction: marks the key revoked, promotes a replacement
   * if it was active, and removes it from the JWKS. Every instance then rejects its tokens with
   * `key_revoked`.
   */
  async revoke(kid: string, reason: string): Promise<RevokeResult> {
    const initial = await this.#repo.read();
    this.#repo.assertContinues(initial);
    const target = initial?.keys.find((k) => k.kid === kid);
    if (!target)
      throw new KeywardError('key_not_found', `no key with kid "${kid.slice(0, 64)}"`, {
        details: { kid: kid.slice(0, 64) },
      });
    if (target.origin === 'legacy') {
      throw new KeywardError(
        'key_state_invalid',
        'a legacy JWT_SECRET key is revoked by removing JWT_SECRET from the configuration',
      );
    }
    const fresh = await this.#fresh([target.use]);
    let replacement: string | undefined;
    let unpublished = false;
    const { doc, changed } = await this.#repo.update(async (current) => {
      const records = recordsOf(current);
      const before = records.find((r) => r.kid === kid);
      if (before?.state === 'revoked') return undefined;
      // sig: the following standby, plus a replacement should no standby exist.
      if (target.use === 'sig') await this.#topUp(fresh, 'sig', hasPendingSig(records) ? 1 : 2);
      const now = this.#now();
      unpublished =
        target.use === 'sig' &&
        before?.state === 'active' &&
        !signingStandby(records, this.#policy, now)?.published;
      const next = revokeKey(records, kid, { policy: this.#policy, now, reason, newKid: kidsFrom(fresh) });
      assertInvariants(next);
      replacement =
        before?.state === 'active'
          ? next.find((r) => r.use === target.use && r.state === 'active')?.kid
          : undefined;
      return { records: next, added: this.#added(next, fresh) };
    });
    await this.#hooks.applied(doc);
    if (!changed) return { revoked: kid, replacement: undefined, unpublished: false };
    this.#generatedEvents(doc, fresh, 'operator');
    this.#hooks.event?.({ type: 'key.revoked', kid, reason, replacement }, 'operator');
    if (replacement)
      this.#hooks.event?.(
        {
          type: 'key.rotated',
          use: target.use,
          kid: replacement,
          previousKid: kid,
          reason,
          rotationType: 'emergency',
          ...(unpublished ? { unpublished: true } : {}),
        },
        'operator',
      );
    return { revoked: kid, replacement, unpublished };
  }

  /**
   * Imports existing keys (bring your own key): parses and checks them ({@link prepareImport}), then
   * adds them in one compare-and-set of the keyring document, sealed like generated keys, with their
   * own kid and `origin: 'imported'`. An active import becomes the active `sig` key the way an
   * on-demand rotation would (the previous active key turns verify-only until now + `retainFor`, the
   * standby and the schedule stay as they were: the imported key is due when its predecessor was);
   * a verify-only import is `retiring` until its `verifyUntil`.
   *
   * @throws {KeywardError} the codes of {@link prepareImport}; `key_exists` for a kid already held
   * (in any state); `key_public_only` for a public key asked to sign (or a JWKS asked to);
   * `kidless_default_exists` when another live key already verifies kid-less tokens;
   * `invalid_request` for a bad `state` or `verifyUntil`; `rotation_limit` when the import would
   * leave more than `maxRetiringKeys` retiring sig keys (verify-only keys count; an active import
   * retires the previous key, as {@link rotate}).
   */
  async import(options: ImportKeyOptions, context: ImportKeyContext = {}): Promise<ImportKeyResult> {
    if (options.state !== 'active' && options.state !== 'verify-only')
      throw new KeywardError('invalid_request', 'state must be "active" or "verify-only"');
    const verifyUntilOption =
      options.verifyUntil instanceof Date ? options.verifyUntil.getTime() : options.verifyUntil;
    if (options.state === 'active' && verifyUntilOption !== undefined)
      throw new KeywardError('invalid_request', 'verifyUntil is for verify-only imports');
    if (
      verifyUntilOption !== undefined &&
      !(Number.isFinite(verifyUntilOption) && verifyUntilOption > this.#now())
    )
      throw new KeywardError('invalid_request', 'verifyUntil must be a time in the future');
    const prepared = await prepareImport(options);
    if (options.state === 'active') {
      if (prepared.length !== 1)
        throw new KeywardError(
          'key_public_only',
          'a JWKS holds public keys: it can only be imported verify-only',
        );
      if (prepared[0]!.publicOnly)
        throw new KeywardError(
          'key_public_only',
          'a public key cannot sign: import it verify-only, or import the private key',
          { details: { kid: prepared[0]!.kid } },
        );
    }
    if (options.defaultForKidless === true && prepared.length !== 1)
      throw new KeywardError(
        'kidless_default_exists',
        'defaultForKidless needs a single key, the JWKS holds several',
      );
    for (const p of prepared)
      if (context.reservedKids?.includes(p.kid))
        throw new KeywardError('key_exists', `kid "${p.kid}" is a legacy JWT_SECRET key's`, {
          details: { kid: p.kid },
        });
    // A standby, should the keyring have none when an active key comes in.
    const fresh: FreshKeys = options.state === 'active' ? await this.#fresh(['sig']) : [];
    let previousKid: string | undefined;
    let verifyUntil: number | undefined;
    let retired: KeyRecord[] = [];
    const { doc } = await this.#repo.update(async (current) => {
      if (!current) throw new KeywardError('key_not_found', 'no keyring exists yet');
      const now = this.#now();
      const records = recordsOf(current);
      for (const p of prepared)
        if (records.some((r) => r.kid === p.kid))
          throw new KeywardError('key_exists', `the keyring already holds a key with kid "${p.kid}"`, {
            details: { kid: p.kid },
          });
      // Retiring sig keys past their verifyUntil are retired first: they neither count nor verify.
      let next = records.map((r) =>
        r.use === 'sig' && retiringExpired(r, this.#policy, now) ? transition(r, 'retired', now) : r,
      );
      retired = next.filter((r, i) => r.state === 'retired' && records[i]!.state !== 'retired');
      if (options.defaultForKidless === true) {
        const other = next.find(
          (r) =>
            r.defaultForKidless === true &&
            (r.state === 'active' || r.state === 'retiring' || r.state === 'pending'),
        );
        if (other)
          throw new KeywardError(
            'kidless_default_exists',
            `key "${other.kid}" already verifies tokens without kid until it retires; at most one key may`,
            { details: { kid: other.kid } },
          );
      }
      const added: Array<{ record: KeyRecord; material: KeyMaterial }> = [];
      previousKid = undefined;
      verifyUntil = undefined;
      if (options.state === 'active') {
        const p = prepared[0]!;
        const previous = next.find((r) => r.use === 'sig' && r.state === 'active');
        const retiring = next.filter((r) => r.use === 'sig' && r.state === 'retiring');
        if (previous !== undefined && retiring.length >= this.#policy.maxRetiringKeys)
          throw new KeywardError(
            'rotation_limit',
            `refusing to activate an imported key: sig already has ${retiring.length} retiring keys (maxRetiringKeys ${this.#policy.maxRetiringKeys})`,
            {
              details: {
                use: 'sig',
                retiring: retiring.length,
                maxRetiringKeys: this.#policy.maxRetiringKeys,
              },
            },
          );
        const record: KeyRecord = {
          kid: p.kid,
          use: 'sig',
          alg: p.alg,
          state: 'active',
          origin: 'imported',
          createdAt: now,
          activatedAt: now,
          ...(options.defaultForKidless === true ? { defaultForKidless: true } : {}),
        };
        if (previous) {
          previousKid = previous.kid;
          // Like an on-demand rotation: the schedule keeps its cadence (the standby is due then).
          record.rotateAt =
            previous.rotateAt ??
            (previous.activatedAt ?? previous.createdAt) + rotationPeriod(this.#policy, 'sig');
          next = next.map((r) =>
            r === previous
              ? transition(r, 'retiring', now, { verifyUntil: computeVerifyUntil(now, this.#policy) })
              : r,
          );
        }
        next.push(record);
        next = withStandby(next, { policy: this.#policy, now, newKid: kidsFrom(fresh) });
        added.push({ record, material: p.material }, ...this.#added(next, fresh));
      } else {
        // The keyring stays bounded (see rotate): verify-only imports count as retiring keys.
        const retiring = next.filter((r) => r.use === 'sig' && r.state === 'retiring').length;
        if (retiring + prepared.length > this.#policy.maxRetiringKeys)
          throw new KeywardError(
            'rotation_limit',
            `refusing to import ${prepared.length} verify-only key(s): sig already has ${retiring} retiring keys (maxRetiringKeys ${this.#policy.maxRetiringKeys})`,
            { details: { use: 'sig', retiring, maxRetiringKeys: this.#policy.maxRetiringKeys } },
          );
        verifyUntil = verifyUntilOption ?? computeVerifyUntil(now, this.#policy);
        for (const p of prepared) {
          const record: KeyRecord = {
            kid: p.kid,
            use: 'sig',
            alg: p.alg,
            state: 'retiring',
            origin: 'imported',
            createdAt: now,
            retiringAt: now,
            verifyUntil,
            ...(options.defaultForKidless === true ? { defaultForKidless: true } : {}),
          };
          next.push(record);
          added.push({ record, material: p.material });
        }
      }
      assertInvariants(next);
      return { records: next, added };
    });
    await this.#hooks.applied(doc);
    this.#generatedEvents(doc, fresh, 'operator');
    for (const r of retired) this.#hooks.event?.({ type: 'key.retired', kid: r.kid, use: r.use }, 'operator');
    const imported = prepared.map((p) => ({ kid: p.kid, alg: p.alg, state: options.state }));
    for (const i of imported) this.#hooks.event?.({ type: 'key.imported', ...i }, 'operator');
    const unpublished = options.state === 'active' && !prepared[0]!.alg.startsWith('HS');
    if (options.state === 'active')
      this.#hooks.event?.(
        {
          type: 'key.rotated',
          use: 'sig',
          kid: prepared[0]!.kid,
          previousKid,
          reason: 'key imported',
          rotationType: 'on_demand',
          ...(unpublished ? { unpublished: true } : {}),
        },
        'operator',
      );
    return { imported, previousKid, verifyUntil, unpublished };
  }

  /**
   * Retires a retiring data key once a rewrap job has left no ciphertext under it
   * (`remaining` must be 0). Idempotent for an already retired key.
   */
  async retireDataKey(kid: string, remaining: number): Promise<void> {
    let changed = false;
    const { doc } = await this.#repo.update((current) => {
      const records = recordsOf(current);
      if (records.find((r) => r.kid === kid)?.state === 'retired') return undefined;
      changed = true;
      return { records: retireDataKey(records, { kid, remaining, now: this.#now() }) };
    });
    await this.#hooks.applied(doc);
    if (changed) this.#hooks.event?.({ type: 'key.retired', kid, use: 'data' }, 'operator');
  }

  /**
   * Destroys a revoked data key's material once a rewrap left nothing under it: its sealed blob is
   * removed from the keyring document in one compare-and-set, its record stays (with `destroyedAt`)
   * for audit. Idempotent: `false` when it was already destroyed.
   *
   * @throws {KeywardError} `key_not_found` for an unknown kid; `key_state_invalid` unless it is a
   * revoked, generated data key.
   */
  async destroyDataKey(kid: string): Promise<boolean> {
    let changed = false;
    const { doc } = await this.#repo.update((current) => {
      const records = recordsOf(current);
      const target = records.find((r) => r.kid === kid);
      if (!target)
        throw new KeywardError('key_not_found', `no key with kid "${kid.slice(0, 64)}"`, {
          details: { kid: kid.slice(0, 64) },
        });
      if (target.use !== 'data' || target.state !== 'revoked' || target.origin === 'legacy')
        throw new KeywardError(
          'key_state_invalid',
          `key "${kid.slice(0, 64)}" is not a revoked data key; only those are destroyed`,
          { details: { kid: kid.slice(0, 64), state: target.state, use: target.use } },
        );
      if (target.destroyedAt !== undefined) {
        changed = false;
        return undefined;
      }
      changed = true;
      const now = this.#now();
      return { records: records.map((r) => (r === target ? { ...r, destroyedAt: now } : r)) };
    });
    await this.#hooks.applied(doc);
    if (changed) this.#hooks.event?.({ type: 'key.destroyed', kid, use: 'data' }, 'operator');
    return changed;
  }

  /**
   * Runs the rotation plan once ({@link planRotation} at `now`), as the scheduler does under its
   * lock: generates pending keys, activates due ones, retires expired ones, in one compare-and-set.
   * `fence` is the lock's fencing token; a write carrying a token lower than one that already
   * wrote is refused with `lock_lost`, so a holder paused past its lock TTL cannot apply a stale plan.
   */
  async runSchedule(fence: number): Promise<ScheduledRotationResult> {
    const initial = await this.#repo.read();
    // Never plan on a keyring this instance does not hold: none (store data lost) or a foreign one.
    this.#repo.assertContinues(initial);
    const initialPlan = planRotation(recordsOf(initial), this.#policy, this.#now());
    if (initial && initialPlan.length === 0) return { actions: [], generation: initial.generation };
    const fresh: FreshKeys = [];
    // Enough pre-generated keys of each use and algorithm for the plan's bootstrap / generate actions.
    const generateFor = async (actions: readonly RotationAction[]) => {
      const wanted: Array<{ use: KeyUse; alg: KeyRecord['alg'] }> = [];
      for (const a of actions) if (a.type === 'generate' || a.type === 'bootstrap') wanted.push(a);
      for (const [i, w] of wanted.entries()) {
        const have = fresh.filter((f) => f.record.use === w.use && f.record.alg === w.alg).length;
        const need = wanted.slice(0, i + 1).filter((x) => x.use === w.use && x.alg === w.alg).length;
        if (have < need) fresh.push(await generateKey({ use: w.use, alg: w.alg, state: 'pending' }));
      }
    };
    let handedOut: string[] = [];
    await generateFor(initialPlan);
    let applied: RotationAction[] = [];
    const { doc, changed } = await this.#repo.update(
      async (current) => {
        const records = recordsOf(current);
        const now = this.#now();
        const actions = planRotation(records, this.#policy, now);
        if (actions.length === 0) return undefined;
        await generateFor(actions);
        const kids = kidsFrom(fresh);
        handedOut = [];
        const next = applyRotationActions(records, actions, now, (use) => {
          const kid = kids(use);
          handedOut.push(kid);
          return kid;
        });
        assertInvariants(next);
        applied = actions;
        return { records: next, added: this.#added(next, fresh) };
      },
      { fence },
    );
    await this.#hooks.applied(doc);
    if (!changed) return { actions: [], generation: doc.generation };
    for (const event of scheduledEvents(applied, doc.keys, handedOut))
      this.#hooks.event?.(event, 'scheduler');
    return { actions: applied, generation: doc.generation };
  }
}

/** Pre-generated keys (record + material) a mutation may add. */
type FreshKeys = Array<{ record: KeyRecord; material: KeyMaterial }>;

/**
 * A `newKid` for one mutation attempt: hands out the pre-generated kids of each use in order. Running
 * out means the keyring changed under the caller in a way the pre-generation did not foresee.
 */
function kidsFrom(fresh: FreshKeys): (use: KeyUse) => string {
  const used = new Set<string>();
  return (use) => {
    const next = fresh.find((f) => f.record.use === use && !used.has(f.record.kid));
    if (next === undefined)
      throw new KeywardError(
        'store_conflict',
        `the keyring changed while a new ${use} key was prepared; try again`,
      );
    used.add(next.record.kid);
    return next.record.kid;
  };
}

function hasPendingSig(records: readonly KeyRecord[]): boolean {
  return records.some((r) => r.use === 'sig' && r.state === 'pending');
}

/** Drops `retired` records older than `retiredRetention` (see {@link prunable}). */
function pruneRetired(records: KeyRecord[], policy: RotationPolicy, now: number): KeyRecord[] {
  return records.filter((r) => !prunable(r, policy, now));
}

function recordsOf(doc: KeyringDocument | null): KeyRecord[] {
  return (doc?.keys ?? []).map(({ sealed: _sealed, ...r }) => r);
}

/** The audit events of a committed scheduled run, in the order the actions took effect. */
function scheduledEvents(
  actions: readonly RotationAction[],
  keys: readonly StoredKey[],
  newKids: readonly string[],
): KeyServiceEvent[] {
  const events: KeyServiceEvent[] = [];
  const find = (kid: string | undefined) => keys.find((k) => k.kid === kid);
  let appended = 0;
  for (const action of actions) {
    if (action.type === 'prune') continue;
    if (action.type === 'bootstrap' || action.type === 'generate') {
      const stored = find(newKids[appended++]);
      if (!stored) continue;
      const { sealed: _sealed, ...record } = stored;
      events.push({ type: 'key.generated', record });
      if (action.type === 'bootstrap')
        events.push({ type: 'key.activated', kid: record.kid, use: record.use });
    } else if (action.type === 'activate') {
      events.push({ type: 'key.activated', kid: action.kid, use: action.use });
      if (action.demote !== undefined)
        events.push({
          type: 'key.rotated',
          use: action.use,
          kid: action.kid,
          previousKid: action.demote,
          rotationType: 'scheduled',
        });
    } else {
      const use = find(action.kid)?.use;
      if (use) events.push({ type: 'key.retired', kid: action.kid, use });
    }
  }
  return events;
}

function assertInvariants(records: readonly KeyRecord[]): void {
  const problems = checkKeyringInvariants(records);
  if (problems.length > 0)
    throw new KeywardError(
      'key_state_invalid',
      `refusing a change that breaks the keyring: ${problems.join('; ')}`,
    );
}
