import { setTimeout as delay } from 'node:timers/promises';
import type { KeywardCore } from '../core.js';
import { createDataCipher, type DataCipher } from '../data/cipher.js';
import { type RewrapTarget, versionedJsonField } from '../data/rewrap.js';
import { KeywardError } from '../errors.js';
import type { StoreLock } from '../store/types.js';
import {
  checkTokens,
  IDP_PREFIX,
  type IdpTokenRecord,
  idpKey,
  openSealedTokens,
  parseIdpRecord,
  type SealedTokens,
} from './record.js';

/** What the user's refresh function receives. */
export interface IdpRefreshInput {
  sub: string;
  provider: string;
  refreshToken: string;
}

/** What the user's refresh function returns. Without `refreshToken`, the old one is kept. */
export interface IdpRefreshResult {
  accessToken: string;
  refreshToken?: string;
  /** Epoch ms. */
  expiresAt: number;
}

/** Options of {@link createIdpTokenStore}. */
export interface IdpTokenStoreOptions {
  /** Calls the IdP's token endpoint (`grant_type=refresh_token`). Called once per refresh token, across instances. */
  refresh: (input: IdpRefreshInput) => Promise<IdpRefreshResult>;
  /** Refresh when the access token expires within this many ms. Default 60,000. */
  refreshSkewMs?: number;
  /** TTL of the refresh lock, kept alive while `refresh` runs. Default 30,000 ms. */
  lockTtlMs?: number;
  /** How long a caller waits for another instance's refresh before `lock_not_acquired`. Default 15,000 ms. */
  waitTimeoutMs?: number;
  /** How often a waiting caller re-reads the record. Default 50 ms. */
  pollIntervalMs?: number;
}

/** Tokens a user obtained from an identity provider, to store with {@link IdpTokenStore.save}. */
export interface IdpTokenInput {
  sub: string;
  provider: string;
  accessToken: string;
  refreshToken?: string;
  /** When the access token expires, epoch ms. */
  expiresAt: number;
}

/** IdP access and refresh tokens per (subject, provider), encrypted at rest, refreshed on demand. */
export interface IdpTokenStore {
  /** Stores (replaces) a subject's tokens for a provider. */
  save(input: IdpTokenInput): Promise<void>;
  /**
   * A valid access token, refreshed first when it expires within `refreshSkewMs`. `undefined` when
   * nothing is stored, or it expired and there is no refresh token (the user must sign in again).
   * Throws `idp_refresh_failed` when the refresh function fails, `lock_not_acquired` after
   * `waitTimeoutMs` waiting for another instance's refresh.
   */
  get(sub: string, provider: string): Promise<string | undefined>;
  /** Forgets the tokens; resolves false when absent. */
  delete(sub: string, provider: string): Promise<boolean>;
}

interface Loaded {
  raw: string;
  record: IdpTokenRecord;
  tokens: SealedTokens;
}

function duration(value: number | undefined, fallback: number, option: string, min = 0): number {
  if (value === undefined) return fallback;
  if (!Number.isFinite(value) || value < min)
    throw new KeywardError('config_invalid', `createIdpTokenStore: ${option} must be a number ≥ ${min}`, {
      details: { option },
    });
  return value;
}

/**
 * Creates the IdP token store (the reference system's TokenManager / AuthTokenStore role). Tokens
 * are encrypted with the data cipher. With many callers on many instances, a token about to expire
 * is refreshed exactly once: the caller that takes the store lock (with its fencing token)
 * re-reads the record, refreshes only if nobody did meanwhile, and writes with compare-and-set;
 * the others poll the record until the new token appears.
 *
 * @example
 * ```ts
 * const idp = createIdpTokenStore(core, {
 *   refresh: async ({ refreshToken }) => {
 *     const res = await oauth.refresh(refreshToken) // your IdP client
 *     return { accessToken: res.access_token, refreshToken: res.refresh_token, expiresAt: Date.now() + res.expires_in * 1000 }
 *   },
 * })
 * await idp.save({ sub: 'user_1', provider: 'github', accessToken, refreshToken, expiresAt })
 * const token = await idp.get('user_1', 'github') // refreshed if about to expire
 * ```
 */
export function createIdpTokenStore(
  core: Pick<KeywardCore, 'store' | 'keys' | 'now'>,
  options: IdpTokenStoreOptions,
  cipher: DataCipher = createDataCipher(core),
): IdpTokenStore {
  if (typeof options?.refresh !== 'function')
    throw new KeywardError('config_invalid', 'createIdpTokenStore: refresh must be a function', {
      details: { option: 'refresh' },
    });
  const skew = duration(options.refreshSkewMs, 60_000, 'refreshSkewMs');
  const lockTtlMs = duration(options.lockTtlMs, 30_000, 'lockTtlMs', 1000);
  const waitTimeoutMs = duration(options.waitTimeoutMs, 15_000, 'waitTimeoutMs');
  const pollMs = duration(options.pollIntervalMs, 50, 'pollIntervalMs', 1);
  const { store } = core;
  const inFlight = new Map<string, Promise<string | undefined>>();

  const load = async (key: string): Promise<Loaded | null> => {
    const raw = await store.get(key);
    if (raw === null) return null;
    const record = parseIdpRecord(raw);
    return { raw, record, tokens: openSealedTokens(cipher.decryptString(record.value), key) };
  };
  const fresh = (l: Loaded) => l.record.expiresAt - skew > core.now();
  const unexpired = (l: Loaded) => l.record.expiresAt > core.now();
  /** Someone else refreshed (or saved) since `seen`, and the result is still valid. */
  const replaced = (l: Loaded, seen: Loaded) => l.record.version !== seen.record.version && unexpired(l);

  const seal = (key: string, tokens: SealedTokens) => cipher.encrypt(JSON.stringify({ ...tokens, k: key }));

  async function refreshUnderLock(key: string, sub: string, provider: string, seen: Loaded, lock: StoreLock) {
    const current = await load(key); // re-read: the previous holder may have refreshed already
    if (!current) return undefined;
    if (fresh(current) || replaced(current, seen)) return current.tokens.a;
    const refreshToken = current.tokens.r;
    if (refreshToken === undefined) return unexpired(current) ? current.tokens.a : undefined;
    const keepAlive = setInterval(() => void lock.extend(lockTtlMs).catch(() => false), lockTtlMs / 3);
    keepAlive.unref();
    let result: ReturnType<typeof checkTokens>;
    try {
      result = checkTokens(
        await options.refresh({ sub, provider, refreshToken }),
        'idp_refresh_failed',
        'refresh function result',
      );
    } catch (cause) {
      if (cause instanceof KeywardError && cause.code === 'idp_refresh_failed') throw cause;
      throw new KeywardError('idp_refresh_failed', `refreshing the "${provider.slice(0, 64)}" token failed`, {
        cause,
        details: { provider: provider.slice(0, 64) },
      });
    } finally {
      clearInterval(keepAlive);
    }
    const next: IdpTokenRecord = {
      v: 2,
      value: seal(key, {
        a: result.accessToken,
        ...((result.refreshToken ?? refreshToken) ? { r: result.refreshToken ?? refreshToken } : {}),
      }),
      expiresAt: result.expiresAt,
      updatedAt: core.now(),
      version: current.record.version + 1,
      fence: lock.token,
    };
    const written = JSON.stringify(next);
    // Compare-and-set: a save() that raced the refresh keeps its (newer) tokens; a rewrap that only
    // re-encrypted the same version must not make us drop the new refresh token.
    let expected = current.raw;
    for (let attempt = 0; attempt < 3; attempt++) {
      if (await store.compareAndSet(key, expected, written)) break;
      const latest = await store.get(key);
      if (latest === null || parseIdpRecord(latest).version !== current.record.version) break;
      expected = latest;
    }
    return result.accessToken;
  }

  async function resolve(key: string, sub: string, provider: string): Promise<string | undefined> {
    const seen = await load(key);
    if (!seen) return undefined;
    if (fresh(seen)) return seen.tokens.a;
    if (seen.tokens.r === undefined) return unexpired(seen) ? seen.tokens.a : undefined;
    const deadline = performance.now() + waitTimeoutMs;
    for (;;) {
      const lock = await store.acquireLock(`idp-refresh:${key}`, lockTtlMs);
      if (lock) {
        try {
          return await refreshUnderLock(key, sub, provider, seen, lock);
        } finally {
          await lock.release().catch(() => false);
        }
      }
      await delay(pollMs);
      const latest = await load(key);
      if (!latest) return undefined;
      if (fresh(latest) || replaced(latest, seen)) return latest.tokens.a;
      if (performance.now() > deadline)
        throw new KeywardError(
          'lock_not_acquired',
          'timed out waiting for another instance to refresh the IdP token',
          {
            details: { provider: provider.slice(0, 64) },
          },
        );
    }
  }

  return {
    async save(input) {
      const key = idpKey(input?.sub, input?.provider);
      const { accessToken, refreshToken, expiresAt } = checkTokens(input, 'invalid_argument', 'save');
      const previous = await store.get(key);
      let version = 1;
      if (previous !== null) {
        try {
          version = parseIdpRecord(previous).version + 1;
        } catch {
          // an unreadable record is simply replaced
        }
      }
      const record: IdpTokenRecord = {
        v: 2,
        value: seal(key, { a: accessToken, ...(refreshToken !== undefined ? { r: refreshToken } : {}) }),
        expiresAt,
        updatedAt: core.now(),
        version,
      };
      await store.set(key, JSON.stringify(record));
    },
    get(sub, provider) {
      const key = idpKey(sub, provider);
      // One refresh per process: concurrent callers of this instance share the pending result.
      const pending = inFlight.get(key);
      if (pending) return pending;
      const promise = resolve(key, sub, provider).finally(() => inFlight.delete(key));
      inFlight.set(key, promise);
      return promise;
    },
    delete(sub, provider) {
      return store.delete(idpKey(sub, provider));
    },
  };
}

/**
 * Where IdP tokens keep their ciphertext, for the rewrap job. The pass also migrates legacy
 * (`v: 1`) records: their sealed tokens get the store key (`k`) and the record becomes `v: 2`; tokens
 * already naming a key are left as they are (a copied record stays refused).
 *
 * @example
 * ```ts
 * await createRewrapJob(core, { ...IDP_REWRAP_TARGET }).run()
 * ```
 */
export const IDP_REWRAP_TARGET: RewrapTarget = Object.freeze({
  prefixes: [IDP_PREFIX],
  // Every plaintext a pass writes is bound to its key (migrate ran on any v1 record): v2.
  ...versionedJsonField('value', 2),
  migrate(plaintext: Uint8Array, key: string): Uint8Array | undefined {
    let tokens: SealedTokens | null;
    try {
      tokens = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(plaintext)) as SealedTokens | null;
    } catch {
      return undefined; // unreadable anyway: only re-encrypted, so it never keeps its data key from retiring
    }
    if (typeof tokens !== 'object' || tokens === null || typeof tokens.a !== 'string') return undefined;
    if (tokens.k !== undefined) return undefined;
    return new TextEncoder().encode(JSON.stringify({ ...tokens, k: key }));
  },
});
