import { decodeProtectedHeader, EncryptJWT, errors, jwtDecrypt } from 'jose';
import { KeywardError } from '../errors.js';
import type { EncryptionKey } from '../keys/types.js';
import type { JwtClaims } from './types.js';

/**
 * Options of {@link encryptJwt}.
 *
 * @example
 * ```ts
 * const options: EncryptJwtOptions = { expiresInSec: 900 };
 * ```
 */
export interface EncryptJwtOptions {
  /** Sets `exp` to `iat + expiresInSec`. Without it the claims' own `exp` (if any) is kept. */
  expiresInSec?: number;
  /** Clock, epoch milliseconds. Default `Date.now`. */
  now?: () => number;
}

/**
 * Options of {@link decryptJwt}.
 *
 * @example
 * ```ts
 * const options: DecryptJwtOptions = { issuer: 'https://auth.example', clockToleranceSec: 30 };
 * ```
 */
export interface DecryptJwtOptions {
  now?: () => number;
  /** Default 60. */
  clockToleranceSec?: number;
  /** Default 16384. */
  maxTokenBytes?: number;
  issuer?: string | string[];
  audience?: string | string[];
  /** Require an `exp` claim. Default true; set false only for legacy tokens minted without one. */
  requireExp?: boolean;
}

const ENC_OPTIONS = { keyManagementAlgorithms: ['dir'], contentEncryptionAlgorithms: ['A256GCM'] };

function secretBytes(key: EncryptionKey): Uint8Array {
  return key.keyObject.export();
}

/**
 * Encrypts `claims` as a compact JWE (`dir` + `A256GCM`, `kid` in the protected header) with jose.
 * Sets `iat`, and `exp` when `expiresInSec` is given.
 *
 * @example
 * ```ts
 * const token = await encryptJwt(keys.encryptionKey(), { sub: 'user_1', email: 'a@b.c' }, { expiresInSec: 900 });
 * ```
 */
export async function encryptJwt(
  key: EncryptionKey,
  claims: Record<string, unknown>,
  options: EncryptJwtOptions = {},
): Promise<string> {
  const nowSec = Math.floor((options.now ?? Date.now)() / 1000);
  const jwt = new EncryptJWT(claims)
    .setProtectedHeader({ alg: 'dir', enc: 'A256GCM', kid: key.kid })
    .setIssuedAt(nowSec);
  if (options.expiresInSec !== undefined) jwt.setExpirationTime(nowSec + options.expiresInSec);
  try {
    return await jwt.encrypt(secretBytes(key));
  } catch (cause) {
    throw new KeywardError('token_claim_invalid', 'encryptJwt: claims or key rejected', {
      cause,
      details: { kid: key.kid },
    });
  }
}

function wrapJoseError(err: unknown): KeywardError {
  if (err instanceof errors.JWTExpired)
    return new KeywardError('token_expired', 'token expired', { cause: err });
  if (err instanceof errors.JWTClaimValidationFailed) {
    const code = err.claim === 'nbf' ? 'token_not_yet_valid' : 'token_claim_invalid';
    return new KeywardError(code, `claim "${err.claim}" check failed`, {
      cause: err,
      details: { claim: err.claim },
    });
  }
  if (err instanceof errors.JWEInvalid || err instanceof errors.JWTInvalid) {
    return new KeywardError('token_malformed', 'malformed JWE', { cause: err });
  }
  return new KeywardError('token_decrypt_failed', 'token decryption failed', { cause: err });
}

/**
 * Decrypts and checks a compact JWE made by {@link encryptJwt} (or by the reference system: `dir` +
 * `A256GCM`, key = sha256(secret)). `lookup` returns the candidate keys for the header's `kid`
 * (all decrypting keys when it has none); each is tried in order. Only `dir` + `A256GCM` is accepted.
 *
 * @throws KeywardError `token_decrypt_failed`, `token_malformed`, `token_expired`,
 *   `token_not_yet_valid`, `token_claim_invalid`, `token_too_large`, `key_revoked`.
 * @example
 * ```ts
 * const claims = await decryptJwt(cookie, (kid) => keyring.decryptionKeys(kid), { requireExp: true });
 * ```
 */
export async function decryptJwt(
  token: string,
  lookup: (kid: string | undefined) => EncryptionKey[],
  options: DecryptJwtOptions = {},
): Promise<JwtClaims> {
  if (typeof token !== 'string') throw new KeywardError('token_malformed', 'token is not a string');
  const maxTokenBytes = options.maxTokenBytes ?? 16_384;
  if (token.length > maxTokenBytes) {
    throw new KeywardError('token_too_large', 'token too large', { details: { limit: maxTokenBytes } });
  }
  let kid: string | undefined;
  try {
    const header = decodeProtectedHeader(token);
    kid = typeof header.kid === 'string' ? header.kid : undefined;
  } catch (cause) {
    throw new KeywardError('token_malformed', 'malformed JWE protected header', { cause });
  }
  const candidates = lookup(kid);
  const usable = candidates.filter((key) => key.state !== 'revoked' && key.state !== 'retired');
  if (usable.length === 0) {
    if (candidates.some((key) => key.state === 'revoked')) {
      throw new KeywardError('key_revoked', 'token encrypted with a revoked key', { details: { kid } });
    }
    throw new KeywardError('token_decrypt_failed', 'no decryption key for this token', { details: { kid } });
  }
  const verifyOptions = {
    ...ENC_OPTIONS,
    currentDate: new Date((options.now ?? Date.now)()),
    clockTolerance: options.clockToleranceSec ?? 60,
    requiredClaims: options.requireExp === false ? [] : ['exp'],
    ...(options.issuer === undefined ? {} : { issuer: options.issuer }),
    ...(options.audience === undefined ? {} : { audience: options.audience }),
  };
  let lastError: unknown;
  for (const key of usable) {
    try {
      const { payload } = await jwtDecrypt(token, secretBytes(key), verifyOptions);
      return payload as JwtClaims;
    } catch (err) {
      // A wrong key fails the GCM tag check; any other failure is about the token itself.
      if (!(err instanceof errors.JWEDecryptionFailed)) throw wrapJoseError(err);
      lastError = err;
    }
  }
  throw wrapJoseError(lastError);
}
