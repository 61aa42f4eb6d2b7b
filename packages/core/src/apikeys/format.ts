import { randomBytes } from 'node:crypto';
import { crc32 } from 'node:zlib';
import { KeywardError } from '../errors.js';

const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
const ID_LENGTH = 12;
const SECRET_LENGTH = 32;
const CHECKSUM_LENGTH = 6;
const PREFIX = 'kw_';
/** `kw_` + id + `_` + secret + checksum. */
const KEY_LENGTH = PREFIX.length + ID_LENGTH + 1 + SECRET_LENGTH + CHECKSUM_LENGTH;

/**
 * What a secret scanner should match to find a leaked keyward API key:
 * `kw_`, 12 base62 characters (the public id), `_`, then 38 base62 characters (a 32-character
 * secret followed by a 6-character checksum). The checksum is CRC32 of everything before it
 * (`kw_<id>_<secret>`, ASCII), written in base62 (`0-9A-Za-z`), most significant digit first,
 * left-padded with `0` — a scanner can verify it offline to drop false positives, as with
 * GitHub's token format.
 *
 * @example
 * ```ts
 * const leaked = text.match(new RegExp(API_KEY_PATTERN.source, 'g')) ?? []
 * ```
 */
export const API_KEY_PATTERN = /\bkw_[0-9A-Za-z]{12}_[0-9A-Za-z]{38}\b/;

const EXACT = /^kw_([0-9A-Za-z]{12})_([0-9A-Za-z]{32})([0-9A-Za-z]{6})$/;

/**
 * The parts of a well-formed API key.
 *
 * @example
 * ```ts
 * const { id }: ApiKeyParts = parseApiKey(key)
 * ```
 */
export interface ApiKeyParts {
  /** Public id (12 base62 characters); also the store lookup key. */
  id: string;
  /** The secret part (32 base62 characters, about 190 bits). */
  secret: string;
}

/** Uniform random base62 characters (rejection sampling, so no character is more likely). */
function randomBase62(length: number): string {
  let out = '';
  while (out.length < length) {
    for (const byte of randomBytes(length * 2)) {
      // 248 = 4 × 62: bytes above it would bias the first characters.
      if (byte < 248) out += BASE62[byte % 62];
      if (out.length === length) break;
    }
  }
  return out;
}

/**
 * CRC32 of `body` as 6 base62 digits (62^6 > 2^32, so every value fits): the last 6 characters
 * of a key, computed over the rest.
 *
 * @example
 * ```ts
 * const ok = apiKeyChecksum(key.slice(0, -6)) === key.slice(-6) // what a secret scanner checks
 * ```
 */
export function apiKeyChecksum(body: string): string {
  let value = crc32(body);
  let out = '';
  for (let i = 0; i < CHECKSUM_LENGTH; i++) {
    out = BASE62[value % 62] + out;
    value = Math.floor(value / 62);
  }
  return out;
}

/**
 * Generates a new API key `kw_<id>_<secret><checksum>`.
 *
 * @example
 * ```ts
 * const { key, id } = generateApiKey() // key: 'kw_3fQ…_…', shown to the user once
 * ```
 */
export function generateApiKey(): ApiKeyParts & { key: string } {
  const id = randomBase62(ID_LENGTH);
  const secret = randomBase62(SECRET_LENGTH);
  const body = `${PREFIX}${id}_${secret}`;
  return { id, secret, key: body + apiKeyChecksum(body) };
}

/**
 * Checks an API key's shape and checksum without any lookup, so a typo or a random string is
 * rejected before it costs a store read. Throws `api_key_malformed`; the message never
 * contains the key.
 *
 * @example
 * ```ts
 * const { id, secret } = parseApiKey(header.slice('ApiKey '.length))
 * ```
 */
export function parseApiKey(key: unknown): ApiKeyParts {
  if (typeof key !== 'string' || key.length !== KEY_LENGTH) throw malformed();
  const match = EXACT.exec(key);
  const [, id, secret, checksum] = match ?? [];
  if (id === undefined || secret === undefined || checksum === undefined) throw malformed();
  if (apiKeyChecksum(key.slice(0, -CHECKSUM_LENGTH)) !== checksum) throw malformed();
  return { id, secret };
}

/** True when `id` has the shape of an API key id (guards store keys built from user input). */
export function isApiKeyId(id: unknown): id is string {
  return typeof id === 'string' && /^[0-9A-Za-z]{12}$/.test(id);
}

function malformed(): KeywardError {
  return new KeywardError(
    'api_key_malformed',
    'API key is malformed: expected kw_<id>_<secret> with a valid checksum',
  );
}
