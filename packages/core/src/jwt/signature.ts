import {
  constants,
  createHmac,
  sign as cryptoSign,
  verify as cryptoVerify,
  type KeyObject,
  timingSafeEqual,
} from 'node:crypto';
import type { SigningAlgorithm } from '../keys/types.js';

const HMAC_HASH: Partial<Record<string, string>> = { HS256: 'sha256', HS384: 'sha384', HS512: 'sha512' };

/** True for the algorithms keyward signs and verifies with (RFC 7518 §3.1, RFC 8037, RFC 9864). */
export function isSigningAlgorithm(alg: unknown): alg is SigningAlgorithm {
  return (
    alg === 'EdDSA' ||
    alg === 'Ed25519' ||
    alg === 'ES256' ||
    alg === 'RS256' ||
    alg === 'PS256' ||
    alg === 'HS256' ||
    alg === 'HS384' ||
    alg === 'HS512'
  );
}

/**
 * Verifies a JWS signature over `signingInput` (ASCII `header.payload`) with `signature`, already
 * base64url-decoded. Synchronous, no allocation beyond what node:crypto needs. Returns false on
 * any crypto error (wrong key type, malformed signature) instead of throwing.
 */
export function verifySignature(
  alg: SigningAlgorithm,
  key: KeyObject,
  signingInput: string,
  signature: Buffer,
): boolean {
  try {
    const hash = HMAC_HASH[alg];
    if (hash === undefined) {
      // node:crypto documents only binary data for verify(); the input was checked to be ASCII.
      return verifyAsymmetric(alg, key, Buffer.from(signingInput, 'latin1'), signature);
    }
    const expected = createHmac(hash, key).update(signingInput).digest();
    // Constant-time compare: an early-exit compare leaks how many leading bytes matched.
    return expected.length === signature.length && timingSafeEqual(expected, signature);
  } catch {
    return false;
  }
}

function verifyAsymmetric(alg: SigningAlgorithm, key: KeyObject, data: Buffer, signature: Buffer): boolean {
  switch (alg) {
    case 'ES256':
      // JWS carries ECDSA signatures as raw r‖s (RFC 7518 §3.4), not DER.
      return (
        signature.length === 64 && cryptoVerify('sha256', data, { key, dsaEncoding: 'ieee-p1363' }, signature)
      );
    case 'EdDSA':
    case 'Ed25519':
      return signature.length === 64 && cryptoVerify(null, data, key, signature);
    case 'RS256':
      return cryptoVerify('sha256', data, key, signature);
    case 'PS256':
      // RFC 7518 §3.5: MGF1 with SHA-256 and a salt as long as the hash.
      return cryptoVerify(
        'sha256',
        data,
        { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 },
        signature,
      );
    default:
      return false;
  }
}

/** Signs `signingInput` and returns the base64url signature segment. Throws node:crypto's error on a wrong key. */
export function signSignature(alg: SigningAlgorithm, key: KeyObject, signingInput: string): string {
  switch (alg) {
    case 'HS256':
    case 'HS384':
    case 'HS512':
      return createHmac(HMAC_HASH[alg]!, key).update(signingInput).digest('base64url');
    case 'ES256':
      return cryptoSign('sha256', Buffer.from(signingInput), { key, dsaEncoding: 'ieee-p1363' }).toString(
        'base64url',
      );
    case 'EdDSA':
    case 'Ed25519':
      return cryptoSign(null, Buffer.from(signingInput), key).toString('base64url');
    case 'RS256':
      return cryptoSign('sha256', Buffer.from(signingInput), key).toString('base64url');
    case 'PS256':
      return cryptoSign('sha256', Buffer.from(signingInput), {
        key,
        padding: constants.RSA_PKCS1_PSS_PADDING,
        saltLength: 32,
      }).toString('base64url');
  }
}
