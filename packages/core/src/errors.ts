/**
 * Every error keyward throws is a {@link KeywardError} with a stable `code`.
 * Messages never contain a token, key, secret or credential-bearing URL.
 */

/** Stable error codes. Adding a code is a minor change; renaming one is breaking. */
export type KeywardErrorCode =
  // configuration
  | 'config_invalid'
  | 'invalid_argument'
  | 'master_key_invalid'
  | 'master_key_mismatch'
  // store
  | 'store_unavailable'
  | 'store_error'
  | 'store_conflict'
  | 'lock_not_acquired'
  | 'lock_lost'
  // keys
  | 'key_not_found'
  | 'key_revoked'
  | 'key_state_invalid'
  /**
   * An on-demand rotation was refused: the use already holds `maxRetiringKeys` retiring keys that still
   * verify. Wait until the oldest one retires (its `verifyUntil`), or revoke. Never for revocations.
   */
  | 'rotation_limit'
  | 'key_unseal_failed'
  /**
   * The store holds no keyring although this instance holds one (store data lost): a write was
   * refused so that no new keyring is created beside the one instances hold; sync re-publishes it.
   */
  | 'keyring_lost'
  /**
   * The store holds a keyring of another lineage (created separately) than the one this instance
   * holds: it is never adopted silently and never written over (see docs "Incidents").
   */
  | 'keyring_lineage_mismatch'
  | 'alg_unsupported'
  /**
   * A key import (`kw.keys.import`, `keyward keys import`) names a `kid` the keyring already holds
   * (in any state, retired and revoked included) or a legacy `JWT_SECRET` key's kid. Nothing is imported.
   */
  | 'key_exists'
  /**
   * Key import: the material is not a readable key: a malformed or encrypted PEM, more than one PEM
   * block, a JWK / JWKS that `node:crypto` does not accept, or an empty secret. The message never
   * holds the material.
   */
  | 'key_import_malformed'
  /**
   * Key import: a JWKS (public by nature) holds private or secret members (`d`, `p`, `q`, `dp`, `dq`,
   * `qi`, `oth`, or an `oct` key's `k`). Nothing is imported; import a private key as a single PEM / JWK.
   */
  | 'key_import_private'
  /**
   * Key import: the algorithm does not fit the key: EdDSA needs an Ed25519 key, ES256 a P-256 key,
   * RS256 / PS256 an RSA key, HS256/384/512 a secret; or the JWK's own `alg` / `use` says otherwise.
   */
  | 'key_alg_mismatch'
  /**
   * Key import: the key is too weak for its algorithm: an RSA modulus under 2048 bits, or an HMAC
   * secret shorter than the hash output (32 bytes for HS256, 48 for HS384, 64 for HS512; RFC 7518 §3.2).
   */
  | 'key_too_weak'
  /** Key import: a public-only key was asked to sign (`state: 'active'`); it can only be imported verify-only. */
  | 'key_public_only'
  /**
   * Key import: `defaultForKidless` was asked while another key that still verifies already verifies
   * tokens without a `kid` (at most one at a time), or for a JWKS of several keys.
   */
  | 'kidless_default_exists'
  /**
   * A stored record cannot be decrypted because its data key is not usable here (destroyed after a
   * revocation, retired, or unknown to this keyring). A server-side problem: HTTP 503, never a 401.
   */
  | 'data_key_unavailable'
  // tokens
  | 'token_malformed'
  | 'token_too_large'
  | 'token_invalid'
  | 'token_signature_invalid'
  | 'token_expired'
  | 'token_not_yet_valid'
  | 'token_revoked'
  | 'token_claim_invalid'
  | 'token_decrypt_failed'
  /**
   * The token names a trusted external issuer (`trustedIssuers`) whose keys cannot be had: its
   * JWKS (or discovery document) is unreachable, refused or garbage, and no keys of it are cached.
   * A server-side problem: HTTP 503, never a 401. Cached keys keep serving while the IdP is down.
   */
  | 'issuer_unavailable'
  // fernet
  | 'fernet_key_invalid'
  | 'fernet_token_invalid'
  | 'fernet_token_expired'
  // api keys, refresh, secrets
  | 'api_key_malformed'
  | 'api_key_invalid'
  | 'api_key_expired'
  | 'api_key_revoked'
  | 'refresh_token_invalid'
  | 'refresh_token_reused'
  | 'secret_not_found'
  /**
   * A stored secret (or IdP token record) decrypts to a plaintext bound to another owner, name or
   * store key: the record was copied or moved in the store. Its plaintext is never returned. A
   * server-side integrity problem: HTTP 500 (with this code), never a 401.
   */
  | 'secret_context_mismatch'
  | 'idp_refresh_failed'
  // audit
  | 'audit_event_invalid'
  | 'audit_file_invalid'
  // http layer
  | 'missing_credentials'
  | 'invalid_credentials'
  | 'invalid_request'
  /** A request body over the route's size limit (HTTP 413). */
  | 'body_too_large'
  | 'insufficient_scope'
  /**
   * Cookie mode: a state-changing request (POST, PUT, PATCH, DELETE) authenticated by the cookie
   * came from another site (no `Sec-Fetch-Site: same-origin` / `none`, and no `Origin` in the
   * allow-list). HTTP 403, no `WWW-Authenticate` challenge: the credential is fine, the request is
   * a possible cross-site request forgery.
   */
  | 'csrf_rejected'
  /**
   * Too many failed attempts (login per username or per client address, refresh per address) in
   * the limiter's sliding window (`rateLimit` option). HTTP 429 with `Retry-After`;
   * `details.retryAfterSec` says how long to wait. Not a verdict on the credential.
   */
  | 'too_many_requests'
  /**
   * The app's `UserDirectory.verify` returned `roles` or `claims` keyward cannot put in a token: a
   * registered or reserved claim name (`iss`, `sub`, `aud`, `exp`, `nbf`, `iat`, `jti`, `scope`,
   * `client_id`, `roles` among the claims, any `kw_*`), roles that are not non-empty strings, or
   * claims over the size / depth limits. A server-side problem of the app: `POST /auth/login`
   * answers 500 `internal_error` (never a credential error); the message names the fields only.
   */
  | 'user_claims_invalid'
  | 'not_found'
  | 'internal_error';

/** Options for {@link KeywardError}. */
export interface KeywardErrorOptions {
  /** The underlying error (jose, ioredis, node:crypto…). Never shown to HTTP clients. */
  cause?: unknown;
  /** Extra, non-secret details for logs (a `kid`, an option name, a count). */
  details?: Record<string, string | number | boolean | undefined>;
}

/**
 * The one error class of keyward.
 *
 * @example
 * ```ts
 * try { kw.jwt.verify(token) } catch (err) {
 *   if (err instanceof KeywardError && err.code === 'token_expired') refresh()
 * }
 * ```
 */
export class KeywardError extends Error {
  /** Stable, machine-readable code. */
  readonly code: KeywardErrorCode;
  /** Non-secret details for logs. */
  readonly details: Record<string, string | number | boolean | undefined> | undefined;

  constructor(code: KeywardErrorCode, message: string, options: KeywardErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'KeywardError';
    this.code = code;
    this.details = options.details;
  }
}

/** True when `err` is a {@link KeywardError}, optionally with one of the given codes. */
export function isKeywardError(err: unknown, ...codes: KeywardErrorCode[]): err is KeywardError {
  return err instanceof KeywardError && (codes.length === 0 || codes.includes(err.code));
}
