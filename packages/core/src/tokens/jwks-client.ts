import type { JWK } from 'jose';
import { LRUCache } from 'lru-cache';
import { KeywardError } from '../errors.js';

/** Options of {@link JwksClient}. */
export interface JwksClientOptions {
  jwksUri: string;
  /** Least time between two fetches, whatever triggers them (unknown kid, expiry, failure). Default 30 s. */
  cooldownMs?: number;
  /** Abort a fetch after this long. Default 5 s. */
  fetchTimeoutMs?: number;
  /** Cache lifetime when the response has no `Cache-Control: max-age`. Default 10 minutes. */
  defaultMaxAgeMs?: number;
  now?: () => number;
}

const MAX_AGE_CAP_MS = 24 * 3600 * 1000;
const MAX_BODY_BYTES = 1 << 20;

/** Reads `max-age` from a Cache-Control header; `no-store` / `no-cache` read as 0. */
export function parseMaxAge(header: string | null): number | undefined {
  if (!header) return undefined;
  if (/(^|,)\s*(no-store|no-cache)\s*(,|$)/i.test(header)) return 0;
  const match = /(?:^|,)\s*max-age\s*=\s*"?(\d+)"?/i.exec(header);
  return match?.[1] === undefined ? undefined : Math.min(Number(match[1]) * 1000, MAX_AGE_CAP_MS);
}

/**
 * A JWKS cache for one external issuer. Unlike jose's `createRemoteJWKSet` it keeps a negative
 * cache of unknown `kid`s and serves the last keys while the IdP is unreachable, and every
 * fetch — for expiry, an unknown kid or a retry — waits out one cooldown, so a flood of
 * tokens with random kids costs the IdP at most one request per cooldown.
 */
export class JwksClient {
  readonly #o: Required<JwksClientOptions>;
  #keys = new Map<string, JWK>();
  #loaded = false;
  #expiresAt = 0;
  #lastAttemptAt = Number.NEGATIVE_INFINITY;
  #inflight: Promise<void> | undefined;
  #lastError: unknown;
  /** kid → epoch ms until which it is known to be absent. */
  readonly #unknown = new LRUCache<string, number>({ max: 10_000 });
  /** Fetches made (for health and tests). */
  fetches = 0;

  constructor(options: JwksClientOptions) {
    this.#o = {
      cooldownMs: 30_000,
      fetchTimeoutMs: 5000,
      defaultMaxAgeMs: 600_000,
      now: Date.now,
      ...options,
    };
  }

  /** The JWK for `kid`, or `undefined` when the issuer does not publish it. */
  async key(kid: string): Promise<JWK | undefined> {
    const now = this.#o.now();
    const known = this.#keys.get(kid);
    if (known && now < this.#expiresAt) return known;
    if (!known && (this.#unknown.get(kid) ?? 0) > now) return undefined;
    await this.#refresh();
    const found = this.#keys.get(kid);
    if (found) return found;
    if (!this.#loaded) {
      throw new KeywardError('token_invalid', 'the issuer’s keys are unavailable', {
        cause: this.#lastError,
        details: { reason: 'jwks_unavailable' },
      });
    }
    this.#unknown.set(kid, this.#lastAttemptAt + this.#o.cooldownMs);
    return undefined;
  }

  /** Single-flight fetch, at most one per cooldown. On failure the previous keys stay (fail static). */
  #refresh(): Promise<void> {
    if (this.#inflight) return this.#inflight;
    if (this.#o.now() - this.#lastAttemptAt < this.#o.cooldownMs) return Promise.resolve();
    this.#lastAttemptAt = this.#o.now();
    this.#inflight = this.#fetch()
      .catch((err: unknown) => {
        this.#lastError = err;
      })
      .finally(() => {
        this.#inflight = undefined;
      });
    return this.#inflight;
  }

  async #fetch(): Promise<void> {
    this.fetches += 1;
    const response = await fetch(this.#o.jwksUri, {
      headers: { accept: 'application/jwk-set+json, application/json' },
      signal: AbortSignal.timeout(this.#o.fetchTimeoutMs),
      redirect: 'error',
    });
    if (response.status !== 200) throw new Error(`JWKS endpoint answered ${response.status}`);
    const body = await response.text();
    if (body.length > MAX_BODY_BYTES) throw new Error('JWKS response too large');
    const set = JSON.parse(body) as { keys?: unknown };
    if (!Array.isArray(set.keys)) throw new Error('JWKS response has no keys array');
    const keys = new Map<string, JWK>();
    for (const jwk of set.keys as JWK[]) {
      if (typeof jwk?.kid !== 'string' || typeof jwk.kty !== 'string') continue;
      if (jwk.use !== undefined && jwk.use !== 'sig') continue;
      if (jwk.kty === 'oct') continue; // a symmetric key in a public JWKS is never trusted
      keys.set(jwk.kid, jwk);
    }
    const maxAge = parseMaxAge(response.headers.get('cache-control')) ?? this.#o.defaultMaxAgeMs;
    this.#keys = keys;
    this.#loaded = true;
    this.#expiresAt = this.#o.now() + maxAge;
    this.#unknown.clear();
  }
}
