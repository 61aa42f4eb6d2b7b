import { createHash, randomBytes } from 'node:crypto';
import { KeywardError } from '../errors.js';

/**
 * Store layout of sessions. Tokens are never stored: only their SHA-256. A refresh token carries
 * 256 random bits, so a plain hash is enough (no pepper, no slow hash).
 *
 * Every record of a family expires with it (no TTL beyond the family's `expiresAt`), and a family
 * holds a bounded number of records however often it is refreshed: its current token, the spent
 * tokens still remembered for reuse detection ({@link FamilyRecord.spent}, dropped beyond the
 * service's `reuseDetectionDepth`), their sealed successor pairs, and one entry per access token
 * that has not expired yet.
 *
 * - `rt:fam:<familyId>`             {@link FamilyRecord}, TTL slides with each rotation
 * - `rt:tok:<sha256>`               {@link RefreshRecord}: the current token, or a spent-token marker;
 *                                   TTL = the token's lifetime, never beyond the family's `expiresAt`
 * - `rt:pair:<successor sha256>`    the successor pair sealed with the data key, TTL = reuse interval
 * - `rt:fam-at:<familyId>/<jti>`    collection of the family's access tokens (value: `exp` in epoch
 *                                   ms), TTL = the token's remaining lifetime; revoked with the family
 * - `rt:sub:<base64url sub>/<fam>`  per-subject index of families (logout everywhere): one collection per subject
 * - `ot:<sha256>`                   {@link OneTimeRecord}
 */
export const keys = {
  family: (id: string) => `rt:fam:${id}`,
  token: (hash: string) => `rt:tok:${hash}`,
  pair: (hash: string) => `rt:pair:${hash}`,
  /** The collection of a family's access tokens (store key grammar: members after the last `/`). */
  familyAccessPrefix: (familyId: string) => `rt:fam-at:${familyId}/`,
  familyAccess: (familyId: string, jti: string) => `${keys.familyAccessPrefix(familyId)}${jti}`,
  subjectPrefix: (sub: string) => `rt:sub:${Buffer.from(sub, 'utf8').toString('base64url')}/`,
  subject: (sub: string, familyId: string) => `${keys.subjectPrefix(sub)}${familyId}`,
  oneTime: (hash: string) => `ot:${hash}`,
};

/** A refresh-token family: one login session, rotated on each refresh. */
export interface FamilyRecord {
  id: string;
  sub: string;
  scopes: string[];
  claims: Record<string, unknown>;
  createdAt: number;
  /** Hash of the family's current (active) refresh token. */
  current: string;
  revoked: boolean;
  revokedReason?: string;
  /** Epoch ms after which the family is gone (slides with each rotation). */
  expiresAt: number;
  /**
   * Hashes of the most recently spent refresh tokens of the family, oldest first, at most the
   * service's `reuseDetectionDepth`. Each has a spent-token marker (`rt:tok:<hash>`); a marker
   * pushed out of this list is deleted, so presenting that token later reads as unknown.
   */
  spent?: string[];
  /**
   * Written by earlier versions: access tokens `[jti, exp in epoch ms]` kept in the record (at most
   * 32). Still revoked with the family; new access tokens go to `rt:fam-at:<familyId>/<jti>`.
   */
  live?: Array<[string, number]>;
}

/** One refresh token, keyed by its hash. */
export interface RefreshRecord {
  family: string;
  state: 'active' | 'spent';
  expiresAt: number;
  spentAt?: number;
  /** Hash of the token minted when this one was spent. */
  successor?: string;
}

/** A one-time token, keyed by its hash. */
export interface OneTimeRecord {
  sub: string;
  purpose: string;
  data: Record<string, string | number | boolean>;
  expiresAt: number;
}

const REFRESH_PREFIX = 'rt_';
const ONE_TIME_PREFIX = 'ot_';
/** 32 random bytes in base64url without padding. */
const BODY = /^[A-Za-z0-9_-]{43}$/;

/** A new opaque token: prefix + 32 random bytes in base64url. */
export function newOpaqueToken(kind: 'refresh' | 'oneTime'): string {
  return `${kind === 'refresh' ? REFRESH_PREFIX : ONE_TIME_PREFIX}${randomBytes(32).toString('base64url')}`;
}

/** A random id (families). */
export function newId(): string {
  return randomBytes(16).toString('base64url');
}

/** SHA-256 (hex) of a token: the only form in which the store holds it. */
export function hashToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

/** Hash of a well-formed opaque token, or `undefined` for anything else (never throws). */
export function hashIfWellFormed(token: unknown, kind: 'refresh' | 'oneTime'): string | undefined {
  const prefix = kind === 'refresh' ? REFRESH_PREFIX : ONE_TIME_PREFIX;
  if (typeof token !== 'string' || token.length !== prefix.length + 43 || !token.startsWith(prefix)) {
    return undefined;
  }
  return BODY.test(token.slice(prefix.length)) ? hashToken(token) : undefined;
}

/** Parses a stored JSON record; a corrupt value reads as absent. */
export function parseRecord<T>(raw: string | null): T | undefined {
  if (raw === null) return undefined;
  try {
    const value: unknown = JSON.parse(raw);
    return typeof value === 'object' && value !== null ? (value as T) : undefined;
  } catch {
    return undefined;
  }
}

/** Claims the service sets itself, refused in `issue({ claims })`. */
export const RESERVED_CLAIMS: ReadonlySet<string> = new Set([
  'sub',
  'scope',
  'exp',
  'iat',
  'nbf',
  'jti',
  'iss',
  'aud',
  'client_id',
]);

/** Largest serialized custom claims of `issue({ claims })`, in UTF-8 bytes (8 KiB). */
export const MAX_CUSTOM_CLAIMS_BYTES = 8192;

/** The header `alg` and payload `jti` / `exp` of a JWS this process just signed (no verification needed). */
export function readSigned(token: string): { alg: string; jti: string; exp: number } {
  const [header, payload] = token.split('.');
  const h = JSON.parse(Buffer.from(header ?? '', 'base64url').toString('utf8')) as { alg: string };
  const p = JSON.parse(Buffer.from(payload ?? '', 'base64url').toString('utf8')) as {
    jti: string;
    exp: number;
  };
  return { alg: h.alg, jti: p.jti, exp: p.exp };
}

/** `invalid_request` for a bad argument, naming the field. */
export function badInput(field: string, expected: string): KeywardError {
  return new KeywardError('invalid_request', `${field} must be ${expected}`, { details: { field } });
}

/** Checks a subject id: a non-empty string of at most 256 characters. */
export function checkSub(sub: unknown, field = 'sub'): string {
  if (typeof sub !== 'string' || sub.length === 0 || sub.length > 256) {
    throw badInput(field, 'a non-empty string of at most 256 characters');
  }
  return sub;
}
