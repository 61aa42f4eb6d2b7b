import { isWellFormedUnicode } from '../_internal/unicode.js';
import { KeywardError } from '../errors.js';

/** Store-key prefix of every secret record. */
export const SECRET_PREFIX = 'secret:';

/**
 * A secret as stored: the value is the data cipher's `<kid>:<fernet token>`. `v: 2` records hold a
 * {@link SecretEnvelope} (the plaintext bound to its owner and name); `v: 1` records (written before
 * the binding) hold the bare value until the rewrap job migrates them. The version is only a hint for
 * the rewrap job: reads decide by the decrypted plaintext, which the store cannot forge.
 */
export interface SecretRecord {
  v: 1 | 2;
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

/** Owner and name of a store key made by {@link secretKey}, or `undefined` when it is not one. */
export function parseSecretKey(key: string): { owner: string; name: string } | undefined {
  if (!key.startsWith(SECRET_PREFIX)) return undefined;
  const rest = key.slice(SECRET_PREFIX.length);
  const slash = rest.indexOf('/');
  if (slash <= 0 || slash === rest.length - 1) return undefined;
  try {
    const owner = decodeURIComponent(rest.slice(0, slash));
    const name = decodeURIComponent(rest.slice(slash + 1));
    return secretKey(owner, name) === key ? { owner, name } : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The plaintext of a bound secret (inside the Fernet token, so authenticated by its HMAC): the value
 * with the owner and name it was stored for. A record copied to another owner's or name's key
 * decrypts to an envelope naming the original owner and name, and is refused.
 */
export interface SecretEnvelope {
  kw: 'secret';
  v: 1;
  owner: string;
  name: string;
  value: string;
}

const ENVELOPE_START = '{"kw":"secret",';

/** The plaintext to encrypt for `value` stored as `owner`'s secret `name`. */
export function sealSecretValue(owner: string, name: string, value: string): string {
  const envelope: SecretEnvelope = { kw: 'secret', v: 1, owner, name, value };
  return JSON.stringify(envelope);
}

/** The envelope in a decrypted plaintext, or `undefined` for a legacy (unbound) plaintext. */
export function readSecretEnvelope(plaintext: string): SecretEnvelope | undefined {
  if (!plaintext.startsWith(ENVELOPE_START)) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(plaintext);
  } catch {
    return undefined;
  }
  const e = parsed as Partial<SecretEnvelope> | null;
  if (
    e === null ||
    typeof e !== 'object' ||
    e.kw !== 'secret' ||
    e.v !== 1 ||
    typeof e.owner !== 'string' ||
    typeof e.name !== 'string' ||
    typeof e.value !== 'string'
  )
    return undefined;
  return e as SecretEnvelope;
}

/**
 * The value of a decrypted secret read as `owner`'s secret `name`. A bound plaintext must name that
 * owner and name, else `secret_context_mismatch` (the record was copied or moved in the store; the
 * plaintext is never returned, and the error names neither the value nor the record's real owner).
 * A legacy plaintext (no envelope, written before the binding) is returned as is.
 */
export function openSecretValue(plaintext: string, owner: string, name: string): string {
  const envelope = readSecretEnvelope(plaintext);
  if (envelope === undefined) return plaintext;
  if (envelope.owner !== owner || envelope.name !== name)
    throw new KeywardError(
      'secret_context_mismatch',
      'the stored secret record was not written for this owner and name (copied or moved in the store); refusing to decrypt it',
    );
  return envelope.value;
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
    (record.v !== 1 && record.v !== 2) ||
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
