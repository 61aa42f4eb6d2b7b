import type { JWK } from 'jose';
import { LRUCache } from 'lru-cache';
import { KeywardError } from '../errors.js';

/** Options of {@link JwksClient}. */
export interface JwksClientOptions {
  /** The JWKS endpoint. Either this or `discoveryUrl`. */
  jwksUri?: string;
  /**
   * An OpenID Connect discovery document (`<issuer>/.well-known/openid-configuration`): its
   * `jwks_uri` is used, and its `issuer` must equal `issuer`.
   */
  discoveryUrl?: string;
  /** The issuer the discovery document must name. Required with `discoveryUrl`. */
  issuer?: string;
  /** Accept `http:` URLs (the JWKS and the discovery document). Default false: `https:` only. */
  allowInsecure?: boolean;
  /**
   * Least time between two fetches, whatever triggers them (unknown kid, expiry, failure). Default
   * 1 s: an IdP may sign with a new key at once, and a flood of unknown kids still costs it at most
   * one request per second.
   */
  cooldownMs?: number;
  /** Abort a fetch after this long. Default 5 s. */
  fetchTimeoutMs?: number;
  /** Cache lifetime when the response has no `Cache-Control: max-age`. Default 10 minutes. */
  defaultMaxAgeMs?: number;
  /** Largest JWKS (or discovery) response accepted, in bytes, counted while it streams. Default 1 MiB. */
  maxResponseBytes?: number;
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
 * Checks that `value` is an absolute `https:` URL (`http:` too with `allowInsecure`). Throws
 * `config_invalid` naming `what`, never the URL's credentials.
 */
export function checkIssuerUrl(value: unknown, what: string, allowInsecure: boolean): URL {
  let url: URL;
  try {
    url = new URL(String(value));
  } catch {
    throw new KeywardError('config_invalid', `${what} is not a URL`);
  }
  if (url.protocol === 'https:') return url;
  if (url.protocol === 'http:') {
    if (allowInsecure) return url;
    throw new KeywardError('config_invalid', `${what} must be https: (set allowInsecure for http:)`);
  }
  throw new KeywardError('config_invalid', `${what} must be an https: URL`);
}

/** Reads a response body as text, refusing it as soon as more than `max` bytes have arrived. */
async function readLimited(response: Response, max: number): Promise<string> {
  const declared = Number(response.headers.get('content-length') ?? Number.NaN);
  if (Number.isFinite(declared) && declared > max) {
    await response.body?.cancel().catch(() => {});
    throw new Error(`response larger than ${max} bytes`);
  }
  const body = response.body;
  if (!body) return '';
  const reader = body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > max) {
      await reader.cancel().catch(() => {});
      throw new Error(`response larger than ${max} bytes`);
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/**
 * A JWKS cache for one external issuer. Unlike jose's `createRemoteJWKSet` it keeps a negative
 * cache of unknown `kid`s and serves the last keys while the IdP is unreachable, and every
 * fetch — for expiry, an unknown kid or a retry — waits out one cooldown (default 1 s) and is
 * single-flight, so a flood of tokens with random kids costs the IdP at most one request per
 * cooldown. The cache lives as long as the response's `Cache-Control: max-age` says. With no
 * keys ever fetched and the IdP unreachable, lookups throw `issuer_unavailable` (a server-side
 * problem, HTTP 503).
 */
export class JwksClient {
  readonly #o: Required<Omit<JwksClientOptions, 'jwksUri' | 'discoveryUrl' | 'issuer'>> &
    Pick<JwksClientOptions, 'discoveryUrl' | 'issuer'>;
  #jwksUri: string | undefined;
  #keys = new Map<string, JWK>();
  #loaded = false;
  #failing = false;
  #expiresAt = 0;
  #lastAttemptAt = Number.NEGATIVE_INFINITY;
  #inflight: Promise<void> | undefined;
  #lastError: unknown;
  /** kid → epoch ms until which it is known to be absent. */
  readonly #unknown = new LRUCache<string, number>({ max: 10_000 });
  /** JWKS fetches made (for health and tests). */
  fetches = 0;
  /** Discovery-document fetches made. */
  discoveryFetches = 0;

  constructor(options: JwksClientOptions) {
    const { jwksUri, discoveryUrl, issuer, ...rest } = options;
    this.#o = {
      cooldownMs: 1000,
      fetchTimeoutMs: 5000,
      defaultMaxAgeMs: 600_000,
      maxResponseBytes: MAX_BODY_BYTES,
      allowInsecure: false,
      now: Date.now,
      ...rest,
      ...(discoveryUrl !== undefined ? { discoveryUrl } : {}),
      ...(issuer !== undefined ? { issuer } : {}),
    };
    if ((jwksUri === undefined) === (discoveryUrl === undefined)) {
      throw new KeywardError('config_invalid', 'JwksClient: give exactly one of jwksUri and discoveryUrl');
    }
    if (jwksUri !== undefined) checkIssuerUrl(jwksUri, 'jwksUri', this.#o.allowInsecure);
    if (discoveryUrl !== undefined) {
      checkIssuerUrl(discoveryUrl, 'the discovery URL', this.#o.allowInsecure);
      if (issuer === undefined)
        throw new KeywardError('config_invalid', 'JwksClient: discovery needs the issuer');
    }
    this.#jwksUri = jwksUri;
  }

  /** The JWK for `kid`, or `undefined` when the issuer does not publish it. */
  async key(kid: string): Promise<JWK | undefined> {
    const now = this.#o.now();
    const known = this.#keys.get(kid);
    if (known && now < this.#expiresAt) return known;
    if (known && this.#failing) {
      // The IdP failed its last fetch: serve the stale key now, retry in the background.
      void this.#refresh();
      return known;
    }
    if (!known && (this.#unknown.get(kid) ?? 0) > now) return undefined;
    await this.#refresh();
    const found = this.#keys.get(kid);
    if (found) return found;
    if (!this.#loaded) {
      throw new KeywardError('issuer_unavailable', 'the keys of a trusted token issuer are unavailable', {
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
      .then(() => {
        this.#failing = false;
      })
      .catch((err: unknown) => {
        this.#failing = true;
        this.#lastError = err;
      })
      .finally(() => {
        this.#inflight = undefined;
      });
    return this.#inflight;
  }

  async #get(url: string, accept: string): Promise<{ body: string; response: Response }> {
    const response = await fetch(url, {
      headers: { accept },
      signal: AbortSignal.timeout(this.#o.fetchTimeoutMs),
      redirect: 'error',
    });
    if (response.status !== 200) {
      await response.body?.cancel().catch(() => {});
      throw new Error(`issuer endpoint answered ${response.status}`);
    }
    return { body: await readLimited(response, this.#o.maxResponseBytes), response };
  }

  /** Resolves `jwks_uri` from the discovery document (once; a failure is retried on the next fetch). */
  async #resolveJwksUri(): Promise<string> {
    if (this.#jwksUri !== undefined) return this.#jwksUri;
    this.discoveryFetches += 1;
    const { body } = await this.#get(this.#o.discoveryUrl as string, 'application/json');
    const doc = JSON.parse(body) as { issuer?: unknown; jwks_uri?: unknown };
    if (doc?.issuer !== this.#o.issuer) throw new Error('discovery document names another issuer');
    if (typeof doc.jwks_uri !== 'string') throw new Error('discovery document has no jwks_uri');
    checkIssuerUrl(doc.jwks_uri, 'jwks_uri of the discovery document', this.#o.allowInsecure);
    this.#jwksUri = doc.jwks_uri;
    return doc.jwks_uri;
  }

  async #fetch(): Promise<void> {
    const uri = await this.#resolveJwksUri();
    this.fetches += 1;
    const { body, response } = await this.#get(uri, 'application/jwk-set+json, application/json');
    const set = JSON.parse(body) as { keys?: unknown };
    if (!Array.isArray(set?.keys)) throw new Error('JWKS response has no keys array');
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
