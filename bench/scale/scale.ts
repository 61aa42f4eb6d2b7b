/**
 * How costs grow with the size of the database (docs/performance.md, "How costs grow").
 *
 * One dedicated redis-server on loopback, started by this script. Each scenario fills the store
 * through keyward's public API (or, for other applications' keys, with plain SETs), then measures
 * the operations around the hot path at two or three sizes, in one run:
 *
 * - live revocations (1k, 10k, 100k): instance start, a full revocation reload, bytes per
 *   revocation in Redis, heap per instance;
 * - foreign keys of other applications in the same Redis (1k, 1M): instance start,
 *   `logoutEverywhere`, `apiKeys.list` of an owner with 5 keys;
 * - keyring keys (10, 500): instance start, a keyring reload, bytes of the keyring document;
 * - API keys (1k, 100k): `apiKeys.list`, a cached and an uncached verify, bytes per API key;
 * - sessions (1k): bytes per session after 10 refreshes each.
 *
 * The growth class of each row compares the largest and the smallest size: flat (O(1)) when the
 * value grows by less than half across the range, else the marginal cost per 1,000 more items.
 *
 * Run: npm run bench:scale   (needs redis-server on PATH; takes a few minutes)
 * Sizes can be reduced for a smoke run: BENCH_SCALE=0.01.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { setTimeout as delay } from 'node:timers/promises';
import { createKeyward, createRedisStore, type Keyward, MasterKey, type Store } from '@keyward/core';
import { Redis } from 'ioredis';
import { freePort } from '../../packages/testing/src/tools.js';

const SCALE = Number(process.env.BENCH_SCALE ?? 1);
const n = (count: number) => Math.max(10, Math.round(count * SCALE));
const PREFIX = 'kwscale:';
const REPEATS = 5;

interface Row {
  scenario: string;
  operation: string;
  sizes: number[];
  values: number[];
  unit: string;
}
const rows: Row[] = [];

/**
 * Growth class between the smallest and the largest size: flat when the value grows by less than
 * half over the whole range; otherwise the marginal cost per 1,000 more items, and whether that
 * is proportional (log-log slope of the increments over the fixed part, ≥ 0.7) or less.
 */
function growth(sizes: number[], values: number[], unit: string): string {
  const first = values[0] ?? 0;
  const last = values.at(-1) ?? 0;
  const s0 = sizes[0] ?? 1;
  const s1 = sizes.at(-1) ?? 1;
  if (!(first > 0) || !(last > 0)) return 'n/a';
  if (last / first < 1.5) return 'O(1)';
  const perThousand = ((last - first) / (s1 - s0)) * 1000;
  const slope = Math.log(last / first) / Math.log(s1 / s0);
  const cls = slope >= 0.7 || sizes.length < 3 ? 'O(n)' : 'O(n) past a fixed part';
  const per = perThousand < 10 ? perThousand.toFixed(2) : perThousand.toFixed(0);
  return `${cls}: +${per} ${unit} per 1k`;
}

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? Number.NaN;
}

async function timeMs(fn: () => Promise<unknown>, repeats = REPEATS): Promise<number> {
  const samples: number[] = [];
  for (let i = 0; i < repeats; i++) {
    const start = performance.now();
    await fn();
    samples.push(performance.now() - start);
  }
  return median(samples);
}

/** Runs `fn(i)` for i in [0, count) with `concurrency` calls in flight. */
async function pool(count: number, concurrency: number, fn: (i: number) => Promise<unknown>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(concurrency, count) }, async () => {
      while (next < count) await fn(next++);
    }),
  );
}

function heapUsed(): number {
  globalThis.gc?.();
  globalThis.gc?.();
  return process.memoryUsage().heapUsed;
}

async function usedMemory(redis: Redis): Promise<number> {
  const info = await redis.info('memory');
  return Number(/used_memory:(\d+)/.exec(info)?.[1] ?? Number.NaN);
}

const master = MasterKey.generate().exportText();

function open(url: string, extra: Record<string, unknown> = {}): Promise<Keyward> {
  return createKeyward({
    redisUrl: url,
    redisPrefix: PREFIX,
    masterKey: master,
    scheduler: false,
    logger: false,
    audit: false,
    syncIntervalMs: 60_000,
    ...extra,
  });
}

/** Start-up cost: a new instance on the existing data, opened and closed. */
async function startCost(url: string): Promise<number> {
  return timeMs(async () => {
    const kw = await open(url);
    await kw.close();
  });
}

/** Heap a second instance holds once started (the first one is already open in this process). */
async function instanceHeap(url: string): Promise<number> {
  const before = heapUsed();
  const kw = await open(url);
  const after = heapUsed();
  await kw.close();
  return after - before;
}

/** Bumps a generation counter behind the instance's back, so its next refresh reloads in full. */
async function forcedReload(kw: Keyward, store: Store, generationKey: string): Promise<number> {
  return timeMs(async () => {
    await store.increment(generationKey);
    await kw.sync.refresh();
  });
}

async function revocationScenario(url: string, redis: Redis): Promise<void> {
  const sizes = [n(1_000), n(10_000), n(100_000)];
  const start: number[] = [];
  const reload: number[] = [];
  const bytes: number[] = [];
  const heap: number[] = [];
  const { REVOCATION_GENERATION_KEY } = await import('../../packages/core/src/sync/revocations.js');
  for (const size of sizes) {
    await redis.flushall();
    const kw = await open(url);
    const store = createRedisStore({ url, prefix: PREFIX });
    const mem0 = await usedMemory(redis);
    const until = Date.now() + 3_600_000;
    await pool(size, 64, (i) => kw.revocations.revokeToken(`jti-${size}-${i}`, until));
    bytes.push(((await usedMemory(redis)) - mem0) / size);
    start.push(await startCost(url));
    reload.push(await forcedReload(kw, store, REVOCATION_GENERATION_KEY));
    heap.push(await instanceHeap(url));
    await store.close();
    await kw.close();
  }
  rows.push({ scenario: 'live revocations', operation: 'instance start', sizes, values: start, unit: 'ms' });
  rows.push({
    scenario: 'live revocations',
    operation: 'full revocation reload',
    sizes,
    values: reload,
    unit: 'ms',
  });
  rows.push({
    scenario: 'live revocations',
    operation: 'Redis bytes per revocation',
    sizes,
    values: bytes,
    unit: 'B',
  });
  rows.push({
    scenario: 'live revocations',
    operation: 'heap per instance',
    sizes,
    values: heap.map((h) => h / 1024),
    unit: 'KiB',
  });
}

async function foreignScenario(url: string, redis: Redis): Promise<void> {
  const sizes = [n(1_000), n(1_000_000)];
  const start: number[] = [];
  const logoutAll: number[] = [];
  const list: number[] = [];
  for (const size of sizes) {
    await redis.flushall();
    for (let i = 0; i < size; i += 10_000) {
      const pipeline = redis.pipeline();
      for (let j = i; j < Math.min(size, i + 10_000); j++) pipeline.set(`otherapp:session:${j}`, 'x');
      await pipeline.exec();
    }
    const kw = await open(url);
    for (let i = 0; i < 3; i++) await kw.tokens.issue({ sub: 'user_1' });
    for (let i = 0; i < 5; i++) await kw.apiKeys.create({ owner: 'owner_1', name: `key ${i}` });
    start.push(await startCost(url));
    logoutAll.push(await timeMs(() => kw.tokens.logoutEverywhere('user_1')));
    list.push(await timeMs(() => kw.apiKeys.list('owner_1')));
    await kw.close();
  }
  rows.push({ scenario: 'foreign keys', operation: 'instance start', sizes, values: start, unit: 'ms' });
  rows.push({
    scenario: 'foreign keys',
    operation: 'logoutEverywhere (3 sessions)',
    sizes,
    values: logoutAll,
    unit: 'ms',
  });
  rows.push({
    scenario: 'foreign keys',
    operation: 'apiKeys.list (5 keys)',
    sizes,
    values: list,
    unit: 'ms',
  });
}

async function keyringScenario(url: string, redis: Redis): Promise<void> {
  const sizes = [10, 500].map((s) => Math.max(10, Math.round(s * Math.min(1, SCALE * 10))));
  const start: number[] = [];
  const reload: number[] = [];
  const bytes: number[] = [];
  const { KEYRING_GENERATION_KEY } = await import('../../packages/core/src/keys/keyring-store.js');
  for (const size of sizes) {
    await redis.flushall();
    // Enough room for every key to stay in the document (the bounded keyring refuses more by default).
    const rotation = { maxRetiringKeys: size * 2 };
    const kw = await open(url, { rotation });
    while (kw.keys.list().length < size) {
      for (const use of ['sig', 'enc', 'data'] as const) {
        if (kw.keys.list().length < size) await kw.keys.rotate({ use, reason: 'scale bench' });
      }
    }
    const store = createRedisStore({ url, prefix: PREFIX });
    bytes.push(await docBytes(redis));
    start.push(await timeMs(async () => (await open(url, { rotation })).close()));
    reload.push(await forcedReload(kw, store, KEYRING_GENERATION_KEY));
    await store.close();
    await kw.close();
  }
  rows.push({ scenario: 'keyring keys', operation: 'instance start', sizes, values: start, unit: 'ms' });
  rows.push({
    scenario: 'keyring keys',
    operation: 'keyring reload (poll after a change)',
    sizes,
    values: reload,
    unit: 'ms',
  });
  rows.push({
    scenario: 'keyring keys',
    operation: 'keyring document',
    sizes,
    values: bytes.map((b) => b / 1024),
    unit: 'KiB',
  });
}

/** Size of the largest keyward value in Redis: the keyring document. */
async function docBytes(redis: Redis): Promise<number> {
  let largest = 0;
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${PREFIX}*`, 'COUNT', 1000);
    cursor = next;
    for (const key of keys) {
      if ((await redis.type(key)) !== 'string') continue;
      largest = Math.max(largest, await redis.strlen(key));
    }
  } while (cursor !== '0');
  return largest;
}

async function apiKeyScenario(url: string, redis: Redis): Promise<void> {
  const sizes = [n(1_000), n(100_000)];
  const list: number[] = [];
  const verifyCold: number[] = [];
  const bytes: number[] = [];
  const start: number[] = [];
  for (const size of sizes) {
    await redis.flushall();
    const kw = await open(url);
    const mem0 = await usedMemory(redis);
    await pool(size, 64, (i) => kw.apiKeys.create({ owner: `owner_${i % 1000}`, name: `key ${i}` }));
    bytes.push(((await usedMemory(redis)) - mem0) / size);
    const mine: string[] = [];
    for (let i = 0; i < 5; i++) mine.push((await kw.apiKeys.create({ owner: 'me', name: `mine ${i}` })).key);
    list.push(await timeMs(() => kw.apiKeys.list('me')));
    start.push(await startCost(url));
    // Uncached: a fresh instance per sample verifies a key it has never seen.
    const samples: number[] = [];
    for (let i = 0; i < REPEATS; i++) {
      const other = await open(url);
      const t0 = performance.now();
      await other.apiKeys.verify(mine[i % mine.length] as string);
      samples.push(performance.now() - t0);
      await other.close();
    }
    verifyCold.push(median(samples));
    await kw.close();
  }
  rows.push({ scenario: 'API keys', operation: 'apiKeys.list (5 keys)', sizes, values: list, unit: 'ms' });
  rows.push({ scenario: 'API keys', operation: 'verify, not cached', sizes, values: verifyCold, unit: 'ms' });
  rows.push({ scenario: 'API keys', operation: 'instance start', sizes, values: start, unit: 'ms' });
  rows.push({ scenario: 'API keys', operation: 'Redis bytes per API key', sizes, values: bytes, unit: 'B' });
}

async function sessionScenario(url: string, redis: Redis): Promise<void> {
  const sizes = [n(1_000), n(10_000)];
  const perSession: number[] = [];
  const perRefresh: number[] = [];
  for (const size of sizes) {
    await redis.flushall();
    const kw = await open(url);
    const mem0 = await usedMemory(redis);
    await pool(size, 32, async (i) => {
      let pair = await kw.tokens.issue({ sub: `user_${i}` });
      for (let r = 0; r < 10; r++) pair = await kw.tokens.refresh(pair.refresh_token);
    });
    const mem1 = await usedMemory(redis);
    perSession.push((mem1 - mem0) / size);
    // 100 more refreshes of one session: what a long-lived session adds.
    let pair = await kw.tokens.issue({ sub: 'long' });
    const mem2 = await usedMemory(redis);
    for (let r = 0; r < 100; r++) pair = await kw.tokens.refresh(pair.refresh_token);
    perRefresh.push(((await usedMemory(redis)) - mem2) / 100);
    await kw.close();
  }
  rows.push({
    scenario: 'sessions',
    operation: 'Redis bytes per session (10 refreshes)',
    sizes,
    values: perSession,
    unit: 'B',
  });
  rows.push({
    scenario: 'sessions',
    operation: 'Redis bytes added per further refresh',
    sizes,
    values: perRefresh,
    unit: 'B',
  });
}

function report(): string {
  const lines: string[] = [];
  let scenario = '';
  for (const row of rows) {
    if (row.scenario !== scenario) {
      scenario = row.scenario;
      lines.push('', `### ${scenario}`, '');
      lines.push(`| operation | ${row.sizes.map((s) => s.toLocaleString('en-US')).join(' | ')} | growth |`);
      lines.push(`|---|${row.sizes.map(() => '---:').join('|')}|---|`);
    }
    const cells = row.values.map((v) => `${v < 10 ? v.toFixed(2) : v.toFixed(0)} ${row.unit}`);
    lines.push(`| ${row.operation} | ${cells.join(' | ')} | ${growth(row.sizes, row.values, row.unit)} |`);
  }
  return lines.join('\n');
}

async function main(): Promise<void> {
  const port = await freePort();
  const server: ChildProcess = spawn(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
    { stdio: 'ignore' },
  );
  const url = `redis://127.0.0.1:${port}`;
  const redis = new Redis(url, { lazyConnect: true });
  redis.on('error', () => {}); // refused until the server listens; connect() below retries
  try {
    for (let i = 0; i < 50; i++) {
      try {
        await redis.connect();
        break;
      } catch {
        await delay(100);
      }
    }
    const only = process.env.BENCH_SCENARIO;
    const scenarios: Array<[string, (url: string, redis: Redis) => Promise<void>]> = [
      ['revocations', revocationScenario],
      ['foreign', foreignScenario],
      ['keyring', keyringScenario],
      ['apikeys', apiKeyScenario],
      ['sessions', sessionScenario],
    ];
    for (const [name, run] of scenarios) {
      if (only && only !== name) continue;
      const t0 = performance.now();
      await run(url, redis);
      process.stderr.write(`${name}: ${((performance.now() - t0) / 1000).toFixed(1)} s\n`);
    }
    console.log(`Scale run, BENCH_SCALE=${SCALE}, Node ${process.version}, ${new Date().toISOString()}`);
    console.log(report());
  } finally {
    redis.disconnect();
    server.kill('SIGKILL');
  }
}

await main();
