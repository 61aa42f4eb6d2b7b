import { decodeJwt, decodeProtectedHeader, errors, importJWK, type JWK, jwtVerify } from 'jose';
import { KeywardError, type KeywardErrorCode } from '../errors.js';
import type { JwtClaims, JwtHeader, VerifiedJwt } from '../jwt/types.js';
import { checkIssuerUrl, JwksClient } from './jwks-client.js';

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
 * const auth0: TrustedIssuer = { issuer: 'https://tenant.eu.auth0.com/', discovery: true, audience: 'https://api.example.com' }
 * ```
 */
export interface TrustedIssuer {
  /** Exact `iss` value of its tokens, e.g. `https://sso.example.com/realms/main`. */
  issuer: string;
  /** Its JWKS endpoint, e.g. `…/protocol/openid-connect/certs` for Keycloak. Either this or `discovery`. */
  jwksUri?: string;
  /**
   * Find the JWKS through OpenID Connect discovery: `<issuer>/.well-known/openid-configuration`,
   * then its `jwks_uri` (the document's `issuer` must equal `issuer`). Either this or `jwksUri`.
   */
  discovery?: boolean;
  /** Accept `http:` URLs for this issuer (local development, tests). Default false: `https:` only. */
  allowInsecure?: boolean;
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
  /**
   * Least time between two JWKS fetches per issuer (an unknown kid refetches at most this often).
   * Default 1 s.
   */
  cooldownMs?: number;
  /** Largest JWKS / discovery response accepted, in bytes, checked while it streams. Default 1 MiB. */
  maxResponseBytes?: number;
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
  /**
   * Verifies signature, issuer, audience and times. Throws a `KeywardError` with a stable code:
   * a token error (HTTP 401) for a bad token — an issuer that is not trusted has
   * `details.reason === 'issuer_untrusted'` — and `issuer_unavailable` (HTTP 503) when the
   * issuer's keys cannot be fetched and none are cached.
   */
  verify(token: string): Promise<ExternalVerifiedJwt>;
  /** The trusted issuers (`iss` values). */
  readonly issuers: readonly string[];
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

/** A token error (401), not `alg_unsupported`: the caller's token is bad, not keyward's configuration. */
function algNotAllowed(cause?: unknown): KeywardError {
  return new KeywardError('token_invalid', 'token algorithm is not allowed for its issuer', {
    ...(cause === undefined ? {} : { cause }),
    details: { reason: 'alg_not_allowed' },
  });
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
  if (err instanceof errors.JOSEAlgNotAllowed) return algNotAllowed(err);
  return fail('token_invalid', 'token could not be verified', err);
}

/**
 * Creates a verifier for tokens of trusted external issuers (the reference system trusts Keycloak).
 * The issuer is picked by the token's unverified `iss`, then everything is checked against that
 * issuer's JWKS. Each issuer gets a {@link JwksClient} (`Cache-Control: max-age` caching,
 * single-flight refetch, refetch on an unknown `kid` at most once per cooldown (1 s), negative
 * cache, a size limit checked while the response streams, `https:` only unless `allowInsecure`,
 * stale keys while the IdP is down). jose checks the signature: external tokens are not keyward's
 * hot path.
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
    if (
      typeof config !== 'object' ||
      config === null ||
      typeof config.issuer !== 'string' ||
      config.issuer === ''
    ) {
      throw new KeywardError('config_invalid', 'createIssuerVerifier: each issuer needs an `issuer` string');
    }
    const allowInsecure = config.allowInsecure === true;
    if ((config.jwksUri === undefined) === (config.discovery !== true)) {
      throw new KeywardError(
        'config_invalid',
        `createIssuerVerifier: ${config.issuer} needs exactly one of jwksUri and discovery: true`,
      );
    }
    if (trusted.has(config.issuer)) {
      throw new KeywardError('config_invalid', `createIssuerVerifier: ${config.issuer} is listed twice`);
    }
    if (config.jwksUri !== undefined) {
      checkIssuerUrl(config.jwksUri, `createIssuerVerifier: jwksUri of ${config.issuer}`, allowInsecure);
    } else {
      checkIssuerUrl(
        config.issuer,
        `createIssuerVerifier: issuer ${config.issuer} (discovery)`,
        allowInsecure,
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
      ...(config.jwksUri !== undefined
        ? { jwksUri: config.jwksUri }
        : {
            discoveryUrl: `${config.issuer.replace(/\/+$/, '')}/.well-known/openid-configuration`,
            issuer: config.issuer,
          }),
      allowInsecure,
      now,
      ...(options.cooldownMs !== undefined ? { cooldownMs: options.cooldownMs } : {}),
      ...(options.maxResponseBytes !== undefined ? { maxResponseBytes: options.maxResponseBytes } : {}),
      ...(options.fetchTimeoutMs !== undefined ? { fetchTimeoutMs: options.fetchTimeoutMs } : {}),
    });
    trusted.set(config.issuer, { config: { ...config, algorithms }, jwks, keys: new Map() });
  }

  return {
    issuers: Object.freeze([...trusted.keys()]),
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
      if (!entry) {
        throw new KeywardError('token_claim_invalid', 'token issuer is not trusted', {
          details: { reason: 'issuer_untrusted' },
        });
      }
      if (typeof header.kid !== 'string' || header.kid === '')
        throw fail('token_malformed', 'token header has no kid');
      if (!entry.config.algorithms?.includes(header.alg)) throw algNotAllowed();
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
