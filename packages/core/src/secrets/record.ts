import { isWellFormedUnicode } from '../_internal/unicode.js';
import { KeywardError } from '../errors.js';

/** Store-key prefix of every secret record. */
export const SECRET_PREFIX = 'secret:';

/** A secret as stored: the value is the data cipher's `<kid>:<fernet token>`. */
export interface SecretRecord {
  v: 1;
  /** Ciphertext (data cipher stored form). */
  value: string;
  description?: string;
  createdAt: number;
  updatedAt: number;
}

export const MAX_OWNER_LENGTH = 256;
export const MAX_NAME_LENGTH = 256;
export const MAX_DESCRIPTION_LENGTH = 1024;
export const MAX_VALUE_BYTES = 64 * 1024;

/**
 * Checks an owner or secret name: a non-empty, well-formed Unicode string (no lone surrogate, which
 * `encodeURIComponent` would throw a raw `URIError` on) of bounded length, without control characters.
 */
export function checkIdentifier(value: unknown, option: 'owner' | 'name', max: number): string {
  if (
    typeof value !== 'string' ||
    value.length === 0 ||
    value.length > max ||
    hasControlCharacter(value) ||
    !isWellFormedUnicode(value)
  ) {
    throw new KeywardError(
      'invalid_argument',
      `${option} must be a non-empty, well-formed Unicode string of at most ${max} characters without control characters`,
      { details: { option } },
    );
  }
  return value;
}

/**
 * Store key of one secret: `secret:<owner>/<name>`, a member of the owner's collection. Owner and
 * name are percent-encoded (`encodeURIComponent` escapes `/`, `:`, `{`, `}` and `%`), so
 * `secret:<owner>/` lists exactly one owner's secrets, whatever the names.
 */
export function secretKey(owner: string, name: string): string {
  return `${ownerPrefix(owner)}${encodeURIComponent(name)}`;
}

/** Store collection of one owner's secrets (`secret:<encoded owner>/`). */
export function ownerPrefix(owner: string): string {
  return `${SECRET_PREFIX}${encodeURIComponent(owner)}/`;
}

/** The secret name of a store key under {@link ownerPrefix}. */
export function nameOfKey(prefix: string, key: string): string {
  return decodeURIComponent(key.slice(prefix.length));
}

/** Parses a stored record; `store_error` (without the content) when it is not one. */
export function parseSecretRecord(raw: string): SecretRecord {
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch (cause) {
    throw new KeywardError('store_error', 'a stored secret record is not valid JSON', { cause });
  }
  const record = parsed as Partial<SecretRecord> | null;
  if (
    record === null ||
    typeof record !== 'object' ||
    record.v !== 1 ||
    typeof record.value !== 'string' ||
    typeof record.updatedAt !== 'number'
  ) {
    throw new KeywardError('store_error', 'a stored secret record has an unknown shape');
  }
  return record as SecretRecord;
}

function hasControlCharacter(value: string): boolean {
  for (let i = 0; i < value.length; i++) {
    const code = value.charCodeAt(i);
    if (code < 0x20 || code === 0x7f) return true;
  }
  return false;
}
