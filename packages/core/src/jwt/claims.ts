import { KeywardError } from '../errors.js';
import type { TypPolicy } from '../keys/types.js';
import type { JwtClaims } from './types.js';

/** Claim expectations, normalised once at construction so the hot path only compares. */
export interface ClaimExpectations {
  issuers: readonly string[] | undefined;
  audiences: readonly string[] | undefined;
  /**
   * Accepted `typ` values, normalised with {@link normalizeTyp}; a token without `typ` fails.
   * `undefined` = the key's own {@link TypPolicy}, if any.
   */
  typ: readonly string[] | undefined;
}

/** RFC 8725 §3.11 / RFC 9068 §2.1: `at+jwt` and `application/at+jwt` name the same media type. */
export function normalizeTyp(typ: string): string {
  const lower = typ.toLowerCase();
  return typ.includes('/') ? lower : `application/${lower}`;
}

/** Builds {@link ClaimExpectations} from option values. */
export function toExpectations(
  issuer: string | string[] | undefined,
  audience: string | string[] | undefined,
  typ: string | readonly string[] | undefined,
): ClaimExpectations {
  return {
    issuers: issuer === undefined ? undefined : typeof issuer === 'string' ? [issuer] : [...issuer],
    audiences: audience === undefined ? undefined : typeof audience === 'string' ? [audience] : [...audience],
    typ:
      typ === undefined ? undefined : typeof typ === 'string' ? [normalizeTyp(typ)] : typ.map(normalizeTyp),
  };
}

function claimInvalid(claim: string, message: string): KeywardError {
  return new KeywardError('token_claim_invalid', message, { details: { claim } });
}

/** Policy of the generated keys: access tokens only (RFC 9068 §2.1). */
export const AT_JWT_ONLY: TypPolicy = Object.freeze({
  accept: Object.freeze(['application/at+jwt']),
  allowMissing: false,
});

/** Policy of the legacy `JWT_SECRET` key: keyward's access tokens and the reference system's `JWT`. */
export const AT_JWT_OR_JWT: TypPolicy = Object.freeze({
  accept: Object.freeze(['application/at+jwt', 'application/jwt']),
  allowMissing: false,
});

/**
 * Policy of imported keys: also a token without `typ`. The app's previous library may not write one
 * (jose and jjwt do not by default; jsonwebtoken always writes `JWT`), and refusing it protects
 * nothing `JWT` does not already let through: every token keyward itself signs carries a `typ`.
 */
export const IMPORTED_TYP: TypPolicy = Object.freeze({
  accept: Object.freeze(['application/at+jwt', 'application/jwt']),
  allowMissing: true,
});

/**
 * A header's `typ` as {@link checkExpectations} compares it: normalised with {@link normalizeTyp},
 * `undefined` when absent, `''` (accepted by no policy) when not a string. Computed once per distinct
 * header (the verifier's header memo), not per token.
 */
export function headerTypOf(header: { typ?: unknown }): string | undefined {
  const { typ } = header;
  if (typ === undefined) return undefined;
  return typeof typ === 'string' ? normalizeTyp(typ) : '';
}

function typAccepted(typ: string | undefined, accept: readonly string[], allowMissing: boolean): boolean {
  return typ === undefined ? allowMissing : accept.includes(typ);
}

/**
 * Checks `iss`, `aud` and the `typ` header (RFC 7519 §4.1.1, §4.1.3; RFC 8725 §3.11), `headerTyp`
 * as {@link headerTypOf} gives it. An explicit `expect.typ` replaces the key's `keyTyp` policy.
 */
export function checkExpectations(
  headerTyp: string | undefined,
  payload: JwtClaims,
  expect: ClaimExpectations,
  keyTyp?: TypPolicy,
): void {
  const ok =
    expect.typ !== undefined
      ? typAccepted(headerTyp, expect.typ, false)
      : keyTyp === undefined || typAccepted(headerTyp, keyTyp.accept, keyTyp.allowMissing);
  if (!ok) throw claimInvalid('typ', 'unexpected "typ" header');
  if (expect.issuers !== undefined && !expect.issuers.includes(payload.iss as string)) {
    throw claimInvalid('iss', 'unexpected "iss" claim');
  }
  if (expect.audiences !== undefined) {
    const aud = payload.aud;
    const ok =
      typeof aud === 'string'
        ? expect.audiences.includes(aud)
        : Array.isArray(aud) && expect.audiences.some((accepted) => aud.includes(accepted));
    if (!ok) throw claimInvalid('aud', 'unexpected "aud" claim');
  }
}

/**
 * Checks `exp` (required), `nbf` and `iat` against `nowSec` with `toleranceSec` of skew
 * (RFC 7519 §4.1.4–4.1.6). Unlike jose, an `iat` in the future beyond tolerance is rejected:
 * such a token was minted by a clock keyward does not trust.
 */
export function checkTimes(payload: JwtClaims, nowSec: number, toleranceSec: number): void {
  const { exp, nbf, iat } = payload;
  if (typeof exp !== 'number') throw claimInvalid('exp', '"exp" claim missing or not a number');
  if (nbf !== undefined && typeof nbf !== 'number') throw claimInvalid('nbf', '"nbf" claim must be a number');
  if (iat !== undefined && typeof iat !== 'number') throw claimInvalid('iat', '"iat" claim must be a number');
  if (exp <= nowSec - toleranceSec) {
    throw new KeywardError('token_expired', 'token expired', { details: { exp } });
  }
  if (nbf !== undefined && nbf > nowSec + toleranceSec) {
    throw new KeywardError('token_not_yet_valid', 'token not valid yet ("nbf")', { details: { nbf } });
  }
  if (iat !== undefined && iat > nowSec + toleranceSec) {
    throw new KeywardError('token_not_yet_valid', 'token issued in the future ("iat")', { details: { iat } });
  }
}
