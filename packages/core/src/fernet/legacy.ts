/**
 * Compatibility with the reference system's data: its Fernet key is derived from `JWT_SECRET`, and its
 * secrets store keeps each Fernet token wrapped in one more standard base64.
 */
import { createHash } from 'node:crypto';
import { KeywardError } from '../errors.js';
import { invalidToken } from './token.js';

const STANDARD_BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const TOKEN_CHARS = /^[A-Za-z0-9_-]+={0,2}$/;

/**
 * The Fernet key the reference system derives from its JWT secret:
 * url-safe base64 (with padding) of SHA-256 of the UTF-8 secret.
 *
 * @example
 * ```ts
 * const fernet = new Fernet(legacyFernetKey(process.env.JWT_SECRET!));
 * ```
 */
export function legacyFernetKey(jwtSecret: string): string {
  if (typeof jwtSecret !== 'string' || jwtSecret.length === 0) {
    throw new KeywardError('config_invalid', 'legacyFernetKey: `jwtSecret` must be a non-empty string', {
      details: { option: 'jwtSecret' },
    });
  }
  return `${createHash('sha256').update(jwtSecret, 'utf8').digest('base64url')}=`;
}

/**
 * Unwraps a value from the reference system's secrets store (standard base64 of a Fernet token) into
 * the Fernet token. Throws `fernet_token_invalid` when the value is not such a wrapping.
 *
 * @example
 * ```ts
 * const plaintext = fernet.decryptString(decodeLegacySecretValue(row.value));
 * ```
 */
export function decodeLegacySecretValue(stored: string): string {
  if (typeof stored !== 'string' || stored.length === 0 || !STANDARD_BASE64.test(stored)) {
    throw invalidToken('legacy wrapping is not base64');
  }
  const token = Buffer.from(stored, 'base64').toString('latin1');
  if (!TOKEN_CHARS.test(token)) throw invalidToken('legacy wrapping does not hold a Fernet token');
  return token;
}

/**
 * Wraps a Fernet token the way the reference system's secrets store keeps it (standard base64).
 *
 * @example
 * ```ts
 * row.value = encodeLegacySecretValue(fernet.encrypt(plaintext));
 * ```
 */
export function encodeLegacySecretValue(fernetToken: string): string {
  if (typeof fernetToken !== 'string' || !TOKEN_CHARS.test(fernetToken)) {
    throw invalidToken('not a Fernet token');
  }
  return Buffer.from(fernetToken, 'latin1').toString('base64');
}
