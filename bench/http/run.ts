/**
 * HTTP benchmark (issues 6, 15): per framework, the same GET route with no auth, a no-op guard,
 * keyward, and the framework's usual JWT middleware, loaded over loopback by wrk (autocannon when
 * wrk is not installed, see load.ts).
 *
 *   pnpm bench:http [--quick]          (from the repo root or bench/)
 *
 * The orchestrator and the load generator run on core 0, each server in its own process on core 1
 * (`taskset`). Tokens: one repeated token, a pool of distinct tokens within the verify cache, and
 * one beyond it (pre-built requests). HS256 uses keyward's legacy `jwtSecret` (signing), the secret
 * the peers get; ES256 uses keyward's generated key, whose public half the peers get. Every row is
 * measured in short pieces, each paired with a no-auth piece next to it (see benchFramework).
 *
 * Environment: BENCH_ROUNDS (pairs per row, default 5; --quick 3), BENCH_DURATION (whole s per piece,
 * default 2; --quick 1), BENCH_WARMUP (s of warm-up of each pair of servers, 3; --quick 1),
 * BENCH_CONNECTIONS (10), BENCH_POOL (distinct tokens within the verify cache, 5000), BENCH_BEYOND
 * (distinct tokens beyond it, 20000: more than the verify cache holds), BENCH_MODES (comma list of
 * repeated, distinct, beyond), BENCH_FRAMEWORKS (comma list of express, fastify, hono,
 * nest-express, nest-fastify), BENCH_CACHE_OFF (1/0: also measure keyward with its verify cache
 * off; default on, off with --quick), BENCH_LOADGEN (wrk or autocannon). Writes the tables to
 * results/latest.md.
 */
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { type BenchKeyring, openKeyring } from './keys.js';
import { LOADGEN, type LoadOptions, type Measurement, measureServer } from './load.js';
import { HAS_TASKSET, type RunningServer, startServer } from './process.js';
import {
  type FrameworkResult,
  frameworkTable,
  type Mode,
  type Paired,
  type Row,
  type Tally,
} from './report.js';
import { type Alg, BODY, envNumber, FRAMEWORKS, type Framework, ROUTE, type Variant } from './spec.js';

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
const load: LoadOptions = {
  connections: envNumber('BENCH_CONNECTIONS', 10),
  durationSec: envNumber('BENCH_DURATION', QUICK ? 1 : 2),
};
const warmup: LoadOptions = { ...load, durationSec: envNumber('BENCH_WARMUP', QUICK ? 1 : 3) };
const POOL = Math.floor(envNumber('BENCH_POOL', 5_000));
/** keyward's default verify cache holds 10,000 tokens: twice that is beyond it, every request a miss. */
const BEYOND = Math.floor(envNumber('BENCH_BEYOND', 20_000));
const ROUNDS = Math.floor(envNumber('BENCH_ROUNDS', QUICK ? 3 : 5));
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
  if (variant === 'none' || variant === 'noop' || variant === 'raw') return;
  const denied = await fetch(url);
  await denied.arrayBuffer();
  if (denied.status !== 401)
    throw new Error(`${variant}: a request without a token got ${denied.status}, not 401`);
}

/** One row of the table (or its no-auth twin): its server process and the tokens it is loaded with. */
interface Slot {
  key: string;
  server: RunningServer;
  tokens: readonly string[];
  row?: { alg: Alg; mode: Mode; variant: Exclude<Variant, 'none'> };
  /** One measurement per pair, with the no-auth twin's piece measured at the same time. */
  results: Paired[];
}

/** One piece of load, with the server's CPU time per request around it. */
async function piece(slot: Slot, options: LoadOptions): Promise<Measurement> {
  const m = await measureServer(slot.server, slot.tokens, options);
  if (m.failures > 0) progress(`  ${slot.key}: ${m.failures} FAILED requests`);
  return m;
}

/**
 * Every row of one framework. Each row is measured on its own server process at the same time as a
 * no-auth twin started with it: both servers share core 1, each loaded by its own wrk, and the
 * comparison is their CPU time per request, `ROUNDS` pairs in a row after a warm-up. This
 * machine's cores change speed by tens of percent within seconds, so two pieces measured one
 * after the other differ by up to 15 % with the same server on both sides; two measured at once see
 * the same speed. A server that sat idle between rounds measured slower than its twin kept busy,
 * by different amounts per row, so the pairs of a row run back to back instead of in rotated
 * rounds. A row's "× no-auth" is the median of its pairs' ratios, its req/s what one core serves at
 * its median CPU time per request.
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
      return server;
    };
    // The baselines get the same requests as the HS256 rows, `Authorization` header included: the
    // header's bytes cost the load generator and the server's parser whoever reads it.
    const sameBytes = keyrings.HS256.sign(1);
    // What each row is; its servers are started only when the row is measured.
    type Planned = Pick<Slot, 'key' | 'tokens' | 'row'> & { variant: Exclude<Variant, 'none'>; alg: Alg };
    const planned: Planned[] = [{ key: 'no-op guard', variant: 'noop', alg: 'HS256', tokens: sameBytes }];
    for (const alg of ['HS256', 'ES256'] as const) {
      // Fresh tokens per framework, so none expires during a long run.
      const { sign } = keyrings[alg];
      const pools: Record<Mode, string[]> = { repeated: sign(1), distinct: sign(POOL), beyond: sign(BEYOND) };
      const plan: Array<[Exclude<Variant, 'none'>, Mode[]]> = [
        ['keyward', ['repeated', 'distinct', 'beyond']],
        ...(CACHE_OFF ? [['keyward-nocache', ['distinct']] as [Exclude<Variant, 'none'>, Mode[]]] : []),
        ['peer', ['repeated', 'distinct', 'beyond']],
        // The ceiling of every request verified: the bare signature check, measured like any row.
        ['raw', ['beyond']],
      ];
      for (const [variant, allModes] of plan)
        for (const mode of allModes.filter((m) => MODES.includes(m)))
          planned.push({
            key: `${variant} ${alg} ${mode}`,
            variant,
            alg,
            tokens: pools[mode],
            row: { alg, mode, variant },
          });
    }
    const slots: Slot[] = [];
    for (const { variant, alg, ...row } of planned) {
      // Only the two servers of the row measured are alive: an idle keyward instance still wakes
      // up (its polls) and would take core 1 from them.
      const s: Slot = { ...row, server: await start(variant, alg, row.tokens[0]), results: [] };
      const twin: Slot = {
        key: `no auth for ${s.key}`,
        server: await start('none', 'HS256'),
        tokens: sameBytes,
        results: [],
      };
      slots.push(s);
      progress(` ${s.key}`);
      // Both JITs have seen nothing yet; "distinct" and "beyond" fill their caches here.
      await Promise.all([piece(twin, warmup), piece(s, warmup)]);
      for (let pair = 0; pair < ROUNDS; pair++) {
        const [none, m] = await Promise.all([piece(twin, load), piece(s, load)]);
        s.results.push({ ...m, none });
        progress(
          `  ${Math.round(m.rps)} req/s, p99 ${m.p99Ms} ms, ${m.cpuUsPerRequest?.toFixed(1)} µs CPU/req` +
            ` (no auth ${none.cpuUsPerRequest?.toFixed(1)})`,
        );
      }
      await Promise.all([s.server.stop(), twin.server.stop()]);
    }
    const rows: Row[] = slots.flatMap((s) => (s.row ? [{ ...s.row, ms: s.results }] : []));
    const order = (r: Row) =>
      ['HS256', 'ES256'].indexOf(r.alg) * 10 + ['repeated', 'distinct', 'beyond'].indexOf(r.mode) * 3;
    rows.sort((a, b) => order(a) - order(b));
    return { framework, noop: (slots[0] as Slot).results, rows };
  } finally {
    await Promise.all(servers.map((s) => s.stop()));
  }
}

const started = Date.now();
const load1 = loadavg()[0] ?? 0;
const keyrings = { HS256: await openKeyring('HS256'), ES256: await openKeyring('ES256') };
const tally: Tally = { met: 0, missed: 0 };
const tables: string[] = [];
try {
  for (const framework of frameworks) {
    const table = frameworkTable(await benchFramework(framework, keyrings), tally);
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
  `${LOADGEN === 'wrk' ? 'wrk (one thread)' : 'autocannon'}, ${load.connections} connections, pieces of ${load.durationSec} s after a ${warmup.durationSec} s warm-up of each server;` +
    ` load generator on core 0, server on core 1${HAS_TASKSET ? '' : ' (**taskset unavailable: unpinned**)'}.`,
  `GET ${ROUTE} → ${JSON.stringify(BODY)}. "repeated": one token; "distinct": ${POOL.toLocaleString('en-US')} tokens, within keyward's` +
    ` default verify cache (10,000); "beyond": ${BEYOND.toLocaleString('en-US')} tokens, more than it holds` +
    " (keyward's cache keeps what it holds and verifies the rest: about half the requests hit). Each request's token is picked at random" +
    ' from pre-built requests. The "cache off" row (full runs) has the cache disabled: every request verified.',
  'The no-auth and no-op rows get the same requests as the HS256 rows (the `Authorization` header is sent and ignored), so only the authentication differs.',
  `Each row on its own server process, at the same time as a no-auth twin started with it (both on core 1, each loaded by its own wrk):` +
    ` a warm-up, then ${ROUNDS} pairs of pieces back to back, compared by server CPU time per request. "× no-auth" is the median` +
    ' of the pairs\' ratios (twin\'s CPU per request ÷ the row\'s), "spread" their interquartile range ÷ that median, "+µs" the median' +
    ' of the pairs\' differences in CPU per request; "req/s per core" is 10⁶ ÷ the row\'s median CPU µs per request.',
  'Raw ceiling (rows that verify every request): the "bare signature check" row, the no-op guard plus `crypto.verify` (ES256) or an HMAC and `timingSafeEqual` (HS256) of each token\'s signature, with no parsing and no claims, measured like any row. ES256\'s target is the ratio of the two rows\' "× no-auth".',
  '',
];
const footer = `Targets: ${tally.met} met, ${tally.missed} missed. Run time ${Math.round((Date.now() - started) / 1000)} s.`;
console.log(footer);
const out = fileURLToPath(new URL('./results/latest.md', import.meta.url));
writeFileSync(out, `${[...header, ...tables.flatMap((t) => [t, '']), footer].join('\n')}\n`);
progress(`written to ${out}`);
