import { isWellFormedUnicode } from '../_internal/unicode.js';
import { KeywardError } from '../errors.js';

/** Store-key prefix of every IdP token record. */
export const IDP_PREFIX = 'idp:';

/** An IdP token pair as stored: both tokens in one ciphertext (data cipher form), in `value` like secrets, so one rewrap pass serves both. */
export interface IdpTokenRecord {
  /**
   * `2`: the sealed tokens name their store key (`k`); `1`: written before that binding, until the
   * rewrap job migrates it. Only a hint for the rewrap job: reads decide by the decrypted `k`.
   */
  v: 1 | 2;
  /** `<kid>:<fernet token>` of `{"a": accessToken, "r"?: refreshToken, "k": store key}`. */
  value: string;
  /** When the access token expires (epoch ms). */
  expiresAt: number;
  updatedAt: number;
  /** Bumped by every save or refresh, so a waiter can tell that someone else refreshed. */
  version: number;
  /** Fencing token of the refresh lock under which this record was written, if a refresh wrote it. */
  fence?: number;
}

/** The decrypted part of an {@link IdpTokenRecord}. */
export interface SealedTokens {
  a: string;
  r?: string;
  /** The store key the tokens were sealed for (absent in legacy records): a copied record is refused. */
  k?: string;
}

/**
 * The tokens of a decrypted IdP record read at `key`: `secret_context_mismatch` when they were
 * sealed for another key (the record was copied or moved in the store; the tokens are never
 * returned). Legacy tokens without `k` are returned as they are.
 */
export function openSealedTokens(plaintext: string, key: string): SealedTokens {
  const tokens = JSON.parse(plaintext) as SealedTokens;
  if (tokens.k !== undefined && tokens.k !== key)
    throw new KeywardError(
      'secret_context_mismatch',
      'the stored IdP token record was not written for this subject and provider (copied or moved in the store); refusing to decrypt it',
    );
  return tokens;
}

const MAX_ID = 256;
const MAX_TOKEN = 16 * 1024;

/** Store key of one (sub, provider); both percent-encoded so `:` in either cannot collide. */
export function idpKey(sub: unknown, provider: unknown): string {
  return `${IDP_PREFIX}${encodeURIComponent(checkId(sub, 'sub'))}:${encodeURIComponent(checkId(provider, 'provider'))}`;
}

function checkId(value: unknown, option: string): string {
  // A lone surrogate would make encodeURIComponent throw a raw URIError: refuse it here.
  if (typeof value !== 'string' || value.length === 0 || value.length > MAX_ID || !isWellFormedUnicode(value))
    throw new KeywardError(
      'invalid_argument',
      `${option} must be a non-empty string of at most ${MAX_ID} characters, well-formed Unicode`,
      {
        details: { option },
      },
    );
  return value;
}

/** Checks tokens and expiry (from `save` or from the user's refresh function) without echoing them. */
export function checkTokens(
  input: { accessToken?: unknown; refreshToken?: unknown; expiresAt?: unknown },
  code: 'invalid_argument' | 'idp_refresh_failed',
  where: string,
): { accessToken: string; refreshToken: string | undefined; expiresAt: number } {
  const fail = (option: string, expected: string) =>
    new KeywardError(code, `${where}: ${option} must be ${expected}`, { details: { option } });
  const { accessToken, refreshToken, expiresAt } = input ?? {};
  if (typeof accessToken !== 'string' || accessToken.length === 0 || accessToken.length > MAX_TOKEN)
    throw fail('accessToken', `a non-empty string of at most ${MAX_TOKEN} characters`);
  if (
    refreshToken !== undefined &&
    (typeof refreshToken !== 'string' || refreshToken.length === 0 || refreshToken.length > MAX_TOKEN)
  )
    throw fail('refreshToken', `a non-empty string of at most ${MAX_TOKEN} characters`);
  if (typeof expiresAt !== 'number' || !Number.isFinite(expiresAt) || expiresAt < 0)
    throw fail('expiresAt', 'an epoch time in milliseconds');
  return { accessToken, refreshToken, expiresAt };
}

/** Parses a stored record; `store_error` (without the content) when it is not one. */
export function parseIdpRecord(raw: string): IdpTokenRecord {
  let record: Partial<IdpTokenRecord> | null;
  try {
    record = JSON.parse(raw) as Partial<IdpTokenRecord> | null;
  } catch (cause) {
    throw new KeywardError('store_error', 'a stored IdP token record is not valid JSON', { cause });
  }
  if (
    record === null ||
    typeof record !== 'object' ||
    (record.v !== 1 && record.v !== 2) ||
    typeof record.value !== 'string' ||
    typeof record.expiresAt !== 'number' ||
    typeof record.version !== 'number'
  )
    throw new KeywardError('store_error', 'a stored IdP token record has an unknown shape');
  return record as IdpTokenRecord;
}
