import { KeywardError } from '../errors.js';
import type { StoreSetOptions } from './types.js';

/** Default page size of `Store.list`. */
export const DEFAULT_LIST_LIMIT = 1000;

function invalid(message: string, option: string): KeywardError {
  return new KeywardError('invalid_argument', message, { details: { option } });
}

/** Throws `invalid_argument` unless `key` is a non-empty string. */
export function checkKey(key: unknown, option = 'key'): asserts key is string {
  if (typeof key !== 'string' || key.length === 0) {
    throw invalid(`${option} must be a non-empty string`, option);
  }
}

/**
 * Throws `invalid_argument` unless `key` is a usable store key: a non-empty string that does not
 * end with `/` (a key ending with `/` would name a collection, not a member).
 */
export function checkStoreKey(key: unknown): asserts key is string {
  checkKey(key);
  if (key.endsWith('/')) throw invalid('key must not end with "/" (that names a collection)', 'key');
}

/** Throws `invalid_argument` unless `collection` is a non-empty string ending with `/`. */
export function checkCollection(collection: unknown): asserts collection is string {
  if (typeof collection !== 'string' || !collection.endsWith('/')) {
    throw invalid('collection must be a string ending with "/"', 'collection');
  }
}

/**
 * Splits a store key into its collection (everything up to and including the last `/`) and its
 * member id; a key without `/` is standalone (`collection` undefined).
 */
export function collectionOf(key: string): { collection: string; id: string } | undefined {
  const slash = key.lastIndexOf('/');
  if (slash === -1) return undefined;
  return { collection: key.slice(0, slash + 1), id: key.slice(slash + 1) };
}

/** Throws `invalid_argument` unless `value` is a string. */
export function checkValue(value: unknown, option = 'value'): asserts value is string {
  if (typeof value !== 'string') throw invalid(`${option} must be a string`, option);
}

/** Returns the TTL in whole milliseconds (rounded up), or `undefined` when none was given. */
export function ttlOf(options: StoreSetOptions | undefined): number | undefined {
  const ttlMs = options?.ttlMs;
  if (ttlMs === undefined) return undefined;
  return checkTtl(ttlMs, 'ttlMs');
}

/** Throws `invalid_argument` unless `ttlMs` is a positive finite number; returns it rounded up. */
export function checkTtl(ttlMs: unknown, option = 'ttlMs'): number {
  if (typeof ttlMs !== 'number' || !Number.isFinite(ttlMs) || ttlMs <= 0) {
    throw invalid(`${option} must be a positive number of milliseconds`, option);
  }
  return Math.ceil(ttlMs);
}

/** Throws `invalid_argument` unless `by` is a safe integer. */
export function checkIncrement(by: unknown): number {
  if (typeof by !== 'number' || !Number.isSafeInteger(by)) {
    throw invalid('by must be a safe integer', 'by');
  }
  return by;
}

/** Throws `invalid_argument` unless `limit` is a positive integer; returns the default when absent. */
export function limitOf(limit: unknown): number {
  if (limit === undefined) return DEFAULT_LIST_LIMIT;
  if (typeof limit !== 'number' || !Number.isSafeInteger(limit) || limit <= 0) {
    throw invalid('limit must be a positive integer', 'limit');
  }
  return limit;
}

/** Parses a counter value; a non-integer value is a `store_error` (the key holds something else). */
export function parseCounter(value: string | null | undefined): number {
  if (value === null || value === undefined) return 0;
  const n = Number(value);
  if (!/^-?\d+$/.test(value) || !Number.isSafeInteger(n)) {
    throw new KeywardError('store_error', 'increment: the key does not hold an integer');
  }
  return n;
}

/** Encodes the last key of a page as an opaque cursor (memory and sqlite drivers). */
export function encodeKeyCursor(key: string): string {
  return Buffer.from(key, 'utf8').toString('base64url');
}

/** Decodes {@link encodeKeyCursor}; throws `invalid_argument` on anything else. */
export function decodeKeyCursor(cursor: unknown): string | undefined {
  if (cursor === undefined) return undefined;
  if (typeof cursor !== 'string' || !/^[A-Za-z0-9_-]+$/.test(cursor)) {
    throw invalid('cursor must come from a previous list page', 'cursor');
  }
  return Buffer.from(cursor, 'base64url').toString('utf8');
}

/** The error every driver throws once closed. */
export function closedError(driver: string): KeywardError {
  return new KeywardError('store_unavailable', `${driver} store is closed`, { details: { driver } });
}

/** Throws `invalid_argument` unless `handler` is a function. */
export function checkHandler(handler: unknown): void {
  if (typeof handler !== 'function') throw invalid('handler must be a function', 'handler');
}

/**
 * Calls a subscriber. A throwing handler must not break delivery to the others nor crash the
 * poller or socket that delivers it, so its error becomes a process warning.
 */
export function deliver(handler: (message: string) => void, message: string): void {
  try {
    handler(message);
  } catch (err) {
    process.emitWarning(err instanceof Error ? err : String(err), { code: 'KEYWARD_SUBSCRIBER' });
  }
}
