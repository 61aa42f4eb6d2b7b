import type { KeywardCore } from '../core.js';
import { decodeLegacySecretValue } from '../fernet/legacy.js';
import { createDataCipher } from './cipher.js';

type CipherCore = Pick<KeywardCore, 'keys' | 'now'>;

/**
 * True when `stored` looks like a value of the reference system's secrets store (standard base64
 * of a Fernet token) rather than keyward's `<kid>:<token>`. Checks the shape only, not the key.
 *
 * @example
 * ```ts
 * if (isLegacySecretValue(row.value)) row.value = migrateLegacySecret(core, row.value)
 * ```
 */
export function isLegacySecretValue(stored: unknown): boolean {
  if (typeof stored !== 'string' || stored.includes(':')) return false;
  try {
    decodeLegacySecretValue(stored);
    return true;
  } catch {
    return false;
  }
}

/**
 * Decrypts a value of the reference system's secrets store: standard base64 of a Fernet token
 * under `base64url(sha256(JWT_SECRET))`. The core must be created with `jwtSecret`, which puts that
 * legacy data key (kid `<legacyKid>.data`) in the keyring; any other usable data key is tried too.
 * Throws `fernet_token_invalid` when the value is not such a wrapping or no key opens it.
 *
 * @example
 * ```ts
 * const core = await createKeywardCore({ jwtSecret: process.env.JWT_SECRET, store })
 * readLegacySecret(core, row.encrypted_value) // 'github-oauth-token-123'
 * ```
 */
export function readLegacySecret(core: CipherCore, stored: string): string {
  return createDataCipher(core).decryptString(decodeLegacySecretValue(stored));
}

/**
 * Re-encrypts a reference-system secret value into keyward's stored form (`<kid>:<token>`) under
 * the active data key, keeping the token's original timestamp. Once every legacy value is
 * migrated, `JWT_SECRET` is no longer needed for data.
 *
 * @example
 * ```ts
 * await secretsStore.set(key, JSON.stringify({ v: 1, value: migrateLegacySecret(core, row.value), … }))
 * ```
 */
export function migrateLegacySecret(core: CipherCore, stored: string): string {
  return createDataCipher(core).rewrap(decodeLegacySecretValue(stored));
}
