import type { KeywardCore } from '../core.js';
import { KeywardError } from '../errors.js';
import { storeEntries } from '../store/entries.js';
import { type FamilyRecord, keys, parseRecord } from './records.js';

/** Compare-and-set retries before giving up with `store_conflict` (only under pathological contention). */
const CAS_ATTEMPTS = 16;

/** Why a family was revoked. */
export type FamilyRevokeReason = 'logout' | 'logout_everywhere' | 'refresh_token_reused';

/**
 * Read-modify-write of refresh-token families. Every write is a compare-and-set on the family
 * record, so a rotation racing a revocation never resurrects a revoked family.
 */
export class FamilyRepository {
  readonly #core: KeywardCore;
  readonly #depth: number;

  /** `depth`: how many spent refresh tokens per family keep their marker (reuse detection). */
  constructor(core: KeywardCore, depth: number) {
    this.#core = core;
    this.#depth = depth;
  }

  async read(id: string): Promise<{ raw: string; family: FamilyRecord } | undefined> {
    const raw = await this.#core.store.get(keys.family(id));
    const family = parseRecord<FamilyRecord>(raw);
    return raw !== null && family ? { raw, family } : undefined;
  }

  /** Writes a new family and its subject-index entry, both expiring at the family's `expiresAt`. */
  async create(family: FamilyRecord): Promise<void> {
    const { store } = this.#core;
    const ttlMs = this.#ttlOf(family.expiresAt);
    await store.set(keys.family(family.id), JSON.stringify(family), { ttlMs });
    await store.set(keys.subject(family.sub, family.id), '1', { ttlMs });
  }

  /**
   * Adds an access token to the family's collection, expiring with the token (or the family, if
   * sooner). Written before the family record points at the token's refresh token, so a
   * revocation that commits after this write lists it, and one that committed before makes
   * {@link advance} fail.
   */
  async recordAccess(id: string, jti: string, expMs: number, familyExpiresAt: number): Promise<void> {
    const until = Math.min(expMs, familyExpiresAt);
    await this.#core.store.set(keys.familyAccess(id, jti), String(expMs), { ttlMs: this.#ttlOf(until) });
  }

  /**
   * Points the family at its new refresh token `current` (expiring at `expiresAt`), remembers the
   * token just spent (`spent`) and slides the TTL. Spent tokens beyond the reuse-detection depth
   * lose their marker and sealed successor pair, so a family's state stays bounded however often
   * it is refreshed. Resolves `false` when the family is gone or revoked (the caller then discards
   * what it minted).
   */
  async advance(id: string, spent: string, current: string, expiresAt: number): Promise<boolean> {
    const { store, now } = this.#core;
    for (let attempt = 0; attempt < CAS_ATTEMPTS; attempt++) {
      const found = await this.read(id);
      if (!found || found.family.revoked || found.family.expiresAt <= now()) return false;
      const at = now();
      // The chain oldest → newest: each spent token's successor pair is stored under the next hash.
      const chain = [...(found.family.spent ?? []), spent, current];
      const kept = chain.slice(0, -1);
      const dropped = kept.length > this.#depth ? kept.length - this.#depth : 0;
      const live = found.family.live?.filter(([, exp]) => exp > at) ?? [];
      const { live: _legacy, ...rest } = found.family;
      const next: FamilyRecord = {
        ...rest,
        current,
        expiresAt,
        spent: kept.slice(dropped),
        ...(live.length > 0 ? { live } : {}),
      };
      const ttlMs = this.#ttlOf(expiresAt);
      if (await store.compareAndSet(keys.family(id), found.raw, JSON.stringify(next), { ttlMs })) {
        await store.set(keys.subject(next.sub, id), '1', { ttlMs });
        for (let i = 0; i < dropped; i++) {
          await store.delete(keys.token(chain[i] as string));
          await store.delete(keys.pair(chain[i + 1] as string));
        }
        return true;
      }
    }
    throw new KeywardError('store_conflict', 'refresh-token family kept changing; try again', {
      details: { family: id },
    });
  }

  /**
   * Marks the family revoked (kept until it would have expired, so its tokens keep failing as
   * revoked rather than unknown) and revokes its access tokens that may still be live.
   * Resolves the family if this call revoked it, `undefined` if it was already revoked or gone.
   */
  async revoke(id: string, reason: FamilyRevokeReason): Promise<FamilyRecord | undefined> {
    const { store, now, revocations, metrics } = this.#core;
    for (let attempt = 0; attempt < CAS_ATTEMPTS; attempt++) {
      const found = await this.read(id);
      if (!found || found.family.revoked) return undefined;
      const next: FamilyRecord = { ...found.family, revoked: true, revokedReason: reason };
      const ttlMs = Math.max(1, found.family.expiresAt - now());
      if (!(await store.compareAndSet(keys.family(id), found.raw, JSON.stringify(next), { ttlMs }))) continue;
      await store.delete(keys.subject(next.sub, id));
      for (const [jti, exp] of await this.#accessTokens(next)) {
        if (exp > now()) await revocations.revokeToken(jti, exp);
      }
      metrics.recordRevocation('family');
      return next;
    }
    throw new KeywardError('store_conflict', 'refresh-token family kept changing; try again', {
      details: { family: id },
    });
  }

  /** Every access token of the family that has not expired: its collection, plus a legacy `live` list. */
  async #accessTokens(family: FamilyRecord): Promise<Array<[string, number]>> {
    const prefix = keys.familyAccessPrefix(family.id);
    const found = new Map<string, number>(family.live ?? []);
    for await (const { key, value } of storeEntries(this.#core.store, 'list', prefix)) {
      const exp = Number(value);
      if (Number.isFinite(exp)) found.set(key.slice(prefix.length), exp);
    }
    return [...found];
  }

  /** A TTL ending at `until` (epoch ms), at least 1 ms. */
  #ttlOf(until: number): number {
    return Math.max(1, until - this.#core.now());
  }

  /** Ids of the families of `sub` that are still live. */
  async idsOf(sub: string): Promise<string[]> {
    const prefix = keys.subjectPrefix(sub);
    const ids: string[] = [];
    for await (const { key } of storeEntries(this.#core.store, 'list', prefix))
      ids.push(key.slice(prefix.length));
    return ids;
  }
}
