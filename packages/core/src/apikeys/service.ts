import { isWellFormedUnicode } from '../_internal/unicode.js';
import { KeywardError } from '../errors.js';
import type { KeywardCore } from '../keyward.js';
import { storeEntries } from '../store/entries.js';
import { generateApiKey, isApiKeyId } from './format.js';
import { LastUsedBatcher } from './last-used.js';
import {
  APIKEYS_CHANNEL,
  type ApiKeyRecord,
  hashSecret,
  PepperCache,
  parseRecord,
  storeKeys,
  toInfo,
} from './record.js';
import type { ApiKeyInfo, ApiKeyService, CreateApiKeyInput, CreatedApiKey } from './types.js';
import { ApiKeyVerifier } from './verify.js';

/**
 * Options of {@link createApiKeyService}.
 *
 * @example
 * ```ts
 * const options: ApiKeyServiceOptions = { cacheTtlMs: 5_000, lastUsedFlushMs: 60_000 }
 * ```
 */
export interface ApiKeyServiceOptions {
  /**
   * How long a verified key is trusted from memory, in ms. Revocations reach every instance at
   * once through the store's pub/sub; this bounds the damage of a lost message. `0` disables
   * the cache. Default 30 000.
   */
  cacheTtlMs?: number;
  /** Most verified keys held in memory. Default 10 000. */
  cacheMax?: number;
  /**
   * How long an API-key id the store does not hold is answered as unknown from memory, in ms, so
   * a flood of requests with one unknown id costs one store read per id per window. Creating a
   * key with that id (on any instance: creations are announced on the `apikeys` channel) drops
   * the entry at once; a lost announcement delays a brand-new key by at most this long. `0`
   * disables it. Default 5 000.
   */
  negativeCacheTtlMs?: number;
  /** Most unknown ids remembered (least recently used dropped first). Default 10 000. */
  negativeCacheMax?: number;
  /** How often `lastUsedAt` times are written to the store, in ms. Default 10 000. */
  lastUsedFlushMs?: number;
}

/**
 * The service {@link createApiKeyService} returns: the {@link ApiKeyService} plus a flush.
 *
 * @example
 * ```ts
 * await apiKeys.flushLastUsed() // e.g. before a list() that must show this request's use
 * ```
 */
export interface ApiKeyServiceInstance extends ApiKeyService {
  /** Writes the pending `lastUsedAt` times now (also done on a timer and on `core.close()`). */
  flushLastUsed(): Promise<void>;
}

const OWNER_MAX = 256;
const NAME_MAX = 200;
/** Longest API-key lifetime: ten years, as the HTTP route allows. */
export const MAX_API_KEY_TTL_SEC = 10 * 365 * 86_400;
const REVOKE_ATTEMPTS = 5;

function invalid(option: string, expected: string): KeywardError {
  return new KeywardError('invalid_argument', `${option} must be ${expected}`, { details: { option } });
}

function positive(value: number | undefined, fallback: number, option: string, allowZero = false): number {
  const n = value ?? fallback;
  if (!Number.isFinite(n) || n < 0 || (!allowZero && n === 0)) {
    throw new KeywardError('config_invalid', `createApiKeyService: ${option} must be a positive number`, {
      details: { option },
    });
  }
  return n;
}

function checkInput(input: CreateApiKeyInput): void {
  if (
    typeof input?.owner !== 'string' ||
    input.owner.length === 0 ||
    input.owner.length > OWNER_MAX ||
    !isWellFormedUnicode(input.owner)
  )
    throw invalid('owner', `a non-empty, well-formed Unicode string of at most ${OWNER_MAX} characters`);
  if (typeof input.name !== 'string' || input.name.length > NAME_MAX || !isWellFormedUnicode(input.name))
    throw invalid('name', `a well-formed Unicode string of at most ${NAME_MAX} characters`);
  if (
    input.scopes !== undefined &&
    (!Array.isArray(input.scopes) || input.scopes.some((s) => typeof s !== 'string'))
  )
    throw invalid('scopes', 'an array of strings');
  const ttl = input.expiresInSec;
  if (
    ttl !== undefined &&
    (typeof ttl !== 'number' || !Number.isFinite(ttl) || ttl <= 0 || ttl > MAX_API_KEY_TTL_SEC)
  )
    throw invalid(
      'expiresInSec',
      `a positive number of seconds of at most ${MAX_API_KEY_TTL_SEC} (ten years)`,
    );
}

/**
 * Creates the API-key service on a keyward core. Keys look like `kw_<id>_<secret><checksum>`
 * (see {@link API_KEY_PATTERN}); only HMAC-SHA256 of the secret under a pepper derived from the
 * active data key is stored. Verified keys are cached briefly; a revocation is published on the
 * store channel `apikeys` so every instance drops it at once. `lastUsedAt` is written in
 * batches. Resolves once the revocation subscription is live.
 *
 * @example
 * ```ts
 * const apiKeys = await createApiKeyService(core)
 * const { key, id } = await apiKeys.create({ owner: 'user_1', name: 'CI', scopes: ['read'] })
 * const { owner, scopes } = await apiKeys.verify(key) // throws api_key_* KeywardErrors
 * await apiKeys.revoke(id, { owner: 'user_1' })
 * ```
 */
export async function createApiKeyService(
  core: KeywardCore,
  options: ApiKeyServiceOptions = {},
): Promise<ApiKeyServiceInstance> {
  const cacheTtlMs = positive(options.cacheTtlMs, 30_000, 'cacheTtlMs', true);
  const cacheMax = positive(options.cacheMax, 10_000, 'cacheMax');
  const flushMs = positive(options.lastUsedFlushMs, 10_000, 'lastUsedFlushMs');
  const negativeCacheTtlMs = positive(options.negativeCacheTtlMs, 5_000, 'negativeCacheTtlMs', true);
  const negativeCacheMax = positive(options.negativeCacheMax, 10_000, 'negativeCacheMax');
  const { store } = core;
  const peppers = new PepperCache();
  const lastUsed = new LastUsedBatcher(store, core.logger, flushMs);
  const verifier = new ApiKeyVerifier(core, {
    cacheTtlMs,
    cacheMax: Math.floor(cacheMax),
    negativeCacheTtlMs,
    negativeCacheMax: Math.max(1, Math.floor(negativeCacheMax)),
    peppers,
    lastUsed,
  });

  let unsubscribe: (() => Promise<void>) | undefined;
  try {
    unsubscribe = await store.subscribe(APIKEYS_CHANNEL, (message) => {
      try {
        const event = JSON.parse(message) as { type?: unknown; id?: unknown };
        if (event.type === 'revoke' && isApiKeyId(event.id)) verifier.forget(event.id);
        if (event.type === 'create' && isApiKeyId(event.id)) verifier.created(event.id);
      } catch {
        // Not ours to judge: a malformed message is ignored; the cache TTL still bounds staleness.
      }
    });
  } catch (err) {
    core.logger.warn(
      { code: err instanceof KeywardError ? err.code : 'internal_error' },
      'keyward api keys: subscription failed; cached keys expire after cacheTtlMs, unknown ids after negativeCacheTtlMs',
    );
  }
  core.onClose(async () => {
    await lastUsed.close();
    await unsubscribe?.().catch(() => undefined);
  });

  async function load(id: string): Promise<{ raw: string; record: ApiKeyRecord } | undefined> {
    if (!isApiKeyId(id)) return undefined;
    const raw = await store.get(storeKeys.record(id));
    return raw === null ? undefined : { raw, record: parseRecord(raw, id) };
  }

  async function lastUsedOf(id: string): Promise<number | null> {
    const stored = Number(await store.get(storeKeys.lastUsed(id)));
    const pending = lastUsed.pending(id) ?? 0;
    const latest = Math.max(Number.isFinite(stored) ? stored : 0, pending);
    return latest > 0 ? latest : null;
  }

  return {
    async create(input) {
      checkInput(input);
      const keyring = core.keys.snapshot();
      const kid = keyring.dataKey().kid;
      const pepper = peppers.get(keyring, kid);
      if (!pepper) throw new KeywardError('key_not_found', 'the keyring has no usable data key');
      const createdAt = core.now();
      for (;;) {
        const { id, secret, key } = generateApiKey();
        const record: ApiKeyRecord = {
          v: 1,
          id,
          owner: input.owner,
          name: input.name,
          scopes: [...(input.scopes ?? [])],
          createdAt,
          expiresAt: input.expiresInSec === undefined ? null : createdAt + input.expiresInSec * 1000,
          revokedAt: null,
          kid,
          hash: hashSecret(pepper, secret).toString('base64url'),
        };
        // Index first: a record without its index entry would be invisible to list().
        await store.set(storeKeys.ownerPrefix(input.owner) + id, '1');
        // 62^12 ids make a collision practically impossible; compareAndSet makes it harmless.
        if (!(await store.compareAndSet(storeKeys.record(id), null, JSON.stringify(record)))) continue;
        verifier.created(id);
        try {
          // Every instance drops a "not found" it may remember for this id.
          await store.publish(APIKEYS_CHANNEL, JSON.stringify({ type: 'create', id }));
        } catch (err) {
          core.logger.warn(
            { apiKeyId: id, code: err instanceof KeywardError ? err.code : 'internal_error' },
            'keyward api keys: creation broadcast failed; other instances see the key within negativeCacheTtlMs',
          );
        }
        core.audit.emit({
          type: 'apikey.created',
          apiKeyId: id,
          sub: input.owner,
          scopes: record.scopes,
          actor: { type: 'user', id: input.owner },
        });
        return { ...toInfo(record, null), key } satisfies CreatedApiKey;
      }
    },

    verify: (key) => verifier.verify(key),

    async list(owner) {
      if (typeof owner !== 'string' || owner.length === 0 || !isWellFormedUnicode(owner))
        throw invalid('owner', 'a non-empty, well-formed Unicode string');
      const prefix = storeKeys.ownerPrefix(owner);
      const ids: string[] = [];
      for await (const entry of storeEntries(store, 'list', prefix)) ids.push(entry.key.slice(prefix.length));
      const infos = await Promise.all(
        ids.map(async (id): Promise<ApiKeyInfo | undefined> => {
          const found = await load(id);
          if (!found || found.record.owner !== owner) return undefined;
          return toInfo(found.record, await lastUsedOf(id));
        }),
      );
      return infos.filter((info) => info !== undefined).sort((a, b) => a.createdAt - b.createdAt);
    },

    async revoke(id, revokeOptions = {}) {
      for (let attempt = 0; attempt < REVOKE_ATTEMPTS; attempt++) {
        const found = await load(id);
        if (!found) return false;
        if (revokeOptions.owner !== undefined && found.record.owner !== revokeOptions.owner) return false;
        if (found.record.revokedAt !== null) return true;
        const next: ApiKeyRecord = { ...found.record, revokedAt: core.now() };
        if (!(await store.compareAndSet(storeKeys.record(id), found.raw, JSON.stringify(next)))) continue;
        verifier.forget(id);
        try {
          await store.publish(APIKEYS_CHANNEL, JSON.stringify({ type: 'revoke', id }));
        } catch (err) {
          // The revocation is stored; other instances drop their cached copy within cacheTtlMs.
          core.logger.warn(
            { apiKeyId: id, code: err instanceof KeywardError ? err.code : 'internal_error' },
            'keyward api keys: revocation broadcast failed',
          );
        }
        core.audit.emit({
          type: 'apikey.revoked',
          apiKeyId: id,
          actor:
            revokeOptions.owner === undefined
              ? { type: 'operator' }
              : { type: 'user', id: revokeOptions.owner },
        });
        return true;
      }
      throw new KeywardError('store_conflict', 'API key changed concurrently; revoke again', {
        details: { apiKeyId: id },
      });
    },

    flushLastUsed: () => lastUsed.flush(),
  };
}
