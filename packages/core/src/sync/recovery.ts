import type { Store } from '../store/types.js';
import {
  encodeJtiKey,
  encodeSubjectKey,
  REVOCATION_GENERATION_KEY,
  REVOCATION_JTI_PREFIX,
  REVOCATION_SUB_PREFIX,
  type RevocationEvent,
} from './revocations.js';

/** Records written back stay this long past their `until`: the largest clock tolerance a verifier may use. */
const WRITE_BACK_GRACE_MS = 600_000;

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
      await store.compareAndSet(
        `${REVOCATION_JTI_PREFIX}${encodeJtiKey(event.jti)}`,
        null,
        String(event.until),
        {
          ttlMs: Math.max(1000, event.until + WRITE_BACK_GRACE_MS - now),
        },
      );
      continue;
    }
    const key = `${REVOCATION_SUB_PREFIX}${encodeSubjectKey(event.sub)}`;
    const record = JSON.stringify({ notBefore: event.notBefore, until: event.until });
    const ttl = Number.isFinite(event.until)
      ? { ttlMs: Math.max(1000, event.until + WRITE_BACK_GRACE_MS - now) }
      : {};
    for (let attempt = 0; attempt < 5; attempt++) {
      const raw = await store.get(key);
      if (raw !== null && storedNotBefore(raw) >= event.notBefore) break;
      if (await store.compareAndSet(key, raw, record, ttl)) break;
    }
  }
  return store.increment(REVOCATION_GENERATION_KEY);
}

/** The not-before of a stored subject record (`{notBefore, until}`, or a bare number of the older layout). */
function storedNotBefore(raw: string): number {
  try {
    const parsed = JSON.parse(raw) as unknown;
    const value = typeof parsed === 'number' ? parsed : (parsed as { notBefore?: unknown } | null)?.notBefore;
    return typeof value === 'number' && Number.isFinite(value) ? value : 0;
  } catch {
    return 0;
  }
}
