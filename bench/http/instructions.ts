/**
 * Instructions per request of the bench servers, counted by valgrind's callgrind: deterministic
 * where this machine's CPU time is not (its cores change speed within seconds, and it has no
 * hardware counters: `perf stat` reports cycles and instructions as not supported). For each
 * framework: no auth, the no-op guard and keyward (one repeated HS256 token, so every request is a
 * verify-cache hit), each on its own server under callgrind with counting off, warmed up, then
 * counted over a fixed number of requests. The server runs with `--perf-basic-prof`, and the JIT
 * code callgrind cannot name is named from the perf map Node writes (`/tmp/perf-<pid>.map`).
 *
 *   pnpm --filter @keyward/bench bench:http:instructions   (BENCH_FRAMEWORKS; needs valgrind)
 *
 * BENCH_INSTRUCTIONS_VARIANTS (default `none,noop,keyward`) and BENCH_INSTRUCTIONS_ALG (default HS256)
 * choose the servers; every column is compared with the first. BENCH_INSTRUCTIONS_TOP=n also lists,
 * per framework, the n functions that take the most more instructions per request in the last
 * variant than in the one before it (keyward against the no-op guard). BENCH_INSTRUCTIONS_WARMUP
 * (default 30,000) and BENCH_INSTRUCTIONS_REQUESTS (default 6,000) set the request counts; ten
 * connections, like bench:http. Under valgrind a request takes about 1 ms, so each server takes a
 * minute or so. Counts miss what instructions do not show: cache and TLB misses, branch mispredicts.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openKeyring } from './keys.js';
import { startServer } from './process.js';
import { type Alg, envNumber, FRAMEWORKS, type Framework, ROUTE, type Variant } from './spec.js';

if (spawnSync('valgrind', ['--version']).error !== undefined)
  throw new Error('bench:http:instructions needs valgrind (apt-get install valgrind)');

const WARMUP = Math.floor(envNumber('BENCH_INSTRUCTIONS_WARMUP', 30_000));
const REQUESTS = Math.floor(envNumber('BENCH_INSTRUCTIONS_REQUESTS', 6_000));
const TOP = Number(process.env.BENCH_INSTRUCTIONS_TOP ?? 0);
const CONNECTIONS = 10;
const frameworks = (process.env.BENCH_FRAMEWORKS?.split(',') ?? FRAMEWORKS) as Framework[];
for (const f of frameworks) if (!FRAMEWORKS.includes(f)) throw new Error(`unknown framework ${f}`);
const VARIANTS = (process.env.BENCH_INSTRUCTIONS_VARIANTS ?? 'none,noop,keyward').split(',') as Variant[];
if (VARIANTS.length < 2) throw new Error('BENCH_INSTRUCTIONS_VARIANTS needs two variants or more');
const ALG = (process.env.BENCH_INSTRUCTIONS_ALG ?? 'HS256') as Alg;
if (ALG !== 'HS256' && ALG !== 'ES256') throw new Error('BENCH_INSTRUCTIONS_ALG must be HS256 or ES256');
const LABEL: Record<Variant, string> = {
  none: 'no auth',
  noop: 'no-op guard',
  keyward: 'keyward',
  'keyward-nocache': 'keyward, cache off',
  peer: 'usual JWT middleware',
  raw: 'bare signature check',
};
for (const v of VARIANTS) if (!(v in LABEL)) throw new Error(`unknown variant ${v}`);

/** `count` requests over the agent's `CONNECTIONS` keep-alive connections, each one checked to be a 200. */
async function load(agent: http.Agent, port: number, authorization: string, count: number): Promise<void> {
  const one = () =>
    new Promise<void>((resolve, reject) => {
      const req = http.request(
        { host: '127.0.0.1', port, path: ROUTE, agent, headers: { authorization } },
        (res) => {
          res.resume();
          res.on('end', () =>
            res.statusCode === 200 ? resolve() : reject(new Error(`got ${res.statusCode}`)),
          );
        },
      );
      req.on('error', reject);
      req.end();
    });
  await Promise.all(
    Array.from({ length: CONNECTIONS }, async () => {
      for (let i = 0; i < count / CONNECTIONS; i++) await one();
    }),
  );
}

/** JIT code ranges of a process, from the perf map `--perf-basic-prof` writes. */
class PerfMap {
  readonly #starts: number[] = [];
  readonly #entries: Array<{ start: number; end: number; name: string }> = [];

  constructor(pid: number) {
    const lines = readFileSync(`/tmp/perf-${pid}.map`, 'utf8').split('\n');
    const entries = lines.flatMap((line) => {
      const match = /^([0-9a-f]+) ([0-9a-f]+) (.*)$/.exec(line);
      if (!match) return [];
      const start = Number.parseInt(match[1] as string, 16);
      return [{ start, end: start + Number.parseInt(match[2] as string, 16), name: match[3] as string }];
    });
    entries.sort((a, b) => a.start - b.start);
    this.#entries.push(...entries);
    this.#starts.push(...entries.map((e) => e.start));
  }

  /** The name of the code at `address`: the latest-starting range that contains it. */
  nameOf(address: number): string | undefined {
    let lo = 0;
    let hi = this.#starts.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if ((this.#starts[mid] as number) <= address) lo = mid + 1;
      else hi = mid - 1;
    }
    // Code space is reused: look back a little for a range that really covers the address.
    for (let i = hi; i >= 0 && i > hi - 50; i--) {
      const entry = this.#entries[i] as { start: number; end: number; name: string };
      if (address < entry.end) return entry.name;
    }
    return undefined;
  }
}

/** Instructions per function of a callgrind dump, JIT code named from the perf map. */
function functionsOf(dump: string, pid: number): Map<string, number> {
  const map = new PerfMap(pid);
  const text = execFileSync('callgrind_annotate', ['--threshold=100', dump], {
    encoding: 'utf8',
    maxBuffer: 256 * 1024 * 1024,
  });
  const byName = new Map<string, number>();
  for (const line of text.split('\n')) {
    const match = /^\s*([\d,]+) \([^)]*\)\s+(.*)$/.exec(line);
    if (!match || (match[2] as string).includes('PROGRAM TOTALS')) continue;
    const count = Number((match[1] as string).replaceAll(',', ''));
    const fn = match[2] as string;
    const jit = /^\?\?\?:0x([0-9a-f]+) \[\?\?\?\]$/.exec(fn);
    const name = jit
      ? (map.nameOf(Number.parseInt(jit[1] as string, 16)) ?? '(unnamed JIT code)')
          .replace(/file:\/\/\S*?\/packages\//, 'packages/')
          .replace(/\S*node_modules\/(\.pnpm\/[^/]+\/node_modules\/)?/, '')
      : fn.replace(/^\?\?\?:/, '').replace(/ \[.*\]$/, '');
    byName.set(name, (byName.get(name) ?? 0) + count);
  }
  return byName;
}

interface Counted {
  perRequest: number;
  functions: Map<string, number>;
}

async function count(framework: Framework, variant: Variant): Promise<Counted> {
  const dir = mkdtempSync(join(tmpdir(), 'keyward-callgrind-'));
  const dump = join(dir, 'callgrind.out');
  const server = await startServer(
    { framework, variant, alg: ALG, keyring: keyring.keyring, peer: keyring.peer },
    300_000,
    ['--perf-basic-prof'],
    ['valgrind', '--tool=callgrind', '--instr-atstart=no', `--callgrind-out-file=${dump}`],
  );
  const pid = server.pid as number;
  // The same connections throughout: the counted requests find the server as the warm-up left it.
  const agent = new http.Agent({ keepAlive: true, maxSockets: CONNECTIONS });
  try {
    await load(agent, server.port, authorization, WARMUP);
    execFileSync('callgrind_control', ['-i', 'on', String(pid)], { stdio: 'ignore' });
    await load(agent, server.port, authorization, REQUESTS);
    execFileSync('callgrind_control', ['-i', 'off', String(pid)], { stdio: 'ignore' });
    execFileSync('callgrind_control', ['-d', String(pid)], { stdio: 'ignore' });
    const functions = functionsOf(`${dump}.1`, pid);
    let total = 0;
    for (const n of functions.values()) total += n;
    return { perRequest: total / REQUESTS, functions };
  } finally {
    agent.destroy();
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
    rmSync(`/tmp/perf-${pid}.map`, { force: true });
  }
}

const keyring = await openKeyring(ALG);
const [token] = keyring.sign(1);
const authorization = `Bearer ${token}`;
const k = (n: number) => `${(n / 1000).toFixed(1)}k`;
const signed = (n: number) => `${n < 0 ? '−' : '+'}${k(Math.abs(n))}`;
try {
  console.log(
    `instructions per request (callgrind), ${REQUESTS.toLocaleString('en-US')} requests after ${WARMUP.toLocaleString('en-US')}, ${CONNECTIONS} connections, one ${ALG} token\n`,
  );
  const rows: string[] = [];
  const tops: string[] = [];
  for (const framework of frameworks) {
    process.stderr.write(`${framework}…\n`);
    const counted: Counted[] = [];
    for (const variant of VARIANTS) counted.push(await count(framework, variant));
    const base = (counted[0] as Counted).perRequest;
    const cells = counted.map((c, i) =>
      i === 0 ? k(c.perRequest) : `${k(c.perRequest)} (${signed(c.perRequest - base)})`,
    );
    const [before, last] = counted.slice(-2) as [Counted, Counted];
    rows.push(`| ${framework} | ${cells.join(' | ')} | ${(base / last.perRequest).toFixed(3)} |`);
    if (TOP > 0) {
      const names = new Set([...before.functions.keys(), ...last.functions.keys()]);
      const more = [...names]
        .map((name) => ({
          name,
          delta: ((last.functions.get(name) ?? 0) - (before.functions.get(name) ?? 0)) / REQUESTS,
        }))
        .sort((a, b) => b.delta - a.delta)
        .slice(0, TOP);
      const [a, b] = VARIANTS.slice(-2).map((v) => LABEL[v]);
      tops.push(`\n#### ${framework}: what ${b} adds over ${a}, instructions per request\n`);
      tops.push('| function | + instructions |\n| --- | ---: |');
      for (const { name, delta } of more) tops.push(`| ${name.slice(0, 140)} | ${Math.round(delta)} |`);
    }
  }
  const last = LABEL[VARIANTS[VARIANTS.length - 1] as Variant];
  console.log(
    `| framework | ${VARIANTS.map((v) => LABEL[v]).join(' | ')} | ${LABEL[VARIANTS[0] as Variant]} ÷ ${last} |`,
  );
  console.log(`| --- | ${VARIANTS.map(() => '---:').join(' | ')} | ---: |`);
  for (const row of rows) console.log(row);
  for (const line of tops) console.log(line);
} finally {
  await keyring.close();
}
