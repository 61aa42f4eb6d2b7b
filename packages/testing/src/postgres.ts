import { describe } from 'vitest';

/**
 * The PostgreSQL URL tests run against (`DATABASE_URL`), or `undefined`.
 *
 * Tests that need PostgreSQL use {@link describeWithPostgres}: without `DATABASE_URL` they are
 * skipped, unless `KEYWARD_REQUIRE_TOOLS=1` (set by CI), where a missing PostgreSQL fails the run.
 */
export function postgresTestUrl(): string | undefined {
  const url = process.env.DATABASE_URL;
  if (!url && process.env.KEYWARD_REQUIRE_TOOLS === '1') {
    throw new Error('KEYWARD_REQUIRE_TOOLS=1 but DATABASE_URL is not set');
  }
  return url || undefined;
}

/** `describe` when a real PostgreSQL is configured (`DATABASE_URL`), `describe.skip` otherwise. */
export const describeWithPostgres: typeof describe = (
  postgresTestUrl() ? describe : describe.skip
) as typeof describe;
