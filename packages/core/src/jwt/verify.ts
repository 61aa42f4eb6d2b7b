import { KeywardError } from '../errors.js';
import type { VerificationKey } from '../keys/types.js';
import { decodeBase64UrlStrict } from './base64url.js';
import {
  type ClaimExpectations,
  checkExpectations,
  checkTimes,
  headerTypOf,
  toExpectations,
} from './claims.js';
import { decodeJsonObject, HeaderMemo, jsonFaultError } from './header.js';
import { verifySignature } from './signature.js';
import { VerifiedTokenCache } from './token-cache.js';
import type { JwtClaims, JwtVerifierOptions, JwtVerifyOverrides, VerifiedJwt } from './types.js';
import { VerifiedToken } from './verified.js';
import { validateVerifierOptions } from './verify-options.js';

/**
 * A synchronous access-token verifier. See {@link createJwtVerifier}.
 *
 * @example
 * ```ts
 * const { payload } = verifier.verify(bearerToken);
 * ```
 */
export interface JwtVerifier {
  /** Verifies a compact JWS access token; throws a {@link KeywardError} on any failure. */
  verify(token: string, overrides?: JwtVerifyOverrides): VerifiedJwt;
  /** Empties the verified-token cache. */
  clearCache(): void;
  /** Drops every cached token signed by `kid` (e.g. when its key is revoked or removed). */
  forgetKid(kid: string): void;
}

const malformed = (message: string) => new KeywardError('token_malformed', message);

/**
 * Rejects tokens of keys that may no longer verify. A key past its `verifyUntil`, or retired, is
 * treated like an unknown key (`token_invalid`): it is the normal end of a rotation, not a
 * compromise, so it must not raise the `key_revoked` alarm.
 */
function checkKey(key: VerificationKey, nowMs: number): void {
  if (key.state === 'revoked') {
    throw new KeywardError('key_revoked', 'token signed by a revoked key', { details: { kid: key.kid } });
  }
  if (key.state === 'retired' || (key.verifyUntil !== undefined && nowMs > key.verifyUntil)) {
    throw new KeywardError('token_invalid', 'signing key no longer verifies tokens', {
      details: { kid: key.kid, reason: 'key_expired' },
    });
  }
}

/**
 * Creates the access-token verifier of the hot path: synchronous, no I/O, `node:crypto` only.
 * Checks size, encoding, header policy (no `none`, no `crit`, no `b64: false`, no embedded keys,
 * `alg` must equal the key record's; a token without `kid` is checked against `keys.kidlessKey()`
 * alone, and refused with `kid_missing` when there is none), the signature, key state, `exp`
 * (required) / `nbf` / `iat`,
 * `iss` / `aud` / `typ` (the `typ` option, else the key's own {@link VerificationKey.typ} policy),
 * and the revocation view. A header or payload with a duplicate member name or nested deeper than
 * 32 levels is `token_malformed`. Verified tokens are cached until `exp`; every
 * cache hit re-checks the key state, the revocation view and `exp`.
 *
 * @throws KeywardError `config_invalid` when an option is out of range.
 * @example
 * ```ts
 * const verifier = createJwtVerifier({ keys: keyring, issuer: 'https://auth.example', typ: 'at+jwt' });
 * try {
 *   const { payload } = verifier.verify(token);
 * } catch (err) {
 *   if (isKeywardError(err, 'token_expired')) return refresh();
 *   throw err;
 * }
 * ```
 */
export function createJwtVerifier(options: JwtVerifierOptions): JwtVerifier {
  const config = validateVerifierOptions(options);
  const { keys, revocations, now, toleranceSec, maxTokenBytes } = config;
  const defaults: ClaimExpectations = toExpectations(options.issuer, options.audience, options.typ);
  const headers = new HeaderMemo();
  const cache = config.cacheMax === 0 ? undefined : new VerifiedTokenCache<VerifiedJwt>(config.cacheMax);

  function expectationsFor(overrides: JwtVerifyOverrides): ClaimExpectations {
    return toExpectations(
      overrides.issuer ?? options.issuer,
      overrides.audience ?? options.audience,
      overrides.typ ?? options.typ,
    );
  }

  function kidlessKey(): VerificationKey {
    const key = keys.kidlessKey?.();
    if (key === undefined)
      throw new KeywardError('token_invalid', 'header "kid" missing', { details: { reason: 'kid_missing' } });
    return key;
  }

  function checkRevocation(payload: JwtClaims): void {
    if (revocations !== undefined && revocations.check(payload) === 'token_revoked') {
      throw new KeywardError('token_revoked', 'token revoked');
    }
  }

  function recheck(
    hit: VerifiedJwt,
    token: string,
    nowMs: number,
    overrides?: JwtVerifyOverrides,
  ): VerifiedJwt {
    let key: VerificationKey | undefined;
    try {
      key = keys.verificationKey(hit.kid);
      if (key === undefined || key.alg !== hit.header.alg) {
        throw new KeywardError('token_invalid', 'unknown "kid"', { details: { reason: 'kid_unknown' } });
      }
      checkKey(key, nowMs);
      checkTimes(hit.payload, Math.floor(nowMs / 1000), toleranceSec);
      checkRevocation(hit.payload);
    } catch (err) {
      cache!.delete(token);
      throw err;
    }
    if (overrides !== undefined)
      checkExpectations(headerTypOf(hit.header), hit.payload, expectationsFor(overrides), key?.typ);
    return hit;
  }

  function verify(token: string, overrides?: JwtVerifyOverrides): VerifiedJwt {
    if (typeof token !== 'string') throw malformed('token is not a string');
    if (token.length > maxTokenBytes) {
      throw new KeywardError('token_too_large', 'token too large', { details: { limit: maxTokenBytes } });
    }
    const nowMs = now();
    if (cache !== undefined) {
      const hit = cache.get(token);
      if (hit !== undefined) return recheck(hit, token, nowMs, overrides);
    }

    const dot1 = token.indexOf('.');
    const dot2 = dot1 === -1 ? -1 : token.indexOf('.', dot1 + 1);
    if (dot1 <= 0 || dot2 === -1 || dot2 === token.length - 1 || token.indexOf('.', dot2 + 1) !== -1) {
      throw malformed('token is not a compact JWS (three non-empty segments)');
    }
    const parsed = headers.get(token, dot1);
    const { header, alg } = parsed;
    // Only a token without `kid` looks for the default key for kid-less tokens.
    const key = parsed.kid !== undefined ? keys.verificationKey(parsed.kid) : kidlessKey();
    if (key === undefined) {
      throw new KeywardError('token_invalid', 'unknown "kid"', { details: { reason: 'kid_unknown' } });
    }
    const kid = key.kid;
    // RFC 8725 §3.1: the algorithm comes from the key record; the header must merely agree.
    if (key.alg !== alg) {
      throw new KeywardError('token_invalid', '"alg" does not match the key', {
        details: { reason: 'alg_mismatch' },
      });
    }
    checkKey(key, nowMs);
    const signature = decodeBase64UrlStrict(token.slice(dot2 + 1));
    const bytes = decodeBase64UrlStrict(token.slice(dot1 + 1, dot2));
    if (signature === undefined || bytes === undefined) throw malformed('segment is not unpadded base64url');
    if (!verifySignature(alg, key.keyObject, token.slice(0, dot2), signature)) {
      throw new KeywardError('token_signature_invalid', 'signature verification failed', {
        details: { kid },
      });
    }

    const payload = decodeJsonObject(bytes);
    if (typeof payload === 'string') throw jsonFaultError('payload', payload);
    const claims = payload as JwtClaims;
    checkExpectations(
      parsed.typ,
      claims,
      overrides === undefined ? defaults : expectationsFor(overrides),
      key.typ,
    );
    checkTimes(claims, Math.floor(nowMs / 1000), toleranceSec);
    checkRevocation(claims);

    const result = new VerifiedToken(Object.freeze(claims), header, kid);
    // Only results checked against the default expectations are shared through the cache.
    if (cache !== undefined && overrides === undefined) cache.set(token, result);
    return result;
  }

  return {
    verify,
    clearCache() {
      cache?.clear();
      headers.clear();
    },
    forgetKid(kid: string) {
      if (cache === undefined) return;
      cache.deleteWhere((entry) => entry.kid === kid);
    },
  };
}
