/** Input of {@link ApiKeyService.create}. */
export interface CreateApiKeyInput {
  /** The subject that owns the key. */
  owner: string;
  name: string;
  scopes?: readonly string[];
  /** Lifetime in seconds, at most ten years (`invalid_argument` otherwise); absent = no expiry. */
  expiresInSec?: number;
}

/** An API key's metadata, never its secret. Times are epoch ms. */
export interface ApiKeyInfo {
  id: string;
  /** The public part shown in lists (`kw_<id>`), so users recognise their keys. */
  prefix: string;
  owner: string;
  name: string;
  scopes: string[];
  createdAt: number;
  expiresAt: number | null;
  lastUsedAt: number | null;
  revokedAt: number | null;
}

/** Result of {@link ApiKeyService.create}: the metadata plus the full key, shown only this once. */
export interface CreatedApiKey extends ApiKeyInfo {
  key: string;
}

/** Result of {@link ApiKeyService.verify}. */
export interface VerifiedApiKey {
  id: string;
  owner: string;
  scopes: string[];
  expiresAt: number | null;
}

/**
 * API keys `kw_<id>_<secret><checksum>`, stored only as HMAC-SHA256 under a data-key pepper.
 *
 * @example
 * ```ts
 * const { key } = await apiKeys.create({ owner: 'user_1', name: 'deploy bot', scopes: ['deploy'] })
 * const { owner, scopes } = await apiKeys.verify(key)
 * ```
 */
export interface ApiKeyService {
  create(input: CreateApiKeyInput): Promise<CreatedApiKey>;
  /**
   * Checks format and checksum (before any lookup), then the stored HMAC, expiry and revocation.
   * Rejects with a `KeywardError`: `api_key_malformed` (shape or checksum), `api_key_invalid`
   * (unknown id or wrong secret, indistinguishable), `api_key_expired`, `api_key_revoked`.
   */
  verify(key: string): Promise<VerifiedApiKey>;
  /** Keys of an owner, without secrets. */
  list(owner: string): Promise<ApiKeyInfo[]>;
  /** Revokes a key (only the owner's, when `owner` is given). Resolves false when not found. */
  revoke(id: string, options?: { owner?: string }): Promise<boolean>;
}
