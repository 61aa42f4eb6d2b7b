/**
 * Where a keyward-guarded request's server CPU goes. For each framework: the bench server with
 * keyward (one repeated HS256 token, so every request is a verify-cache hit), loaded like
 * `bench:http` (wrk when installed), profiled with `node --cpu-prof`. The report is the share of the server's busy
 * samples (idle left out) whose own code is keyward's (`packages/core`, the adapter package) next to
 * the framework, Node's HTTP stack and the rest: what keyward can cost a request at most, to read
 * the HTTP ratios against.
 *
 *   pnpm --filter @keyward/bench bench:http:profile   (BENCH_DURATION, default 5 s; BENCH_FRAMEWORKS)
 *
 * BENCH_PROFILE_TOKENS=n sends n distinct tokens (picked at random) instead of one (5000: bench:http's
 * "distinct" pool, all within the verify cache), to see where the extra cost of many tokens goes.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openKeyring } from './keys.js';
import { measure } from './load.js';
import { startServer } from './process.js';
import { FRAMEWORKS, type Framework, type Variant } from './spec.js';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string };
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  /** µs between consecutive samples (the first: since startTime). */
  timeDeltas: number[];
  /** µs of the monotonic clock, the one `process.hrtime` reads in every process. */
  startTime: number;
  endTime: number;
}

/** Now on the monotonic clock the profile's timestamps use, in µs. */
const monotonicUs = () => Number(process.hrtime.bigint() / 1000n);

const ADAPTER: Record<Framework, string> = {
  express: 'packages/express/',
  fastify: 'packages/fastify/',
  hono: 'packages/hono/',
  'nest-express': 'packages/nestjs/',
  'nest-fastify': 'packages/nestjs/',
};

/** The bucket of one frame's own time. */
function bucketOf(framework: Framework, { functionName, url }: ProfileNode['callFrame']): string | undefined {
  if (functionName === '(idle)') return undefined;
  if (url.includes('/packages/core/')) return 'keyward core';
  if (url.includes(`/${ADAPTER[framework]}`)) return 'keyward adapter';
  if (functionName === '(garbage collector)') return 'garbage collector';
  if (url.startsWith('node:')) return 'Node (http, net, streams…)';
  const pkg = /node_modules\/(?:\.pnpm\/[^/]+\/node_modules\/)?((?:@[^/]+\/)?[^/]+)/.exec(url)?.[1];
  if (pkg) return pkg;
  return 'other (natives, V8, bench route)';
}

const durationSec = Number(process.env.BENCH_DURATION ?? 5);
/** Any variant of spec.ts (`keyward` by default): `noop` / `none` for the floor, `keyward-nocache` / `raw` for every request verified. */
const variant = (process.env.BENCH_PROFILE_VARIANT ?? 'keyward') as Exclude<Variant, 'peer'>;
/** BENCH_PROFILE_TOP=n: also list the n functions with the most own time, in µs per request. */
const TOP = Number(process.env.BENCH_PROFILE_TOP ?? 0);
const frameworks = (process.env.BENCH_FRAMEWORKS?.split(',') ?? FRAMEWORKS) as Framework[];
/** BENCH_PROFILE_TOKENS=n: distinct tokens, picked at random (default one, repeated). */
const TOKENS = Math.max(1, Math.floor(Number(process.env.BENCH_PROFILE_TOKENS ?? 1)));
const keyring = await openKeyring('HS256');
const tokens = keyring.sign(TOKENS);
try {
  for (const framework of frameworks) {
    const dir = mkdtempSync(join(tmpdir(), 'keyward-prof-'));
    const server = await startServer(
      { framework, variant, alg: 'HS256', keyring: keyring.keyring, peer: keyring.peer },
      60_000,
      ['--cpu-prof', '--cpu-prof-interval=250', `--cpu-prof-dir=${dir}`],
    );
    // Only the samples of the measured piece count: not start-up, and not the warm-up, whose misses
    // fill the verify cache (5,000 distinct tokens would otherwise add their verifications).
    await measure(server.port, tokens, { connections: 10, durationSec: 2 });
    const from = monotonicUs();
    const m = await measure(server.port, tokens, { connections: 10, durationSec });
    const to = monotonicUs();
    await server.stop();
    const file = readdirSync(dir).find((f) => f.endsWith('.cpuprofile'));
    if (!file) throw new Error(`${framework}: no profile written`);
    const profile = JSON.parse(readFileSync(join(dir, file), 'utf8')) as Profile;
    rmSync(dir, { recursive: true, force: true });
    const byId = new Map(profile.nodes.map((n) => [n.id, n]));
    let at = profile.startTime;
    const samples = profile.samples.filter((_, i) => {
      at += profile.timeDeltas[i] ?? 0;
      return at >= from && at <= to;
    });
    if (samples.length === 0) throw new Error(`${framework}: no samples in the measured piece`);
    const counts = new Map<string, number>();
    let busy = 0;
    for (const id of samples) {
      const bucket = bucketOf(framework, (byId.get(id) as ProfileNode).callFrame);
      if (bucket === undefined) continue;
      busy++;
      counts.set(bucket, (counts.get(bucket) ?? 0) + 1);
    }
    const rows = [...counts].sort((a, b) => b[1] - a[1]);
    const keyward = (counts.get('keyward core') ?? 0) + (counts.get('keyward adapter') ?? 0);
    console.log(
      `\n### ${framework}, ${variant}, ${TOKENS === 1 ? 'one token' : `${TOKENS} tokens`} (${Math.round(m.rps).toLocaleString('en-US')} req/s while profiled; ${busy} busy samples)\n`,
    );
    console.log(`keyward's own code: **${((keyward / busy) * 100).toFixed(1)} %** of busy samples\n`);
    console.log('| own time of | share |\n| --- | ---: |');
    for (const [bucket, n] of rows.slice(0, 8))
      console.log(`| ${bucket} | ${((n / busy) * 100).toFixed(1)} % |`);
    if (TOP > 0) {
      // Per function: own time per request, the measured piece's µs shared out by sample counts.
      const perRequest = (to - from) / (m.rps * durationSec);
      const byFn = new Map<string, number>();
      for (const id of samples) {
        const { functionName, url } = (byId.get(id) as ProfileNode).callFrame;
        if (functionName === '(idle)') continue;
        const key = `${functionName || '(anonymous)'} ${url.replace(/.*node_modules\/(\.pnpm\/[^/]+\/node_modules\/)?/, '').replace(/.*\/packages\//, 'packages/')}`;
        byFn.set(key, (byFn.get(key) ?? 0) + 1);
      }
      console.log(`\n| function (top ${TOP}) | µs per request |\n| --- | ---: |`);
      for (const [fn, n] of [...byFn].sort((a, b) => b[1] - a[1]).slice(0, TOP))
        console.log(`| ${fn} | ${((n / samples.length) * perRequest).toFixed(3)} |`);
    }
  }
} finally {
  await keyring.close();
}
