import type { Store } from '../store/types.js';

/** Store key prefix of token-level revocations. */
export const REVOCATION_PREFIX = 'revoked:';
/** Store counter bumped by every revocation, polled to repair lost announcements. */
export const REVOCATION_GENERATION_KEY = 'revoked-generation';

/** A revocation as announced on the events channel. */
export type RevocationEvent =
  | { type: 'revoke-jti'; jti: string; until: number }
  | { type: 'revoke-subject'; sub: string; notBefore: number };

/**
 * The in-memory revocation set each instance holds, so verifying stays free of I/O:
 * revoked `jti`s (kept until the token would have expired anyway) and per-subject
 * not-before times ("logout everywhere").
 */
export class RevocationSet {
  readonly #jti = new Map<string, number>();
  readonly #subjects = new Map<string, number>();
  /** Generation of the store counter this set reflects. */
  generation = 0;

  /**
   * Applies one revocation, and advances the generation when `generation` is the next one.
   * Returns whether anything changed (an instance also hears its own announcements).
   */
  apply(event: RevocationEvent, generation?: number): boolean {
    // Only a gap-free sequence may skip the next reload; otherwise the poller lists the store.
    if (generation !== undefined && generation === this.generation + 1) this.generation = generation;
    if (event.type === 'revoke-jti') {
      if (this.#jti.get(event.jti) === event.until) return false;
      this.#jti.set(event.jti, event.until);
      return true;
    }
    if ((this.#subjects.get(event.sub) ?? 0) >= event.notBefore) return false;
    this.#subjects.set(event.sub, event.notBefore);
    return true;
  }

  /** The verifier's view: `token_revoked` for a revoked jti, or a token issued before its subject's not-before. */
  check(claims: { jti?: string; sub?: string; iat?: number }): 'token_revoked' | undefined {
    if (claims.jti !== undefined && this.#jti.size > 0 && this.#jti.has(claims.jti)) return 'token_revoked';
    if (claims.sub !== undefined && this.#subjects.size > 0) {
      const notBefore = this.#subjects.get(claims.sub);
      // iat is in seconds; a token issued in the same second as logout-everywhere is revoked too.
      if (notBefore !== undefined && (claims.iat === undefined || claims.iat * 1000 <= notBefore))
        return 'token_revoked';
    }
    return undefined;
  }

  /** The subject's not-before (epoch ms) from "logout everywhere", if any. */
  subjectNotBefore(sub: string): number | undefined {
    return this.#subjects.size > 0 ? this.#subjects.get(sub) : undefined;
  }

  /** Drops jti entries whose tokens have expired anyway. */
  prune(now: number): void {
    for (const [jti, until] of this.#jti) if (until <= now) this.#jti.delete(jti);
  }

  /** Replaces the content with what the store holds (start-up and poll repair). */
  async load(store: Store, now: number): Promise<void> {
    const jti = new Map<string, number>();
    const subjects = new Map<string, number>();
    let cursor: string | undefined;
    const generation = Number((await store.get(REVOCATION_GENERATION_KEY)) ?? 0);
    do {
      const page = await store.list(REVOCATION_PREFIX, cursor === undefined ? {} : { cursor });
      for (const { key, value } of page.entries) {
        const rest = key.slice(REVOCATION_PREFIX.length);
        const at = Number(value);
        if (!Number.isFinite(at)) continue;
        if (rest.startsWith('jti:')) {
          if (at > now) jti.set(rest.slice(4), at);
        } else if (rest.startsWith('sub:')) subjects.set(rest.slice(4), at);
      }
      cursor = page.cursor ?? undefined;
    } while (cursor !== undefined);
    this.#jti.clear();
    for (const [k, v] of jti) this.#jti.set(k, v);
    this.#subjects.clear();
    for (const [k, v] of subjects) this.#subjects.set(k, v);
    this.generation = generation;
  }

  /** Every revocation held, as the events that made it (to write them back after store data loss). */
  entries(): RevocationEvent[] {
    return [
      ...[...this.#jti].map(([jti, until]): RevocationEvent => ({ type: 'revoke-jti', jti, until })),
      ...[...this.#subjects].map(
        ([sub, notBefore]): RevocationEvent => ({ type: 'revoke-subject', sub, notBefore }),
      ),
    ];
  }

  /** Number of revoked jtis and subjects held (for metrics and health). */
  get size(): { jti: number; subjects: number } {
    return { jti: this.#jti.size, subjects: this.#subjects.size };
  }
}

/**
 * Persists a revocation, bumps the generation counter and announces it (with the new generation,
 * so receivers that saw every announcement skip the reload). Resolves the new generation.
 *
 * @example
 * ```ts
 * await persistRevocation(store, { type: 'revoke-jti', jti, until: exp * 1000 }, Date.now())
 * ```
 */
export async function persistRevocation(store: Store, event: RevocationEvent, now: number): Promise<number> {
  if (event.type === 'revoke-jti') {
    const ttlMs = Math.max(1000, event.until - now);
    await store.set(`${REVOCATION_PREFIX}jti:${event.jti}`, String(event.until), { ttlMs });
  } else {
    await store.set(`${REVOCATION_PREFIX}sub:${event.sub}`, String(event.notBefore));
  }
  const generation = await store.increment(REVOCATION_GENERATION_KEY);
  await store.publish('events', JSON.stringify({ ...event, generation, at: now })).catch(() => undefined);
  return generation;
}
