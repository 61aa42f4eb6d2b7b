import type { KeyLookup } from '../keys/types.js';

/**
 * The claims of a verified access token (RFC 7519 §4.1, RFC 9068). `exp` is always present:
 * keyward rejects tokens without it.
 *
 * @example
 * ```ts
 * const { payload }: { payload: JwtClaims } = verifier.verify(token);
 * if (payload.scope?.split(' ').includes('admin')) allow();
 * ```
 */
export interface JwtClaims {
  sub?: string;
  iss?: string;
  aud?: string | string[];
  /** Expiry, seconds since the epoch. */
  exp: number;
  iat?: number;
  nbf?: number;
  jti?: string;
  /** Space-separated scopes (RFC 8693 §4.2). */
  scope?: string;
  [claim: string]: unknown;
}

/**
 * The protected header of a verified JWS. `kid` is always present.
 *
 * @example
 * ```ts
 * const { header }: { header: JwtHeader } = verifier.verify(token);
 * log.info({ kid: header.kid, alg: header.alg });
 * ```
 */
export interface JwtHeader {
  alg: string;
  kid: string;
  typ?: string;
  [parameter: string]: unknown;
}

/**
 * The result of {@link JwtVerifier.verify}. Frozen (shallowly) because a cached result is shared
 * between calls: copy before mutating.
 *
 * @example
 * ```ts
 * const { payload, kid } = verifier.verify(token);
 * ```
 */
export interface VerifiedJwt {
  readonly payload: JwtClaims;
  readonly header: JwtHeader;
  readonly kid: string;
}

/**
 * An in-memory view of revocations (jti deny list, per-subject not-before) consulted on every
 * verify, cached or not. Must be synchronous and do no I/O.
 *
 * @example
 * ```ts
 * const revocations: RevocationView = {
 *   check: ({ jti }) => (jti !== undefined && denied.has(jti) ? 'token_revoked' : undefined),
 * };
 * ```
 */
export interface RevocationView {
  check(claims: { jti?: string; sub?: string; iat?: number }): 'token_revoked' | undefined;
}

/**
 * Per-call claim expectations; each one replaces the verifier's option of the same name.
 *
 * @example
 * ```ts
 * verifier.verify(token, { audience: 'https://billing.example' });
 * ```
 */
export interface JwtVerifyOverrides {
  issuer?: string | string[];
  audience?: string | string[];
  /** Accepted `typ` header(s); replaces the option and the key's own `typ` policy for this call. */
  typ?: string | readonly string[];
}

/**
 * Options of {@link createJwtVerifier}.
 *
 * @example
 * ```ts
 * const options: JwtVerifierOptions = { keys, issuer: 'https://auth.example', typ: 'at+jwt' };
 * ```
 */
export interface JwtVerifierOptions {
  /** In-memory keyring view; never does I/O. */
  keys: KeyLookup;
  /** Checked on every verify, including cache hits. */
  revocations?: RevocationView;
  /** Accepted `iss` value(s). */
  issuer?: string | string[];
  /** Accepted `aud` value(s); the token's `aud` must contain at least one. */
  audience?: string | string[];
  /**
   * Accepted `typ` header(s), compared case-insensitively, `application/` prefix optional (RFC 8725
   * §3.11); a token without `typ` fails. Without it, each key's own `typ` policy applies
   * (`VerificationKey.typ`; keyward's keyring sets one for every key), and keys without one are
   * not checked.
   */
  typ?: string | readonly string[];
  /** Allowed clock skew for `exp`, `nbf` and `iat`, in seconds. Default 60, at most 600. */
  clockToleranceSec?: number;
  /** Longest accepted token, in bytes. Default 16384. */
  maxTokenBytes?: number;
  /** Clock, epoch milliseconds. Default `Date.now`. */
  now?: () => number;
  /** Verified-token cache: `false` to disable, or its size. Default `{ max: 10_000 }`. */
  cache?: false | { max?: number };
}
