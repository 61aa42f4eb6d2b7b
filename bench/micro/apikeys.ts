/**
 * API-key verify throughput, one caller awaiting each verify in turn: served from the in-memory
 * cache vs looked up in the store (HMAC-SHA256 + one get), on sqlite and, when REDIS_URL is set,
 * on Redis.
 * Run: cd bench && [REDIS_URL=redis://127.0.0.1:6379] npx tsx --conditions=@keyward/source micro/apikeys.ts
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Redis as RedisClient } from 'ioredis';
import { createApiKeyService } from '../../packages/core/src/apikeys/index.js';
import { MasterKey } from '../../packages/core/src/keys/master-key.js';
import { createKeywardCore } from '../../packages/core/src/keyward.js';
import { createRedisStore } from '../../packages/core/src/store/redis.js';
import { createSqliteStore } from '../../packages/core/src/store/sqlite.js';
import type { Store } from '../../packages/core/src/store/types.js';

const WARMUP_MS = 300;
const RUN_MS = 1000;
const REPEATS = 3;

async function opsPerSecond(fn: () => Promise<unknown>, ms: number): Promise<number> {
  let ops = 0;
  const start = process.hrtime.bigint();
  const end = start + BigInt(ms) * 1_000_000n;
  let now = start;
  while (now < end) {
    for (let i = 0; i < 50; i++) await fn();
    ops += 50;
    now = process.hrtime.bigint();
  }
  return ops / (Number(now - start) / 1e9);
}
const median = (xs: number[]) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0;

async function measure(store: Store): Promise<{ cached: number; uncached: number }> {
  const core = await createKeywardCore({
    store,
    masterKey: MasterKey.generate().exportText(),
    logger: false,
    audit: false,
  });
  const cached = await createApiKeyService(core);
  const uncached = await createApiKeyService(core, { cacheTtlMs: 0 });
  const { key } = await cached.create({ owner: 'bench', name: 'bench', scopes: ['read'] });
  const subjects = { cached: () => cached.verify(key), uncached: () => uncached.verify(key) };
  const runs = { cached: [] as number[], uncached: [] as number[] };
  for (const fn of Object.values(subjects)) await opsPerSecond(fn, WARMUP_MS);
  for (let r = 0; r < REPEATS; r++) {
    for (const name of ['cached', 'uncached'] as const)
      runs[name].push(await opsPerSecond(subjects[name], RUN_MS));
  }
  await core.close();
  return { cached: median(runs.cached), uncached: median(runs.uncached) };
}

const dir = mkdtempSync(join(tmpdir(), 'keyward-bench-apikeys-'));
const rows: Array<[string, { cached: number; uncached: number }]> = [];
const sqlite = createSqliteStore({ path: join(dir, 'bench.db') });
rows.push(['sqlite', await measure(sqlite)]);
await sqlite.close();
rmSync(dir, { recursive: true, force: true });
if (process.env.REDIS_URL) {
  const prefix = `{kwbench:apikeys:${process.pid}}:`;
  // ioredis is core's dependency, not the bench's: load it from core.
  const { Redis } = createRequire(new URL('../../packages/core/package.json', import.meta.url))(
    'ioredis',
  ) as {
    Redis: new (url: string) => RedisClient;
  };
  const client = new Redis(process.env.REDIS_URL);
  rows.push(['redis', await measure(createRedisStore({ client, prefix }))]);
  // Leave nothing behind: every key of the run (records, locks, fences) sits under its own prefix.
  let cursor = '0';
  do {
    const [next, keys] = await client.scan(
      cursor,
      'MATCH',
      `${prefix.replace(/[{}]/g, '\\$&')}*`,
      'COUNT',
      1000,
    );
    if (keys.length > 0) await client.del(...keys);
    cursor = next;
  } while (cursor !== '0');
  await client.quit();
}

const fmt = (n: number) => Math.round(n).toLocaleString('en-US').padStart(10);
console.log(
  `API-key verify, sequential awaits, Node ${process.version}, median of ${REPEATS} × ${RUN_MS} ms`,
);
console.log('store  |  cached ops/s | uncached ops/s');
console.log('-------|---------------|---------------');
for (const [name, r] of rows) console.log(`${name.padEnd(6)} |  ${fmt(r.cached)}   |  ${fmt(r.uncached)}`);
if (!process.env.REDIS_URL) console.log('(set REDIS_URL to include redis)');
