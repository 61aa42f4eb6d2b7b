import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { fromBase64Url } from '../_internal/base64url.js';
import { KeywardError } from '../errors.js';
import type { MasterKey } from './master-key.js';
import type { KeyRecord } from './types.js';

const VERSION = 'v1';

/**
 * The record fields bound to the sealed material as associated data: a sealed blob moved onto
 * another kid, use or algorithm no longer opens.
 */
function associatedData(record: Pick<KeyRecord, 'kid' | 'use' | 'alg'>): Buffer {
  return Buffer.from(JSON.stringify([VERSION, record.kid, record.use, record.alg]), 'utf8');
}

/**
 * Seals key material under the master key: AES-256-GCM with a key derived by HKDF from the
 * master key, a random 96-bit IV, and the record's kid/use/alg as associated data.
 * (Fernet has no associated data, hence GCM here; the master key stays a Fernet-format key.)
 */
export function sealKeyMaterial(
  master: MasterKey,
  record: Pick<KeyRecord, 'kid' | 'use' | 'alg'>,
  material: Uint8Array,
): string {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', master.deriveKey('seal/v1'), iv);
  cipher.setAAD(associatedData(record));
  const ciphertext = Buffer.concat([cipher.update(material), cipher.final()]);
  const tag = cipher.getAuthTag();
  return [
    VERSION,
    iv.toString('base64url'),
    ciphertext.toString('base64url'),
    tag.toString('base64url'),
  ].join('.');
}

/** Opens what {@link sealKeyMaterial} sealed. Throws `key_unseal_failed` (wrong master key, tampering, or a swapped record). */
export function unsealKeyMaterial(
  master: MasterKey,
  record: Pick<KeyRecord, 'kid' | 'use' | 'alg'>,
  sealed: string,
): Buffer {
  const parts = sealed.split('.');
  const [version, ivText, ctText, tagText] = parts;
  const iv = ivText === undefined ? undefined : fromBase64Url(ivText);
  const ciphertext = ctText === undefined ? undefined : fromBase64Url(ctText);
  const tag = tagText === undefined ? undefined : fromBase64Url(tagText);
  if (
    parts.length !== 4 ||
    version !== VERSION ||
    !iv ||
    iv.length !== 12 ||
    !ciphertext ||
    !tag ||
    tag.length !== 16
  ) {
    throw new KeywardError('key_unseal_failed', `sealed material of key ${record.kid} is malformed`, {
      details: { kid: record.kid },
    });
  }
  try {
    const decipher = createDecipheriv('aes-256-gcm', master.deriveKey('seal/v1'), iv);
    decipher.setAAD(associatedData(record));
    decipher.setAuthTag(tag);
    return Buffer.concat([decipher.update(ciphertext), decipher.final()]);
  } catch (cause) {
    throw new KeywardError(
      'key_unseal_failed',
      `cannot unseal key ${record.kid}: wrong master key, or the stored record was altered`,
      { cause, details: { kid: record.kid } },
    );
  }
}
