/**
 * Two variants of one framework measured directly against each other: both servers on core 1 at
 * the same time, each loaded by its own wrk on core 0 with the same tokens, compared by server CPU
 * time per request. bench:http compares every row with its own no-auth twin, so its "× peer" is a
 * ratio of two ratios measured at different moments; for rows that spend most of their time in a
 * signature check (ES256, cache off: 0.14× no-auth), a few percent of that ratio is within what
 * the twins themselves move by. This puts the two rows side by side instead.
 *
 *   pnpm --filter @keyward/bench bench:http:versus
 *
 * BENCH_VERSUS (default `peer,keyward-nocache`): the two variants; BENCH_FRAMEWORKS: one framework
 * (default fastify); BENCH_ALG (default ES256); BENCH_TOKENS (default 5,000 distinct tokens, picked
 * at random); BENCH_ROUNDS (default 5) pieces of BENCH_DURATION seconds (default 3) after a warm-up.
 */
import { openKeyring } from './keys.js';
import { measureServer } from './load.js';
import { startServer } from './process.js';
import { type Alg, envNumber, FRAMEWORKS, type Framework, type Variant } from './spec.js';

const variants = (process.env.BENCH_VERSUS ?? 'peer,keyward-nocache').split(',') as Variant[];
if (variants.length !== 2) throw new Error('BENCH_VERSUS names exactly two variants');
const framework = (process.env.BENCH_FRAMEWORKS ?? 'fastify') as Framework;
if (!FRAMEWORKS.includes(framework)) throw new Error(`unknown framework ${framework}`);
const alg = (process.env.BENCH_ALG ?? 'ES256') as Alg;
if (alg !== 'HS256' && alg !== 'ES256') throw new Error('BENCH_ALG must be HS256 or ES256');
const TOKENS = Math.floor(envNumber('BENCH_TOKENS', 5_000));
const ROUNDS = Math.floor(envNumber('BENCH_ROUNDS', 5));
const load = { connections: 10, durationSec: envNumber('BENCH_DURATION', 3) };

const keyring = await openKeyring(alg);
const tokens = keyring.sign(TOKENS);
const servers = await Promise.all(
  variants.map((variant) =>
    startServer({ framework, variant, alg, keyring: keyring.keyring, peer: keyring.peer }),
  ),
);
try {
  /** Both servers loaded at once for one piece: each one's CPU µs per request. */
  const piece = async (): Promise<number[]> => {
    const measured = await Promise.all(servers.map((s) => measureServer(s, tokens, load)));
    return measured.map(({ failures, cpuUsPerRequest }, i) => {
      if (failures > 0) throw new Error(`${variants[i]}: ${failures} failed requests`);
      return cpuUsPerRequest ?? Number.NaN;
    });
  };
  await piece();
  const [a, b] = variants as [Variant, Variant];
  console.log(
    `${framework}, ${alg}, ${TOKENS.toLocaleString('en-US')} tokens: ${a} against ${b}, at the same time\n`,
  );
  console.log(`| piece | ${a} CPU µs/req | ${b} CPU µs/req | ${a} ÷ ${b} |\n| ---: | ---: | ---: | ---: |`);
  const ratios: number[] = [];
  for (let round = 1; round <= ROUNDS; round++) {
    const [x, y] = (await piece()) as [number, number];
    ratios.push(x / y);
    console.log(`| ${round} | ${x.toFixed(1)} | ${y.toFixed(1)} | ${(x / y).toFixed(3)} |`);
  }
  const sorted = [...ratios].sort((p, q) => p - q);
  console.log(
    `\nmedian ${a} ÷ ${b}: ${(sorted[Math.floor(sorted.length / 2)] as number).toFixed(3)} (range ${(sorted[0] as number).toFixed(3)}–${(sorted[sorted.length - 1] as number).toFixed(3)}); above 1, ${b} costs less per request`,
  );
} finally {
  await Promise.all(servers.map((s) => s.stop()));
  await keyring.close();
}
