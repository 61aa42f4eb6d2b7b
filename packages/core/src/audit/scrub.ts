/**
 * Defensive scrubbing of audit fields: a last line of defence for a caller that passes a whole
 * token, key or secret by mistake. Typed events never need such a value (tokens appear only as
 * `fingerprint()`s), so the field is dropped rather than masked, and its path is recorded.
 */

/**
 * Strings longer than this are dropped: no legitimate audit field is that long.
 *
 * @example
 * ```ts
 * const fits = reason.length <= MAX_AUDIT_STRING_LENGTH;
 * ```
 */
export const MAX_AUDIT_STRING_LENGTH = 512;

// A JWS/JWE compact serialisation: the protected header is base64url JSON, so it starts with
// `eyJ` (`{"`). Matched anywhere, so "Bearer eyJ…" is caught too.
const JWT_LIKE = /eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*/;
// Any three long base64url segments, for tokens whose header is not plain `{"`.
const THREE_SEGMENTS = /[A-Za-z0-9_-]{16,}\.[A-Za-z0-9_-]{16,}\.[A-Za-z0-9_-]{16,}/;
// keyward API keys: `kw_<id>_<secret>`.
const API_KEY_LIKE = /kw_[A-Za-z0-9-]+_[A-Za-z0-9_-]{12,}/;

// Field names whose value is a credential whatever it looks like.
const SECRET_FIELD_NAMES = new Set([
  'authorization',
  'token',
  'accesstoken',
  'refreshtoken',
  'secret',
  'key',
  'apikey',
  'password',
  'cookie',
]);

const MAX_DEPTH = 4;

/**
 * Why the scrubber refuses a value (`too_long`, `jwt_like`, `api_key_like`), or `undefined`
 * when the value may be logged.
 *
 * @example
 * ```ts
 * secretLikeReason('Bearer eyJhbGciOiJIUzI1NiJ9.e30.sig'); // 'jwt_like'
 * secretLikeReason('kid-2025-01'); // undefined
 * ```
 */
export function secretLikeReason(value: string): string | undefined {
  if (value.length > MAX_AUDIT_STRING_LENGTH) return 'too_long';
  if (JWT_LIKE.test(value) || THREE_SEGMENTS.test(value)) return 'jwt_like';
  if (API_KEY_LIKE.test(value)) return 'api_key_like';
  return undefined;
}

/**
 * Copies `input`, dropping every field that holds a secret-looking string, a credential-named
 * field, binary data or anything that is not plain JSON. Returns the copy and the dropped paths.
 *
 * @example
 * ```ts
 * scrubAuditFields({ sub: 'u1', password: 'x' }); // { fields: { sub: 'u1' }, dropped: ['password'] }
 * ```
 */
export function scrubAuditFields(input: Record<string, unknown>): {
  fields: Record<string, unknown>;
  dropped: string[];
} {
  const dropped: string[] = [];
  const fields = scrubObject(input, '', dropped, 0);
  return { fields, dropped };
}

function scrubObject(
  input: Record<string, unknown>,
  prefix: string,
  dropped: string[],
  depth: number,
): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(input)) {
    const path = prefix === '' ? name : `${prefix}.${name}`;
    if (value === undefined) continue;
    if (SECRET_FIELD_NAMES.has(name.toLowerCase())) {
      dropped.push(path);
      continue;
    }
    const clean = scrubValue(value, path, dropped, depth);
    if (clean !== DROP) out[name] = clean;
  }
  return out;
}

const DROP = Symbol('drop');

function scrubValue(value: unknown, path: string, dropped: string[], depth: number): unknown {
  if (value === null || typeof value === 'boolean' || typeof value === 'number') return value;
  if (typeof value === 'string') {
    if (secretLikeReason(value) === undefined) return value;
    dropped.push(path);
    return DROP;
  }
  if (depth < MAX_DEPTH && Array.isArray(value)) {
    const before = dropped.length;
    const items = value.map((item, i) => scrubValue(item, `${path}[${i}]`, dropped, depth + 1));
    if (dropped.length === before) return items;
    // One bad element drops the whole array: a half-array would misreport e.g. granted scopes.
    dropped.splice(before, dropped.length - before, path);
    return DROP;
  }
  if (depth < MAX_DEPTH && isPlainObject(value)) return scrubObject(value, path, dropped, depth + 1);
  // Buffers, typed arrays, KeyObjects, functions, bigints, deep nesting: never logged.
  dropped.push(path);
  return DROP;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null) return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}
