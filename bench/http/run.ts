/**
 * HTTP benchmark (issue 6): per framework, the same GET route with no auth, with keyward, and with
 * the framework's usual JWT middleware, loaded with autocannon on loopback.
 *
 *   pnpm bench:http [--quick]          (from the repo root or bench/)
 *
 * The orchestrator and autocannon run on core 0, each server in its own process on core 1
 * (`taskset`). Tokens: one repeated token, a pool of distinct tokens within the verify cache, and
 * one beyond it (pre-built requests). HS256 uses keyward's legacy `jwtSecret` (signing), the secret the peers get;
 * ES256 uses keyward's generated key, whose public half the peers get.
 *
 * Environment: BENCH_ROUNDS (interleaved rounds, default 3: every row once per round, in an order
 * rotated each round; the tables give the median and the spread), BENCH_DURATION (s per
 * measurement, default 5; --quick 1), BENCH_WARMUP (s, 1; --quick 0.5), BENCH_CONNECTIONS (10),
 * BENCH_POOL (distinct tokens within the verify cache, 5000), BENCH_BEYOND (distinct tokens beyond
 * it, 20000: every request a cache miss), BENCH_MODES (comma list of repeated, distinct, beyond), BENCH_FRAMEWORKS (comma list of express, fastify, hono,
 * nest-express, nest-fastify), BENCH_CACHE_OFF (1/0: also measure keyward with its verify cache
 * off; default on, off with --quick). Writes the tables to results/latest.md.
 */
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { type BenchKeyring, openKeyring, rawVerifyRate } from './keys.js';
import { type LoadOptions, type Measurement, measure } from './load.js';
import { HAS_TASKSET, type RunningServer, startServer } from './process.js';
import { type FrameworkResult, frameworkTable, type Mode, type Row, type Tally } from './report.js';
import { type Alg, BODY, FRAMEWORKS, type Framework, ROUTE, type Variant } from './spec.js';

if (HAS_TASKSET && process.env.KEYWARD_BENCH_PINNED === undefined) {
  const pinned = spawnSync(
    'taskset',
    ['-c', '0', process.execPath, ...process.execArgv, ...process.argv.slice(1)],
    {
      stdio: 'inherit',
      env: { ...process.env, KEYWARD_BENCH_PINNED: '1' },
    },
  );
  process.exit(pinned.status ?? 1);
}

const QUICK = process.argv.includes('--quick');
const envNumber = (name: string, fallback: number) => {
  const value = Number(process.env[name] ?? fallback);
  if (!Number.isFinite(value) || value <= 0) throw new Error(`${name} must be a positive number`);
  return value;
};
const load: LoadOptions = {
  connections: envNumber('BENCH_CONNECTIONS', 10),
  durationSec: envNumber('BENCH_DURATION', QUICK ? 1 : 5),
};
const warmup: LoadOptions = { ...load, durationSec: envNumber('BENCH_WARMUP', QUICK ? 0.5 : 1) };
const POOL = Math.floor(envNumber('BENCH_POOL', 5_000));
/** keyward's default verify cache holds 10,000 tokens: twice that is beyond it, every request a miss. */
const BEYOND = Math.floor(envNumber('BENCH_BEYOND', 20_000));
const ROUNDS = Math.floor(envNumber('BENCH_ROUNDS', 3));
const MODES = (process.env.BENCH_MODES?.split(',') ?? ['repeated', 'distinct', 'beyond']) as Mode[];
for (const m of MODES)
  if (!['repeated', 'distinct', 'beyond'].includes(m)) throw new Error(`unknown mode ${m}`);
/** keyward with its verify cache off (every request verified): in full runs, or with BENCH_CACHE_OFF=1. */
const CACHE_OFF = process.env.BENCH_CACHE_OFF === undefined ? !QUICK : process.env.BENCH_CACHE_OFF === '1';
const frameworks = (process.env.BENCH_FRAMEWORKS?.split(',') ?? FRAMEWORKS) as Framework[];
for (const f of frameworks) if (!FRAMEWORKS.includes(f)) throw new Error(`unknown framework ${f}`);

const t0 = Date.now();
const progress = (line: string) =>
  process.stderr.write(`[${((Date.now() - t0) / 1000).toFixed(1).padStart(5)} s] ${line}\n`);

/** A wrong answer makes every number meaningless: check the route and that auth is really on. */
async function sanityCheck(port: number, variant: Variant, token: string | undefined): Promise<void> {
  const url = `http://127.0.0.1:${port}${ROUTE}`;
  const ok = await fetch(url, token ? { headers: { authorization: `Bearer ${token}` } } : {});
  const body = await ok.text();
  if (ok.status !== 200 || body !== JSON.stringify(BODY)) {
    throw new Error(
      `${variant}: expected 200 ${JSON.stringify(BODY)}, got ${ok.status} ${body.slice(0, 200)}`,
    );
  }
  if (variant === 'none' || variant === 'noop') return;
  const denied = await fetch(url);
  await denied.arrayBuffer();
  if (denied.status !== 401)
    throw new Error(`${variant}: a request without a token got ${denied.status}, not 401`);
}

/** One measurement of a round: a running server and the tokens it is loaded with. */
interface Slot {
  key: string;
  port: number;
  tokens: readonly string[];
  row?: { alg: Alg; mode: Mode; variant: Exclude<Variant, 'none'> };
  results: Measurement[];
}

async function measureSlot(slot: Slot, firstRound: boolean): Promise<void> {
  // A server's first measurement gets a longer warm-up: its JIT has seen nothing yet.
  await measure(
    slot.port,
    slot.tokens,
    firstRound ? { ...warmup, durationSec: warmup.durationSec * 2 } : warmup,
  );
  const m = await measure(slot.port, slot.tokens, load);
  slot.results.push(m);
  progress(
    `  ${slot.key}: ${Math.round(m.rps)} req/s, p99 ${m.p99Ms} ms${m.failures ? `, ${m.failures} FAILED` : ''}`,
  );
}

/**
 * Every variant of one framework, in `ROUNDS` interleaved rounds: each round measures every
 * (variant, token mode) once, in an order rotated by one each round, so a drift of the machine's
 * background load spreads over all rows instead of deciding one.
 */
async function benchFramework(
  framework: Framework,
  keyrings: Record<Alg, BenchKeyring>,
): Promise<FrameworkResult> {
  progress(`${framework}`);
  const servers: RunningServer[] = [];
  try {
    const start = async (variant: Variant, alg: Alg, token?: string) => {
      const { keyring, peer } = keyrings[alg];
      const server = await startServer({ framework, variant, alg, keyring, peer });
      servers.push(server);
      await sanityCheck(server.port, variant, token);
      return server.port;
    };
    // The baselines get the same requests as the HS256 rows, `Authorization` header included: the
    // header's bytes cost the load generator and the server's parser whoever reads it.
    const sameBytes = keyrings.HS256.sign(1);
    const slots: Slot[] = [
      { key: 'no auth', port: await start('none', 'HS256'), tokens: sameBytes, results: [] },
      { key: 'no-op guard', port: await start('noop', 'HS256'), tokens: sameBytes, results: [] },
    ];
    for (const alg of ['HS256', 'ES256'] as const) {
      // Fresh tokens per framework, so none expires during a long run.
      const { sign } = keyrings[alg];
      const pools: Record<Mode, string[]> = { repeated: sign(1), distinct: sign(POOL), beyond: sign(BEYOND) };
      const plan: Array<[Exclude<Variant, 'none'>, Mode[]]> = [
        ['keyward', ['repeated', 'distinct', 'beyond']],
        ...(CACHE_OFF ? [['keyward-nocache', ['distinct']] as [Exclude<Variant, 'none'>, Mode[]]] : []),
        ['peer', ['repeated', 'distinct', 'beyond']],
      ];
      for (const [variant, allModes] of plan) {
        const modes = allModes.filter((m) => MODES.includes(m));
        if (modes.length === 0) continue;
        const port = await start(variant, alg, pools.repeated[0]);
        for (const mode of modes) {
          slots.push({
            key: `${variant} ${alg} ${mode}`,
            port,
            tokens: pools[mode],
            row: { alg, mode, variant },
            results: [],
          });
        }
      }
    }
    for (let round = 0; round < ROUNDS; round++) {
      progress(` round ${round + 1} of ${ROUNDS}`);
      for (let i = 0; i < slots.length; i++)
        await measureSlot(slots[(i + round) % slots.length] as Slot, round === 0);
    }
    const rows: Row[] = slots.flatMap((slot) => (slot.row ? [{ ...slot.row, ms: slot.results }] : []));
    const order = (r: Row) =>
      ['HS256', 'ES256'].indexOf(r.alg) * 10 + ['repeated', 'distinct', 'beyond'].indexOf(r.mode) * 3;
    rows.sort((a, b) => order(a) - order(b));
    return { framework, none: (slots[0] as Slot).results, noop: (slots[1] as Slot).results, rows };
  } finally {
    await Promise.all(servers.map((s) => s.stop()));
  }
}

const started = Date.now();
const load1 = loadavg()[0] ?? 0;
const keyrings = { HS256: await openKeyring('HS256'), ES256: await openKeyring('ES256') };
const es256VerifyRate = rawVerifyRate(keyrings.ES256.sign(1000), keyrings.ES256.peer);
const tally: Tally = { met: 0, missed: 0 };
const tables: string[] = [];
try {
  for (const framework of frameworks) {
    const table = frameworkTable(await benchFramework(framework, keyrings), es256VerifyRate, tally);
    tables.push(table);
    console.log(`\n${table}\n`);
  }
} finally {
  await keyrings.HS256.close();
  await keyrings.ES256.close();
}

const header = [
  `## HTTP benchmark (\`pnpm bench:http${QUICK ? ' --quick' : ''}\`)`,
  '',
  `${new Date(started).toISOString().slice(0, 10)} · Node ${process.version} · ${cpus()[0]?.model ?? 'unknown CPU'} ×${cpus().length}` +
    ` · load average ${load1.toFixed(2)} at start`,
  `autocannon, ${load.connections} connections, ${load.durationSec} s per measurement after a ${warmup.durationSec} s warm-up;` +
    ` load generator on core 0, server on core 1${HAS_TASKSET ? '' : ' (**taskset unavailable: unpinned**)'}.`,
  `GET ${ROUTE} → ${JSON.stringify(BODY)}. "repeated": one token; "distinct": ${POOL.toLocaleString('en-US')} tokens, within keyward's` +
    ` default verify cache (10,000); "beyond": ${BEYOND.toLocaleString('en-US')} tokens sent in turn, so every request misses the cache` +
    ' (pre-built requests, a disjoint slice per connection). The "cache off" row (full runs) has the cache disabled.',
  'The no-auth and no-op rows get the same requests as the HS256 rows (the `Authorization` header is sent and ignored), so only the authentication differs.',
  `${ROUNDS} interleaved rounds: every row once per round, in an order rotated each round; req/s is the median of the` +
    ' rounds and "spread" is (max − min) / median, so a drift of the background load shows as spread instead of deciding a row.',
  `Raw ceiling (ES256 beyond the cache): no-auth req/s combined with bare \`crypto.verify\` at ${Math.round(es256VerifyRate).toLocaleString('en-US')} verifies/s on core 0.`,
  '',
];
const footer = `Targets: ${tally.met} met, ${tally.missed} missed. Run time ${Math.round((Date.now() - started) / 1000)} s.`;
console.log(footer);
const out = fileURLToPath(new URL('./results/latest.md', import.meta.url));
writeFileSync(out, `${[...header, ...tables.flatMap((t) => [t, '']), footer].join('\n')}\n`);
progress(`written to ${out}`);
