import type { KeywardCore } from '../core.js';
import { KeywardError } from '../errors.js';
import { type FamilyRecord, keys, parseRecord } from './records.js';

/** Compare-and-set retries before giving up with `store_conflict` (only under pathological contention). */
const CAS_ATTEMPTS = 16;
/** Live access-token jtis kept per family; older ones expire within one access-token lifetime anyway. */
const MAX_LIVE = 32;

/** Why a family was revoked. */
export type FamilyRevokeReason = 'logout' | 'logout_everywhere' | 'refresh_token_reused';

/**
 * Read-modify-write of refresh-token families. Every write is a compare-and-set on the family
 * record, so a rotation racing a revocation never resurrects a revoked family.
 */
export class FamilyRepository {
  readonly #core: KeywardCore;
  readonly #ttlMs: number;

  constructor(core: KeywardCore, ttlMs: number) {
    this.#core = core;
    this.#ttlMs = ttlMs;
  }

  async read(id: string): Promise<{ raw: string; family: FamilyRecord } | undefined> {
    const raw = await this.#core.store.get(keys.family(id));
    const family = parseRecord<FamilyRecord>(raw);
    return raw !== null && family ? { raw, family } : undefined;
  }

  /** Writes a new family and its subject-index entry. */
  async create(family: FamilyRecord): Promise<void> {
    const { store } = this.#core;
    await store.set(keys.family(family.id), JSON.stringify(family), { ttlMs: this.#ttlMs });
    await store.set(keys.subject(family.sub, family.id), '1', { ttlMs: this.#ttlMs });
  }

  /**
   * Points the family at its new refresh token, records the new access token and slides the TTL.
   * Resolves `false` when the family is gone or revoked (the caller then discards what it minted).
   */
  async advance(id: string, current: string, access: [string, number]): Promise<boolean> {
    const { store, now } = this.#core;
    for (let attempt = 0; attempt < CAS_ATTEMPTS; attempt++) {
      const found = await this.read(id);
      if (!found || found.family.revoked || found.family.expiresAt <= now()) return false;
      const at = now();
      const live = found.family.live.filter(([, exp]) => exp > at).slice(-(MAX_LIVE - 1));
      const next: FamilyRecord = {
        ...found.family,
        current,
        expiresAt: at + this.#ttlMs,
        live: [...live, access],
      };
      if (
        await store.compareAndSet(keys.family(id), found.raw, JSON.stringify(next), { ttlMs: this.#ttlMs })
      ) {
        await store.set(keys.subject(next.sub, id), '1', { ttlMs: this.#ttlMs });
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
      const at = now();
      for (const [jti, exp] of next.live) if (exp > at) await revocations.revokeToken(jti, exp);
      metrics.recordRevocation('family');
      return next;
    }
    throw new KeywardError('store_conflict', 'refresh-token family kept changing; try again', {
      details: { family: id },
    });
  }

  /** Ids of the families of `sub` that are still live. */
  async idsOf(sub: string): Promise<string[]> {
    const prefix = keys.subjectPrefix(sub);
    const ids: string[] = [];
    let cursor: string | undefined;
    do {
      const page = await this.#core.store.list(prefix, cursor === undefined ? {} : { cursor });
      for (const { key } of page.entries) ids.push(key.slice(prefix.length));
      cursor = page.cursor ?? undefined;
    } while (cursor !== undefined);
    return ids;
  }
}
