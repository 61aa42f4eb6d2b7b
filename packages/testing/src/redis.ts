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
