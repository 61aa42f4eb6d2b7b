import type { Store } from '../store/types.js';
import { REVOCATION_GENERATION_KEY, REVOCATION_PREFIX, type RevocationEvent } from './revocations.js';

/**
 * Writes revocations back into a store that lost them (data loss, restart without persistence),
 * merging with what is there: a `jti` entry is created only if absent, a subject's not-before is
 * only raised, never lowered, so instances that each write back what they hold end with the union.
 * Expired `jti` entries are skipped. Then bumps the revocation counter and announces nothing: the
 * other instances' polls see the counter move and reload the whole set. Resolves the new counter.
 *
 * @example
 * ```ts
 * await republishRevocations(store, revocations.entries(), Date.now())
 * ```
 */
export async function republishRevocations(
  store: Store,
  events: readonly RevocationEvent[],
  now: number,
): Promise<number> {
  for (const event of events) {
    if (event.type === 'revoke-jti') {
      if (event.until <= now) continue;
      await store.compareAndSet(`${REVOCATION_PREFIX}jti:${event.jti}`, null, String(event.until), {
        ttlMs: Math.max(1000, event.until - now),
      });
      continue;
    }
    const key = `${REVOCATION_PREFIX}sub:${event.sub}`;
    for (let attempt = 0; attempt < 5; attempt++) {
      const raw = await store.get(key);
      if (raw !== null && Number(raw) >= event.notBefore) break;
      if (await store.compareAndSet(key, raw, String(event.notBefore))) break;
    }
  }
  return store.increment(REVOCATION_GENERATION_KEY);
}
