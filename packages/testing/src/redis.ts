import { randomBytes } from 'node:crypto';
import { describe } from 'vitest';

/**
 * The Redis URL tests run against (`REDIS_URL`), or `undefined`.
 *
 * Tests that need Redis use {@link describeWithRedis}: without `REDIS_URL` they are skipped,
 * unless `KEYWARD_REQUIRE_REDIS=1` (set by CI), where a missing Redis fails the run instead.
 */
export function redisTestUrl(): string | undefined {
  const url = process.env.REDIS_URL;
  if (!url && process.env.KEYWARD_REQUIRE_REDIS === '1') {
    throw new Error('KEYWARD_REQUIRE_REDIS=1 but REDIS_URL is not set');
  }
  return url || undefined;
}

/** `describe` when a real Redis is configured, `describe.skip` otherwise. */
export const describeWithRedis: typeof describe = (
  redisTestUrl() ? describe : describe.skip
) as typeof describe;

/** A unique key prefix for one test file, so files never touch each other's keys (no FLUSHALL). */
export function uniquePrefix(label: string): string {
  return `kwtest:${label}:${randomBytes(4).toString('hex')}:`;
}

/**
 * Deletes every Redis key under `prefix` (SCAN + DEL, never FLUSHALL or KEYS), so a test file
 * leaves the shared server as it found it. A server that is already gone is ignored.
 *
 * @example
 * ```ts
 * afterAll(() => dropRedisPrefix(url, prefix))
 * ```
 */
export async function dropRedisPrefix(url: string, prefix: string): Promise<void> {
  const { Redis } = await import('ioredis');
  const admin = new Redis(url, { maxRetriesPerRequest: 1, lazyConnect: true });
  try {
    await admin.connect();
    const pattern = `${prefix.replace(/[\\*?[\]]/g, '\\$&')}*`;
    let cursor = '0';
    do {
      const [next, keys] = await admin.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
      if (keys.length > 0) await admin.del(...keys);
      cursor = next;
    } while (cursor !== '0');
  } catch {
    // a dedicated server that is gone already holds nothing to clean
  } finally {
    admin.disconnect();
  }
}
