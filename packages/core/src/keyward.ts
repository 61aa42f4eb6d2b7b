import { createApiKeyService } from './apikeys/service.js';
import type { ApiKeyService } from './apikeys/types.js';
import { fingerprint } from './audit/events.js';
import { createKeywardCore, type KeywardCore } from './core.js';
import { createDataCipher, type DataCipher } from './data/cipher.js';
import { createDataKeyRewrap, type DataKeyRewrap, type DataKeyRewrapOptions } from './data/compromise.js';
import { isKeywardError, KeywardError } from './errors.js';
import { createHealth } from './health/health.js';
import type { HealthReport } from './health/types.js';
import { IDP_REWRAP_TARGET } from './idp/store.js';
import type { KeywardOptions } from './options.js';
import { createRateLimiter, type RateLimiter } from './ratelimit/limiter.js';
import { createSecretService, SECRETS_REWRAP_TARGET } from './secrets/service.js';
import type { SecretService } from './secrets/types.js';
import { createIssuerVerifier, type IssuerVerifier } from './tokens/issuers.js';
import { createTokenService } from './tokens/service.js';
import type { TokenService } from './tokens/types.js';

export * from './core.js';

/** Options of {@link createKeyward}: the core's, plus the services'. */
export interface KeywardServiceOptions extends KeywardOptions {
  /** Refresh-token lifetime in seconds. Default 30 days. */
  refreshTtlSec?: number;
  /** How long a just-spent refresh token returns the same successor (two tabs racing). Default 2000 ms. */
  refreshReuseIntervalMs?: number;
  /** Spent refresh tokens remembered per session for reuse detection (see `TokenServiceOptions`). Default 16. */
  reuseDetectionDepth?: number;
  /** How long a verified API key is cached in memory. Default 30 s. */
  apiKeyCacheTtlMs?: number;
  /** How long an unknown API-key id is answered from memory (see `ApiKeyServiceOptions`). Default 5 s. */
  apiKeyNegativeCacheTtlMs?: number;
  /** `version` reported by health. */
  version?: string;
  /**
   * The rewrap that follows the revocation of a data key: its records are moved to the
   * replacement in the background, then the revoked key's material is destroyed. See
   * {@link DataKeyRewrapOptions}.
   */
  dataKeyRewrap?: DataKeyRewrapOptions;
}

/**
 * A running keyward instance: the keyring and JWT hot path of {@link KeywardCore}, plus the
 * services built on it. Create it with {@link createKeyward}; close it on shutdown.
 */
export interface Keyward extends KeywardCore {
  /** Sessions: access + refresh tokens, logout, one-time tokens. */
  readonly tokens: TokenService;
  /** API keys `kw_<id>_<secret><checksum>`. */
  readonly apiKeys: ApiKeyService;
  /** Per-subject secrets, Fernet-encrypted under the data keys. */
  readonly secrets: SecretService;
  /**
   * Encrypts and decrypts application data under the data keys (`<kid>:<fernet token>`). Records
   * you store yourself must be listed in `dataKeyRewrap.targets`: a revoked data key's material is
   * destroyed once the listed targets hold nothing under it.
   */
  readonly data: DataCipher;
  /**
   * The rewrap after a data-key revocation: its progress (`status()`, also in health and
   * `keyward keys list`), a foreground `run()`. Revoking a data key starts it in the background.
   */
  readonly dataRewrap: DataKeyRewrap;
  /** An `application/health+json` report (keys, store, sync, and a revoked data key's rewrap). */
  health(options?: { ready?: boolean }): Promise<HealthReport>;
  /**
   * The verifier of the `trustedIssuers` option's external tokens (`undefined` without them). The
   * authenticator of every framework package uses it for bearer tokens whose `kid` keyward does
   * not know.
   */
  readonly issuers: IssuerVerifier | undefined;
  /**
   * The brute-force limiter of the login and refresh routes (the `rateLimit` option), `undefined`
   * when it is off. Refusals are audited (`access.throttled`) and counted (`rate_limited_total`).
   */
  readonly rateLimit: RateLimiter | undefined;
}

/**
 * Creates a keyward instance: loads the master key, opens (or bootstraps) the keyring, starts
 * sync, wires the JWT hot path and the services.
 *
 * @example
 * ```ts
 * import { createKeyward } from '@keyward/core'
 *
 * const kw = await createKeyward({ dir: './.keyward', issuer: 'https://api.example.com' })
 * const { access_token } = await kw.tokens.issue({ sub: 'user_1', scopes: ['read'] })
 * const { payload } = kw.jwt.verify(access_token)
 * await kw.close()
 * ```
 */
export async function createKeyward(options: KeywardServiceOptions = {}): Promise<Keyward> {
  const issuers = trustedIssuerVerifier(options);
  const core = await createKeywardCore(options);
  try {
    const data = createDataCipher(core);
    const apiKeys = await createApiKeyService(core, {
      ...(options.apiKeyCacheTtlMs !== undefined ? { cacheTtlMs: options.apiKeyCacheTtlMs } : {}),
      ...(options.apiKeyNegativeCacheTtlMs !== undefined
        ? { negativeCacheTtlMs: options.apiKeyNegativeCacheTtlMs }
        : {}),
    });
    const tokens = createTokenService(core, {
      ...(options.refreshTtlSec !== undefined ? { refreshTtlSec: options.refreshTtlSec } : {}),
      ...(options.refreshReuseIntervalMs !== undefined
        ? { refreshReuseIntervalMs: options.refreshReuseIntervalMs }
        : {}),
      ...(options.reuseDetectionDepth !== undefined
        ? { reuseDetectionDepth: options.reuseDetectionDepth }
        : {}),
    });
    const rewrap = createDataKeyRewrap(
      core,
      options.dataKeyRewrap?.targets ?? [SECRETS_REWRAP_TARGET, IDP_REWRAP_TARGET],
      options.dataKeyRewrap ?? {},
      data,
    );
    core.onClose(() => rewrap.close());
    const revoke = core.keys.revoke;
    // The data-key branch of revocation: count what is left under it and start the rewrap here.
    core.keys.revoke = async (kid, reason) => {
      const before = core.keys.snapshot().record(kid);
      const result = await revoke(kid, reason);
      if (before?.use !== 'data' || before.state === 'revoked') return result;
      const toRewrap = await rewrap.afterRevoke(kid);
      return toRewrap === undefined ? result : { ...result, toRewrap };
    };
    const { afterRevoke: _afterRevoke, close: _close, ...dataRewrap } = rewrap;
    const health = createHealth(core, {
      ...(options.version ? { version: options.version } : {}),
      dataKeyRewrap: () => rewrap.status(),
    });
    return Object.assign(core, {
      rateLimit: auditedRateLimiter(core, options),
      issuers: issuers && countedIssuers(core, issuers),
      dataRewrap,
      tokens,
      apiKeys,
      secrets: createSecretService(core, data),
      data,
      health,
    });
  } catch (err) {
    await core.close();
    throw err;
  }
}

/**
 * The limiter of the `rateLimit` option on the instance's store, its refusals audited and counted.
 * A store failure is a warning and a count: the limiter then counts in memory (never a 5xx, never
 * a 401 for the caller).
 */
function auditedRateLimiter(core: KeywardCore, options: KeywardServiceOptions): RateLimiter | undefined {
  const limiter = createRateLimiter({
    store: core.store,
    limits: options.rateLimit,
    now: core.now,
    onStoreError(error) {
      core.metrics.recordRateLimitStoreError?.();
      core.logger.warn(
        { code: isKeywardError(error) ? error.code : 'internal_error' },
        'keyward rate limit: the store failed; counting login and refresh attempts in this instance only',
      );
    },
  });
  if (Object.keys(limiter.rules).length === 0) return undefined;
  return {
    rules: limiter.rules,
    async attempt(route, subject) {
      const decision = await limiter.attempt(route, subject);
      if (!decision.allowed) {
        core.metrics.recordThrottled?.(route, decision.limit);
        core.audit.emit({
          type: 'access.throttled',
          route,
          limit: decision.limit,
          retryAfterSec: decision.retryAfterSec,
          ...(subject.username !== undefined ? { userFingerprint: fingerprint(subject.username) } : {}),
          ...(subject.address ? { address: subject.address } : {}),
        });
      }
      return decision;
    },
  };
}

/** Builds the external-issuer verifier of `trustedIssuers` (before anything opens: bad config fails fast). */
function trustedIssuerVerifier(options: KeywardServiceOptions): IssuerVerifier | undefined {
  const trusted = options.trustedIssuers;
  if (trusted === undefined || trusted.length === 0) return undefined;
  if (!Array.isArray(trusted)) throw new KeywardError('config_invalid', 'trustedIssuers must be an array');
  const own = options.issuer;
  if (own !== undefined && trusted.some((t) => t?.issuer === own)) {
    throw new KeywardError('config_invalid', `trustedIssuers may not list keyward's own issuer (${own})`);
  }
  return createIssuerVerifier({
    issuers: [...trusted],
    ...(options.clockToleranceSec !== undefined ? { clockToleranceSec: options.clockToleranceSec } : {}),
    ...(options.now !== undefined ? { now: options.now } : {}),
  });
}

/**
 * The issuer verifier, counted in the metrics and alerts like keyward's own verifications: the
 * core leaves unknown-kid rejections to it when trusted issuers are set. A token of no trusted
 * issuer counts as keyward's `token_invalid` (the error the authenticator answers with).
 */
function countedIssuers(core: KeywardCore, verifier: IssuerVerifier): IssuerVerifier {
  return {
    issuers: verifier.issuers,
    async verify(token) {
      try {
        const verified = await verifier.verify(token);
        core.metrics.recordVerify(verified.kid);
        core.alerts?.recordVerify(true);
        return verified;
      } catch (err) {
        const untrusted = isKeywardError(err) && err.details?.reason === 'issuer_untrusted';
        core.metrics.recordReject(
          untrusted ? 'token_invalid' : isKeywardError(err) ? err.code : 'internal_error',
        );
        core.alerts?.recordVerify(false);
        throw err;
      }
    },
  };
}
