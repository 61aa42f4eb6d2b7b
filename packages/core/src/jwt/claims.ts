import { KeywardError } from '../errors.js';
import type { JwtClaims } from './types.js';

/** Claim expectations, normalised once at construction so the hot path only compares. */
export interface ClaimExpectations {
  issuers: readonly string[] | undefined;
  audiences: readonly string[] | undefined;
  /** Normalised with {@link normalizeTyp}. */
  typ: string | undefined;
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
  typ: string | undefined,
): ClaimExpectations {
  return {
    issuers: issuer === undefined ? undefined : typeof issuer === 'string' ? [issuer] : [...issuer],
    audiences: audience === undefined ? undefined : typeof audience === 'string' ? [audience] : [...audience],
    typ: typ === undefined ? undefined : normalizeTyp(typ),
  };
}

function claimInvalid(claim: string, message: string): KeywardError {
  return new KeywardError('token_claim_invalid', message, { details: { claim } });
}

/** Checks `iss`, `aud` and the `typ` header (RFC 7519 §4.1.1, §4.1.3; RFC 8725 §3.11). */
export function checkExpectations(headerTyp: unknown, payload: JwtClaims, expect: ClaimExpectations): void {
  if (expect.typ !== undefined && (typeof headerTyp !== 'string' || normalizeTyp(headerTyp) !== expect.typ)) {
    throw claimInvalid('typ', 'unexpected "typ" header');
  }
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
