import { decodeJwt, decodeProtectedHeader, errors, importJWK, type JWK, jwtVerify } from 'jose';
import { KeywardError, type KeywardErrorCode } from '../errors.js';
import type { JwtClaims, JwtHeader, VerifiedJwt } from '../jwt/types.js';
import { JwksClient } from './jwks-client.js';

/**
 * One external identity provider whose access tokens are accepted (Keycloak, Auth0, Entra ID…).
 *
 * @example
 * ```ts
 * const keycloak: TrustedIssuer = {
 *   issuer: 'https://sso.example.com/realms/main',
 *   jwksUri: 'https://sso.example.com/realms/main/protocol/openid-connect/certs',
 *   audience: 'account',
 *   algorithms: ['RS256'],
 * }
 * ```
 */
export interface TrustedIssuer {
  /** Exact `iss` value of its tokens, e.g. `https://sso.example.com/realms/main`. */
  issuer: string;
  /** Its JWKS endpoint, e.g. `…/protocol/openid-connect/certs` for Keycloak. */
  jwksUri: string;
  /** Expected `aud` (any one matches). Absent: not checked. */
  audience?: string | string[];
  /** Allowed `alg`s. Default: the asymmetric JWS algorithms; HMAC never. */
  algorithms?: string[];
}

/**
 * Options of {@link createIssuerVerifier}.
 *
 * @example
 * ```ts
 * const options: IssuerVerifierOptions = { issuers: [keycloak], cooldownMs: 60_000, fetchTimeoutMs: 3000 }
 * ```
 */
export interface IssuerVerifierOptions {
  issuers: TrustedIssuer[];
  /** Least time between two JWKS fetches per issuer. Default 30 s. */
  cooldownMs?: number;
  /** JWKS fetch timeout. Default 5 s. */
  fetchTimeoutMs?: number;
  /** Clock skew tolerated on `exp` / `nbf`, in seconds. Default 60. */
  clockToleranceSec?: number;
  /** Clock (epoch ms), for tests. */
  now?: () => number;
}

/**
 * A verified external token, with the issuer that vouched for it.
 *
 * @example
 * ```ts
 * const { issuer, payload }: ExternalVerifiedJwt = await external.verify(bearer)
 * ```
 */
export interface ExternalVerifiedJwt extends VerifiedJwt {
  readonly issuer: string;
}

/**
 * Verifies access tokens of trusted external issuers. Build one with {@link createIssuerVerifier}.
 *
 * @example
 * ```ts
 * const verifier: IssuerVerifier = createIssuerVerifier({ issuers: [keycloak] })
 * ```
 */
export interface IssuerVerifier {
  /** Verifies signature, issuer, audience and times. Throws a `KeywardError` with a stable code. */
  verify(token: string): Promise<ExternalVerifiedJwt>;
}

const ASYMMETRIC = [
  'RS256',
  'RS384',
  'RS512',
  'PS256',
  'PS384',
  'PS512',
  'ES256',
  'ES384',
  'ES512',
  'EdDSA',
  'Ed25519',
];
const MAX_TOKEN_CHARS = 16 * 1024;

function fail(code: KeywardErrorCode, message: string, cause?: unknown): KeywardError {
  return new KeywardError(code, message, cause === undefined ? {} : { cause });
}

function mapJoseError(err: unknown): KeywardError {
  if (err instanceof KeywardError) return err;
  if (err instanceof errors.JWTExpired) return fail('token_expired', 'token has expired', err);
  if (err instanceof errors.JWTClaimValidationFailed) {
    return err.claim === 'nbf'
      ? fail('token_not_yet_valid', 'token is not valid yet', err)
      : fail('token_claim_invalid', `token claim ${err.claim} is invalid`, err);
  }
  if (err instanceof errors.JWSSignatureVerificationFailed)
    return fail('token_signature_invalid', 'token signature is invalid', err);
  if (err instanceof errors.JOSEAlgNotAllowed)
    return fail('alg_unsupported', 'token algorithm is not allowed', err);
  return fail('token_invalid', 'token could not be verified', err);
}

/**
 * Creates a verifier for tokens of trusted external issuers (the reference system trusts Keycloak).
 * The issuer is picked by the token's unverified `iss`, then everything is checked against that
 * issuer's JWKS. Each issuer gets a {@link JwksClient} (max-age caching, refetch on unknown `kid`
 * at most once per cooldown, negative cache, stale keys while the IdP is down). jose checks the
 * signature: external tokens are not keyward's hot path.
 *
 * @example
 * ```ts
 * const external = createIssuerVerifier({
 *   issuers: [{
 *     issuer: 'https://sso.example.com/realms/main',
 *     jwksUri: 'https://sso.example.com/realms/main/protocol/openid-connect/certs',
 *     audience: 'account',
 *   }],
 * })
 * const { payload, issuer } = await external.verify(bearer)
 * ```
 */
export function createIssuerVerifier(options: IssuerVerifierOptions): IssuerVerifier {
  if (!Array.isArray(options?.issuers) || options.issuers.length === 0) {
    throw new KeywardError('config_invalid', 'createIssuerVerifier: issuers must be a non-empty array');
  }
  const now = options.now ?? Date.now;
  const clockTolerance = options.clockToleranceSec ?? 60;
  const trusted = new Map<
    string,
    { config: TrustedIssuer; jwks: JwksClient; keys: Map<string, Promise<unknown>> }
  >();
  for (const config of options.issuers) {
    if (typeof config.issuer !== 'string' || config.issuer === '') {
      throw new KeywardError('config_invalid', 'createIssuerVerifier: each issuer needs an `issuer` string');
    }
    let uri: URL;
    try {
      uri = new URL(config.jwksUri);
    } catch {
      throw new KeywardError(
        'config_invalid',
        `createIssuerVerifier: jwksUri of ${config.issuer} is not a URL`,
      );
    }
    if (uri.protocol !== 'https:' && uri.protocol !== 'http:') {
      throw new KeywardError(
        'config_invalid',
        `createIssuerVerifier: jwksUri of ${config.issuer} must be http(s)`,
      );
    }
    const algorithms = config.algorithms ?? ASYMMETRIC;
    if (algorithms.some((alg) => alg.startsWith('HS') || alg === 'none')) {
      throw new KeywardError(
        'config_invalid',
        'createIssuerVerifier: algorithms may not include HS* or none',
      );
    }
    const jwks = new JwksClient({
      jwksUri: config.jwksUri,
      now,
      ...(options.cooldownMs !== undefined ? { cooldownMs: options.cooldownMs } : {}),
      ...(options.fetchTimeoutMs !== undefined ? { fetchTimeoutMs: options.fetchTimeoutMs } : {}),
    });
    trusted.set(config.issuer, { config: { ...config, algorithms }, jwks, keys: new Map() });
  }

  return {
    async verify(token) {
      if (typeof token !== 'string' || token.length === 0)
        throw fail('token_malformed', 'token is not a JWS');
      if (token.length > MAX_TOKEN_CHARS) throw fail('token_too_large', 'token is too large');
      let header: JwtHeader;
      let iss: unknown;
      try {
        header = decodeProtectedHeader(token) as JwtHeader;
        iss = decodeJwt(token).iss;
      } catch (err) {
        throw fail('token_malformed', 'token is not a JWS', err);
      }
      const entry = typeof iss === 'string' ? trusted.get(iss) : undefined;
      if (!entry) throw fail('token_claim_invalid', 'token issuer is not trusted');
      if (typeof header.kid !== 'string' || header.kid === '')
        throw fail('token_malformed', 'token header has no kid');
      if (!entry.config.algorithms?.includes(header.alg))
        throw fail('alg_unsupported', 'token algorithm is not allowed');
      const jwk = await entry.jwks.key(header.kid);
      if (!jwk) throw fail('token_invalid', 'no key of the issuer matches the token kid');
      if (jwk.alg !== undefined && jwk.alg !== header.alg)
        throw fail('token_invalid', 'token alg does not match its key');
      try {
        const key = await importKey(entry.keys, jwk, header.alg);
        const { payload } = await jwtVerify(token, key as Parameters<typeof jwtVerify>[1], {
          issuer: entry.config.issuer,
          ...(entry.config.audience !== undefined ? { audience: entry.config.audience } : {}),
          algorithms: entry.config.algorithms as string[],
          requiredClaims: ['exp'],
          clockTolerance,
          currentDate: new Date(now()),
        });
        return { payload: payload as JwtClaims, header, kid: header.kid, issuer: entry.config.issuer };
      } catch (err) {
        throw mapJoseError(err);
      }
    },
  };
}

/** Imports (once) a JWK for an algorithm; keyed by the JWK itself so a replaced key is re-imported. */
function importKey(cache: Map<string, Promise<unknown>>, jwk: JWK, alg: string): Promise<unknown> {
  const id = `${alg}:${JSON.stringify(jwk)}`;
  let key = cache.get(id);
  if (!key) {
    if (cache.size > 256) cache.clear();
    key = importJWK(jwk, alg);
    key.catch(() => cache.delete(id));
    cache.set(id, key);
  }
  return key;
}
