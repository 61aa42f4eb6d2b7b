import { hash, timingSafeEqual } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import { markAudited } from '../_internal/audited.js';
import { fingerprint } from '../audit/events.js';
import { KeywardError, type KeywardErrorCode } from '../errors.js';
import type { KeywardCore } from '../keyward.js';
import { parseApiKey } from './format.js';
import type { LastUsedBatcher } from './last-used.js';
import { type ApiKeyRecord, hashSecret, type PepperCache, parseRecord, storeKeys } from './record.js';
import type { VerifiedApiKey } from './types.js';

interface CachedKey {
  result: VerifiedApiKey;
  /** Epoch ms after which the store is asked again, so a lost revocation message heals. */
  cachedUntil: number;
}

/** Settings of {@link ApiKeyVerifier}. */
export interface ApiKeyVerifierOptions {
  cacheTtlMs: number;
  cacheMax: number;
  /** How long an id the store did not hold is answered from memory, in ms (`0`: never). */
  negativeCacheTtlMs: number;
  /** Most unknown ids remembered. */
  negativeCacheMax: number;
  peppers: PepperCache;
  lastUsed: LastUsedBatcher;
}

// Compared against on an unknown id, so that path costs an HMAC and a compare like a wrong secret.
const DUMMY_HASH = Buffer.alloc(32);
const DUMMY_PEPPER = Buffer.alloc(32, 1);

/** The verify path of the API-key service: checksum, cache, lookup, HMAC, expiry, revocation. */
export class ApiKeyVerifier {
  readonly #core: KeywardCore;
  readonly #o: ApiKeyVerifierOptions;
  readonly #cache: LRUCache<string, CachedKey> | undefined;
  /** Ids the store did not hold → epoch ms until which that answer is reused. */
  readonly #unknown: LRUCache<string, number> | undefined;
  /**
   * Bumped whenever a key is created here or announced from elsewhere: a lookup that started
   * before a creation does not cache its "not found", which the creation may have made stale.
   */
  #creations = 0;

  constructor(core: KeywardCore, options: ApiKeyVerifierOptions) {
    this.#core = core;
    this.#o = options;
    this.#cache = options.cacheTtlMs > 0 ? new LRUCache({ max: options.cacheMax }) : undefined;
    this.#unknown =
      options.negativeCacheTtlMs > 0 ? new LRUCache({ max: options.negativeCacheMax }) : undefined;
  }

  /** Drops the "not found" remembered for `id` (it was just created, here or on another instance). */
  created(id: string): void {
    this.#creations += 1;
    this.#unknown?.delete(id);
  }

  /** Drops every cached verification of key `id` (after a revocation, here or on another instance). */
  forget(id: string): void {
    if (!this.#cache) return;
    for (const [cacheKey, entry] of this.#cache.entries()) {
      if (entry.result.id === id) this.#cache.delete(cacheKey);
    }
  }

  async verify(key: string): Promise<VerifiedApiKey> {
    const started = process.hrtime.bigint();
    let id: string | undefined;
    try {
      const parts = parseApiKey(key);
      id = parts.id;
      const now = this.#core.now();
      // The cache is keyed by a digest so that the process never holds a usable key in a map.
      const cacheKey = this.#cache && hash('sha256', key, 'base64url');
      const cached = cacheKey === undefined ? undefined : this.#cache?.get(cacheKey);
      let result: VerifiedApiKey;
      if (cached && cached.cachedUntil > now) {
        checkExpiry(cached.result.id, cached.result.expiresAt, now);
        result = cached.result;
      } else {
        const record = await this.#lookup(parts.id, parts.secret, now);
        result = {
          id: record.id,
          owner: record.owner,
          scopes: [...record.scopes],
          expiresAt: record.expiresAt,
        };
        if (cacheKey !== undefined) {
          const until = Math.min(now + this.#o.cacheTtlMs, record.expiresAt ?? Number.POSITIVE_INFINITY);
          this.#cache?.set(cacheKey, { result, cachedUntil: until });
        }
      }
      this.#o.lastUsed.mark(result.id, now);
      this.#core.metrics.recordApiKeyVerify(Number(process.hrtime.bigint() - started));
      return { ...result, scopes: [...result.scopes] };
    } catch (err) {
      const code: KeywardErrorCode = err instanceof KeywardError ? err.code : 'internal_error';
      this.#core.metrics.recordReject(code, Number(process.hrtime.bigint() - started));
      this.#core.audit.emit({
        type: 'access.denied',
        code,
        via: 'api_key',
        ...(id !== undefined && code !== 'api_key_invalid' ? { apiKeyId: id } : {}),
        // Only a fingerprint, so repeated attempts with one key can be correlated.
        ...(typeof key === 'string' ? { tokenFingerprint: fingerprint(key) } : {}),
      });
      // One event per denied key: the HTTP authenticator does not audit this error again.
      if (typeof err === 'object' && err !== null) markAudited(err);
      throw err;
    }
  }

  /** The stored record of `id`, or `null`; a recent "not found" is answered from memory. */
  async #read(id: string, now: number): Promise<string | null> {
    const unknownUntil = this.#unknown?.get(id);
    if (unknownUntil !== undefined && unknownUntil > now) return null;
    const creations = this.#creations;
    const raw = await this.#core.store.get(storeKeys.record(id));
    if (raw === null && creations === this.#creations) {
      this.#unknown?.set(id, now + this.#o.negativeCacheTtlMs);
    } else if (unknownUntil !== undefined) {
      this.#unknown?.delete(id);
    }
    return raw;
  }

  async #lookup(id: string, secret: string, now: number): Promise<ApiKeyRecord> {
    const raw = await this.#read(id, now);
    const record = raw === null ? undefined : parseRecord(raw, id);
    const keyring = this.#core.keys.snapshot();
    const pepper = record && this.#o.peppers.get(keyring, record.kid);
    const stored = record && pepper ? Buffer.from(record.hash, 'base64url') : DUMMY_HASH;
    const actual = hashSecret(pepper ?? DUMMY_PEPPER, secret);
    // Constant-time, so response times do not reveal how much of a guessed secret matched.
    const matches = stored.length === actual.length && timingSafeEqual(stored, actual);
    if (!record || !pepper || !matches) {
      throw new KeywardError('api_key_invalid', 'API key is invalid');
    }
    checkExpiry(id, record.expiresAt, now);
    if (record.revokedAt !== null) {
      throw new KeywardError('api_key_revoked', 'API key has been revoked', { details: { apiKeyId: id } });
    }
    const active = activeDataKid(this.#core);
    if (active !== undefined && record.kid !== active)
      await this.#rehash(record, raw as string, secret, active);
    return record;
  }

  /** Lazy rehash under the active data key, so older data keys can retire. Best effort. */
  async #rehash(record: ApiKeyRecord, raw: string, secret: string, kid: string): Promise<void> {
    const pepper = this.#o.peppers.get(this.#core.keys.snapshot(), kid);
    if (!pepper) return;
    const next: ApiKeyRecord = { ...record, kid, hash: hashSecret(pepper, secret).toString('base64url') };
    try {
      // Lost race (a revoke or another instance's rehash): theirs stands; the next verify retries.
      await this.#core.store.compareAndSet(storeKeys.record(record.id), raw, JSON.stringify(next));
    } catch (err) {
      this.#core.logger.warn(
        { apiKeyId: record.id, code: err instanceof KeywardError ? err.code : 'internal_error' },
        'keyward api keys: lazy rehash failed',
      );
    }
  }
}

/** The kid new hashes go under, or `undefined` when the keyring has no active data key. */
export function activeDataKid(core: KeywardCore): string | undefined {
  try {
    return core.keys.snapshot().dataKey().kid;
  } catch {
    return undefined;
  }
}

function checkExpiry(id: string, expiresAt: number | null, now: number): void {
  if (expiresAt !== null && expiresAt <= now) {
    throw new KeywardError('api_key_expired', 'API key has expired', { details: { apiKeyId: id } });
  }
}
