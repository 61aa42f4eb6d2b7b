/**
 * The load generator. `wrk` (C, one thread) when it is installed, since autocannon (JavaScript) on
 * one core tops out near the servers' own rate and made the faster frameworks' rows measure the
 * generator; autocannon otherwise, or with `BENCH_LOADGEN=autocannon`. Both send pre-built requests:
 * wrk builds every request of the token pool once (`load.wrk.lua`) and picks one at random for each
 * request; autocannon gets the pool dealt out in disjoint slices, one per connection, sent in turn.
 * Nothing is built per request on this side.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import { ROUTE } from './spec.js';

export interface LoadOptions {
  connections: number;
  durationSec: number;
}

export interface Measurement {
  /** Requests per second over the measurement (autocannon: mean of its per-second samples). */
  rps: number;
  p99Ms: number;
  /** Responses that were not 2xx, plus socket errors and timeouts: must be 0 for a valid run. */
  failures: number;
  /** The server process's CPU time (user + system) per request, in µs, when it was measured. */
  cpuUsPerRequest?: number;
}

export type LoadGenerator = 'wrk' | 'autocannon';

const HAS_WRK = spawnSync('wrk', ['--version']).error === undefined;
/** The generator this run uses: `BENCH_LOADGEN`, else wrk when it is on the PATH. */
export const LOADGEN: LoadGenerator = (() => {
  const asked = process.env.BENCH_LOADGEN;
  if (asked === undefined) return HAS_WRK ? 'wrk' : 'autocannon';
  if (asked !== 'wrk' && asked !== 'autocannon') throw new Error('BENCH_LOADGEN must be wrk or autocannon');
  if (asked === 'wrk' && !HAS_WRK) throw new Error('BENCH_LOADGEN=wrk, but wrk is not on the PATH');
  return asked;
})();

/**
 * Loads `127.0.0.1:port` with the given tokens (none: no `Authorization` header), each request's
 * token picked at random (wrk; autocannon deals the pool out per connection instead).
 */
export function measure(port: number, tokens: readonly string[], options: LoadOptions): Promise<Measurement> {
  return LOADGEN === 'wrk' ? measureWrk(port, tokens, options) : measureAutocannon(port, tokens, options);
}

/**
 * One piece of load on a bench server, with the server's CPU time per request over it
 * (`cpuUsPerRequest`, all its threads) when the platform tells it.
 */
export async function measureServer(
  server: { port: number; cpuSeconds(): number | undefined },
  tokens: readonly string[],
  options: LoadOptions,
): Promise<Measurement> {
  const before = server.cpuSeconds();
  const m = await measure(server.port, tokens, options);
  const after = server.cpuSeconds();
  const requests = m.rps * options.durationSec;
  if (before !== undefined && after !== undefined && requests > 0)
    m.cpuUsPerRequest = ((after - before) * 1e6) / requests;
  return m;
}

let seed = 1;

const SCRIPT = fileURLToPath(new URL('./load.wrk.lua', import.meta.url));
let tokenDir: string | undefined;
let written = 0;
const tokenFiles = new WeakMap<readonly string[], string>();

/** The pool as a file of one token a line, written once per pool. */
function tokenFile(tokens: readonly string[]): string {
  let file = tokenFiles.get(tokens);
  if (file === undefined) {
    tokenDir ??= mkdtempSync(join(tmpdir(), 'keyward-bench-tokens-'));
    file = join(tokenDir, `${written++}.txt`);
    writeFileSync(file, tokens.join('\n'));
    tokenFiles.set(tokens, file);
  }
  return file;
}

async function measureWrk(
  port: number,
  tokens: readonly string[],
  options: LoadOptions,
): Promise<Measurement> {
  const args = ['-t1', `-c${options.connections}`, `-d${options.durationSec}s`, '--timeout', '5s'];
  args.push(
    '-s',
    SCRIPT,
    `http://127.0.0.1:${port}`,
    '--',
    tokens.length > 0 ? tokenFile(tokens) : '',
    ROUTE,
    String(seed++),
  );
  const child = spawn('wrk', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (chunk: Buffer) => {
    out += chunk.toString();
  });
  child.stderr.on('data', (chunk: Buffer) => {
    out += chunk.toString();
  });
  const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
  const line = /^WRK (\{.*\})$/m.exec(out)?.[1];
  if (code !== 0 || !line) throw new Error(`wrk exited with ${code}: ${out.slice(-500)}`);
  const r = JSON.parse(line) as { requests: number; durationUs: number; failures: number; p99Us: number };
  return {
    rps: r.requests / (r.durationUs / 1e6),
    p99Ms: Math.round(r.p99Us / 100) / 10,
    failures: r.failures,
  };
}

type Request = { method: 'GET'; path: string; headers: Record<string, string> };

function requestsFrom(tokens: readonly string[]): Request[] {
  if (tokens.length === 0) return [{ method: 'GET', path: ROUTE, headers: {} }];
  return tokens.map((token) => ({
    method: 'GET',
    path: ROUTE,
    headers: { authorization: `Bearer ${token}` },
  }));
}

/** Client `index`'s share of the pool (the whole pool when it is smaller than the connection count). */
function sliceFor(tokens: readonly string[], index: number, connections: number): readonly string[] {
  if (tokens.length < connections) return tokens;
  const size = Math.floor(tokens.length / connections);
  return tokens.slice(index * size, (index + 1) * size);
}

async function measureAutocannon(
  port: number,
  tokens: readonly string[],
  options: LoadOptions,
): Promise<Measurement> {
  let client = 0;
  const result = await autocannon({
    url: `http://127.0.0.1:${port}`,
    connections: options.connections,
    duration: options.durationSec,
    // autocannon clones its options into every client and builds every request of each: start
    // with one request, then give each client its own slice (built once, before the clock starts).
    requests: requestsFrom(tokens.slice(0, 1)),
    setupClient(c) {
      c.setRequests(requestsFrom(sliceFor(tokens, client++, options.connections)));
    },
  });
  return {
    rps: result.requests.average,
    p99Ms: result.latency.p99,
    failures: result.non2xx + result.errors + result.timeouts,
  };
}
