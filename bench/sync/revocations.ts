/**
 * The revocation set at 100k live revocations: a full merge-reload from the store, a prune that
 * finds 1% due (expiry order: only due entries are touched), and `check` on the hot path.
 * Memory store by default; set REDIS_URL to list from a real Redis (a scratch prefix, dropped after).
 * Run: cd bench && npx tsx --conditions=@keyward/source sync/revocations.ts
 */
import { createMemoryStore } from '../../packages/core/src/store/memory.js';
import { createRedisStore } from '../../packages/core/src/store/redis.js';
import type { Store } from '../../packages/core/src/store/types.js';
import { persistRevocation, RevocationSet } from '../../packages/core/src/sync/revocations.js';

const LIVE = Number(process.env.KW_BENCH_REVOCATIONS ?? 100_000);
const now = Date.now();
const prefix = `{kwbench${process.pid}}:`;
const store: Store = process.env.REDIS_URL
  ? createRedisStore({ url: process.env.REDIS_URL, prefix })
  : createMemoryStore();

const ms = (start: bigint) => Number(process.hrtime.bigint() - start) / 1e6;

try {
  let started = process.hrtime.bigint();
  for (let i = 0; i < LIVE; i++) {
    // 1% of them expire first, the rest later; a few subjects among them.
    const until = now + (i % 100 === 0 ? 60_000 : 600_000);
    const event =
      i % 50 === 0
        ? { type: 'revoke-subject' as const, sub: `user-${i}`, notBefore: now, until }
        : { type: 'revoke-jti' as const, jti: `jti-${i}`, until };
    await persistRevocation(store, event, now);
  }
  console.log(`write ${LIVE} revocations (${store.driver}): ${ms(started).toFixed(0)} ms`);

  const set = new RevocationSet();
  started = process.hrtime.bigint();
  await set.load(store, now);
  console.log(`first load: ${ms(started).toFixed(0)} ms, held ${JSON.stringify(set.size)}`);
  started = process.hrtime.bigint();
  await set.load(store, now);
  console.log(`merge-reload (nothing new): ${ms(started).toFixed(0)} ms`);

  started = process.hrtime.bigint();
  set.prune(now + 1000);
  console.log(`prune, nothing due: ${(ms(started) * 1000).toFixed(1)} µs`);
  started = process.hrtime.bigint();
  set.prune(now + 120_000);
  console.log(`prune, 1% due: ${ms(started).toFixed(2)} ms, held ${JSON.stringify(set.size)}`);

  const claims = [
    { jti: 'jti-7', sub: 'x', iat: 1 },
    { jti: 'nope', sub: 'user-50', iat: 1 },
    { jti: 'nope', sub: 'nobody', iat: 1 },
  ];
  const N = 3_000_000;
  let hits = 0;
  started = process.hrtime.bigint();
  for (let i = 0; i < N; i++) if (set.check(claims[i % 3]!) !== undefined) hits++;
  console.log(`check: ${((ms(started) * 1e6) / N).toFixed(1)} ns/op (${hits} revoked)`);
} finally {
  if (process.env.REDIS_URL) {
    // Drop the scratch prefix through the store itself.
    for (const collection of ['revoked:jti/', 'revoked:sub/']) {
      for (;;) {
        const page = await store.list(collection);
        for (const { key } of page.entries) await store.delete(key);
        if (page.entries.length === 0) break;
      }
    }
    await store.delete('revoked-generation');
  }
  await store.close();
}
