import type { JwtClaims } from '../jwt/types.js';

/** An OAuth 2.0 token response (RFC 6749 §5.1). */
export interface TokenPair {
  access_token: string;
  refresh_token: string;
  token_type: 'Bearer';
  /** Access-token lifetime in seconds. */
  expires_in: number;
}

/** Input of {@link TokenService.issue}. */
export interface IssueTokensInput {
  sub: string;
  scopes?: readonly string[];
  /**
   * Extra claims for the access token (never `exp`, `iat`, `jti`, `sub`, `scope`): at most 8 KiB of
   * serialized JSON, nested at most 32 levels (`invalid_request` otherwise).
   */
  claims?: Record<string, unknown>;
}

/** Input of {@link TokenService.logout}. */
export interface LogoutInput {
  /** Claims of the verified access token being logged out (its `jti` and `exp` are revoked). */
  access?: Pick<JwtClaims, 'jti' | 'exp' | 'sub'>;
  /** The refresh token whose whole family is revoked. */
  refreshToken?: string;
}

/**
 * What {@link TokenService.inspectRefresh} tells about a live refresh token, without spending it.
 * Times are epoch ms.
 */
export interface RefreshTokenInfo {
  /** The subject of the token's session. */
  sub: string;
  /** Scopes of the session (the access tokens a refresh returns carry them). */
  scopes: string[];
  /** Extra claims of the session's access tokens (`client_id`, …), as given to `issue()`. */
  claims: Record<string, unknown>;
  /** Id of the token's family (its login session). */
  family: string;
  /** When the session started (the family's first token). */
  createdAt: number;
  /** When this refresh token expires. */
  expiresAt: number;
}

/** Input of {@link TokenService.oneTime}. */
export interface OneTimeTokenInput {
  sub: string;
  /** What the token is for (`email-verification`, `password-reset`…); checked on consume. */
  purpose: string;
  /** Lifetime in seconds. Default 900. */
  ttlSec?: number;
  /** Extra non-secret data returned on consume. */
  data?: Record<string, string | number | boolean>;
}

/** Result of {@link TokenService.consumeOneTime}. */
export interface ConsumedOneTimeToken {
  sub: string;
  purpose: string;
  data: Record<string, string | number | boolean>;
}

/**
 * Sessions: access tokens (JWS) with opaque, rotating refresh tokens grouped in families, with
 * reuse detection (OAuth 2.0 Security BCP), logout, logout-everywhere and one-time tokens.
 * Build one with `createTokenService(core)`.
 *
 * @example
 * ```ts
 * const pair = await kw.tokens.issue({ sub: 'user_1', scopes: ['read'] })
 * const next = await kw.tokens.refresh(pair.refresh_token)
 * const link = await kw.tokens.oneTime({ sub: 'user_1', purpose: 'password-reset', ttlSec: 900 })
 * const { sub } = await kw.tokens.consumeOneTime(link, 'password-reset')
 * ```
 */
export interface TokenService {
  /** Issues an access token and a new refresh-token family. */
  issue(input: IssueTokensInput): Promise<TokenPair>;
  /**
   * Spends a refresh token and returns a new pair. A spent token presented again within
   * `refreshReuseIntervalMs` returns the same successor pair; after it, the whole family is revoked
   * (`refresh_token_reused`), with every unexpired access token it issued. Unknown / expired, or
   * spent more than `reuseDetectionDepth` refreshes ago: `refresh_token_invalid`.
   */
  refresh(refreshToken: string): Promise<TokenPair>;
  /**
   * Looks a refresh token up without spending it (read-only: no write, no audit event). Resolves
   * its session's subject, scopes and expiry while it can be refreshed — the family's current
   * token, unexpired, its family neither revoked nor expired — and `undefined` for anything else
   * (unknown, malformed, expired, spent, revoked). A store failure rejects (`store_unavailable`…),
   * never reads as `undefined`.
   */
  inspectRefresh(refreshToken: string): Promise<RefreshTokenInfo | undefined>;
  /**
   * Revokes the access token's `jti` and the refresh token's family (when it belongs to the same
   * `sub`), on every instance. Unknown or already revoked refresh tokens are ignored.
   */
  logout(input: LogoutInput): Promise<void>;
  /** Revokes every token of `sub` issued before now, and all its refresh families. */
  logoutEverywhere(sub: string): Promise<void>;
  /** Creates a one-time token (e-mail verification, password reset links). */
  oneTime(input: OneTimeTokenInput): Promise<string>;
  /**
   * Consumes a one-time token atomically: of any number of racing callers, on any number of
   * instances, exactly one succeeds. Unknown, used or wrong-purpose tokens give `token_invalid`
   * (a wrong-purpose token is burnt); an expired one gives `token_expired`.
   */
  consumeOneTime(token: string, purpose: string): Promise<ConsumedOneTimeToken>;
}
