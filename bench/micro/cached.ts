/**
 * The cached authenticate path: `Authorization` header → principal, with the verified-token cache
 * warm, next to a baseline of the same run — a `Map.get` keyed by a string of the header's length.
 *
 *   cd bench && npx tsx --conditions=@keyward/source micro/cached.ts [--quick]
 *
 * Every call gets a header string the process has never hashed, as an HTTP parser hands a new string
 * to each request: each variant copies it out of a Buffer right before the call (hot in the CPU's
 * cache, as a just-parsed header is), so neither the baseline nor keyward profits from V8's
 * per-string hash cache, and the copy's cost is in the baseline too. Rounds are interleaved and
 * rotated so drift affects all alike; the report is the median per variant and each one's cost per
 * call minus the baseline's.
 *
 * Two rows show what many tokens cost: the baseline and keyward's cached verify over 5,000 tokens
 * (bench:http's "distinct" pool, in a random order) instead of 64, so the memory a lookup reads is
 * further from the CPU for both.
 *
 * Two more rows show the miss path: HS256 tokens (the cheapest verification, so the cache's own
 * cost shows) cycled through twice as many as the verify cache holds, next to the same tokens with
 * the cache off. Plain CLOCK missed and evicted on every call there; with admission the cache keeps
 * the half it holds and verifies the other half.
 */
import { spawnSync } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { createKeyward, createMemoryStore, MasterKey } from '@keyward/core';
import { createAuthenticator } from '@keyward/core/http';

if (process.env.KEYWARD_BENCH_PINNED === undefined) {
  const pinned = spawnSync(
    'taskset',
    ['-c', '1', process.execPath, ...process.execArgv, ...process.argv.slice(1)],
    {
      stdio: 'inherit',
      env: { ...process.env, KEYWARD_BENCH_PINNED: '1' },
    },
  );
  if (pinned.error === undefined) process.exit(pinned.status ?? 1);
}

const QUICK = process.argv.includes('--quick');
const ROUNDS = QUICK ? 3 : 7;
const CALLS = QUICK ? 100_000 : 300_000;
const DISTINCT = 64;

const kw = await createKeyward({
  store: createMemoryStore(),
  masterKey: MasterKey.generate().exportText(),
  logger: false,
  audit: false,
  scheduler: false,
  syncIntervalMs: 60_000,
  issuer: 'https://auth.example.com',
});
const auth = createAuthenticator(kw);
const headerValues = await Promise.all(
  Array.from({ length: DISTINCT }, async (_, i) => {
    const { access_token } = await kw.tokens.issue({ sub: `user_${i}`, scopes: ['read'] });
    return `Bearer ${access_token}`;
  }),
);
for (const value of headerValues) await auth.authenticate({ authorization: value }); // warm
const headerBytes = headerValues.map((v) => Buffer.from(v, 'latin1'));

// 5,000 cached tokens, as bench:http's "distinct" pool, and a baseline Map of as many keys.
const POOL = 5_000;
const poolValues = await Promise.all(
  Array.from({ length: POOL }, async (_, i) => {
    const { access_token } = await kw.tokens.issue({ sub: `pool_${i}`, scopes: ['read'] });
    return access_token;
  }),
);
for (const token of poolValues) kw.jwt.verify(token); // warm
const poolBytes = poolValues.map((v) => Buffer.from(v, 'latin1'));
// In random order, as bench:http sends them (a fixed sequence, so every variant gets the same).
let lcg = 1;
const order = Uint16Array.from({ length: 1 << 16 }, () => {
  lcg = (Math.imul(lcg, 1103515245) + 12345) >>> 0;
  return (lcg >>> 8) % POOL;
});
const freshPool = (i: number) => (poolBytes[order[i & 0xffff] as number] as Buffer).toString('latin1');
const poolBaseline = new Map(poolValues.map((v, i) => [v, i]));

// The miss path: HS256, 20,000 tokens through a 10,000-token cache, and the same with it off.
const BEYOND = 20_000;
const hsOptions = (verifyCache: false | { max: number }) => ({
  store: createMemoryStore(),
  masterKey: MasterKey.generate().exportText(),
  jwtSecret: 'bench-secret-bench-secret-bench-secret',
  legacySigning: true,
  logger: false as const,
  audit: false as const,
  scheduler: false as const,
  syncIntervalMs: 60_000,
  verifyCache,
});
const hsCached = await createKeyward(hsOptions({ max: BEYOND / 2 }));
const hsNoCache = await createKeyward(hsOptions(false));
const hsTokens = Array.from({ length: BEYOND }, (_, i) =>
  Buffer.from(hsCached.jwt.sign({ sub: `user_${i}`, scope: 'read' }), 'latin1'),
);
const freshHs = (i: number) => (hsTokens[i % BEYOND] as Buffer).toString('latin1');
const baseline = new Map(headerValues.map((v, i) => [v, i]));

/** A never-hashed copy of header `i`, as a parser produces one per request. */
const fresh = (i: number) => (headerBytes[i % DISTINCT] as Buffer).toString('latin1');

type Variant = () => Promise<number> | number;
let sink = 0;
const variants: Record<string, Variant> = {
  'copy only (no lookup)': () => {
    const started = performance.now();
    for (let i = 0; i < CALLS; i++) sink += fresh(i).length;
    return performance.now() - started;
  },
  'baseline Map.get': () => {
    const started = performance.now();
    for (let i = 0; i < CALLS; i++) sink += baseline.get(fresh(i)) ?? 0;
    return performance.now() - started;
  },
  'baseline Map.get, 5,000 keys': () => {
    const started = performance.now();
    for (let i = 0; i < CALLS; i++) sink += poolBaseline.get(freshPool(i)) ?? 0;
    return performance.now() - started;
  },
  'kw.jwt.verify (sync), 5,000 cached tokens': () => {
    const started = performance.now();
    for (let i = 0; i < CALLS; i++) sink += kw.jwt.verify(freshPool(i)).payload.exp ?? 0;
    return performance.now() - started;
  },
  'kw.jwt.verify (sync)': () => {
    const started = performance.now();
    for (let i = 0; i < CALLS; i++) sink += kw.jwt.verify(fresh(i).slice(7)).payload.exp ?? 0;
    return performance.now() - started;
  },
  'HS256 verify, 20,000 tokens through a 10,000-token cache': () => {
    const started = performance.now();
    for (let i = 0; i < CALLS; i++) sink += hsCached.jwt.verify(freshHs(i)).payload.exp ?? 0;
    return performance.now() - started;
  },
  'HS256 verify, cache off': () => {
    const started = performance.now();
    for (let i = 0; i < CALLS; i++) sink += hsNoCache.jwt.verify(freshHs(i)).payload.exp ?? 0;
    return performance.now() - started;
  },
  'authenticate (await)': async () => {
    const started = performance.now();
    for (let i = 0; i < CALLS; i++)
      sink += (await auth.authenticate({ authorization: fresh(i) })).scopes.length;
    return performance.now() - started;
  },
};

const ns: Record<string, number[]> = Object.fromEntries(Object.keys(variants).map((k) => [k, []]));
const names = Object.keys(variants);
for (let r = 0; r < ROUNDS; r++) {
  // Rotate the order each round.
  for (let j = 0; j < names.length; j++) {
    const name = names[(r + j) % names.length] as string;
    (ns[name] as number[]).push(((await (variants[name] as Variant)()) * 1e6) / CALLS);
  }
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
const base = median(ns['baseline Map.get'] as number[]);
console.log(
  `cached authenticate path, ${CALLS.toLocaleString('en')} calls per round, median of ${ROUNDS} rounds`,
);
console.log(`header length ${headerValues[0]?.length} characters`);
console.log('| variant | ns/call | spread (min–max) | minus baseline |');
console.log('|---|---:|---:|---:|');
for (const name of names) {
  const xs = ns[name] as number[];
  const m = median(xs);
  console.log(
    `| ${name} | ${m.toFixed(0)} | ${Math.min(...xs).toFixed(0)}–${Math.max(...xs).toFixed(0)} | ${(m - base).toFixed(0)} |`,
  );
}
if (sink === 42) console.log('');
await kw.close();
await hsCached.close();
await hsNoCache.close();
