/**
 * The load generator: autocannon's programmatic API with pre-built requests. The token pool is
 * dealt out in disjoint slices, one per connection, so no two connections send the same token and
 * autocannon builds each request once; nothing runs per request on this side.
 */
import autocannon from 'autocannon';
import { ROUTE } from './spec.js';

export interface LoadOptions {
  connections: number;
  durationSec: number;
  /** Stop after this many requests in all instead of after `durationSec`. */
  amount?: number;
}

export interface Measurement {
  /** Mean of autocannon's per-second samples. */
  rps: number;
  p99Ms: number;
  /** Responses that were not 2xx, plus socket errors and timeouts: must be 0 for a valid run. */
  failures: number;
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

/** Loads `127.0.0.1:port` with the given tokens (none: no `Authorization` header). */
export async function measure(
  port: number,
  tokens: readonly string[],
  options: LoadOptions,
): Promise<Measurement> {
  let client = 0;
  const result = await autocannon({
    url: `http://127.0.0.1:${port}`,
    connections: options.connections,
    ...(options.amount ? { amount: options.amount } : { duration: options.durationSec }),
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
